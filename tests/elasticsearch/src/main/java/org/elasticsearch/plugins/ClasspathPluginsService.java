package org.elasticsearch.plugins;

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;

import org.elasticsearch.Version;
import org.elasticsearch.common.settings.Settings;

/**
 * Plugins given as classes already on the class path, instead of bundles installed under the
 * node's plugins and modules folders (which a node started from Maven jars does not have).
 * It lives in Elasticsearch's package because the hooks it uses are package-private.
 */
public final class ClasspathPluginsService extends PluginsService {
    private final List<LoadedPlugin> loaded;

    public ClasspathPluginsService(
            Settings settings, PluginsLoader loader, Collection<Class<? extends Plugin>> classes) {
        super(settings, null, loader);
        List<LoadedPlugin> plugins = new ArrayList<>();
        for (Class<? extends Plugin> type : classes) {
            Plugin plugin = loadPlugin(type, settings, null);
            plugins.add(new LoadedPlugin(describe(type), plugin, type.getClassLoader()));
        }
        loadExtensions(plugins);
        this.loaded = List.copyOf(plugins);
    }

    @Override
    protected List<LoadedPlugin> plugins() {
        return loaded;
    }

    /**
     * A descriptor for a class path plugin. 9.x added a deployment target as the last argument
     * of the constructor, so the one constructor of the running version is found by its length.
     */
    private static PluginDescriptor describe(Class<? extends Plugin> type) {
        Object[] fields = {
            type.getSimpleName(), // name
            "class path plugin " + type.getName(), // description
            Version.CURRENT.toString(), // plugin version
            Version.CURRENT.toString(), // Elasticsearch version
            Integer.toString(Runtime.version().feature()), // Java version
            type.getName(), // class name
            null, // module name
            List.of(), // extended plugins
            false, // has native controller
            false, // licensed
            false, // modular
            false, // stable API
        };
        for (Constructor<?> constructor : PluginDescriptor.class.getConstructors()) {
            Class<?>[] parameters = constructor.getParameterTypes();
            Object[] arguments = fields;
            if (parameters.length == fields.length + 1 && parameters[fields.length].isEnum()) {
                arguments = Arrays.copyOf(fields, parameters.length);
                for (Object target : parameters[fields.length].getEnumConstants()) {
                    if (((Enum<?>) target).name().equals("ALL")) {
                        arguments[fields.length] = target;
                    }
                }
            } else if (parameters.length != fields.length) {
                continue;
            }
            try {
                return (PluginDescriptor) constructor.newInstance(arguments);
            } catch (InstantiationException | IllegalAccessException | InvocationTargetException e) {
                throw new IllegalStateException("cannot describe plugin " + type.getName(), e);
            }
        }
        throw new IllegalStateException("no PluginDescriptor constructor fits this Elasticsearch");
    }
}
