package catalogue.testing.elasticsearch;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.node.ClasspathNode;
import org.elasticsearch.node.Node;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.transport.netty4.Netty4Plugin;

/**
 * Starts one single-node Elasticsearch cluster in this JVM, for tests: bound to 127.0.0.1, no
 * security (no X-Pack on the class path), its home and data in the given folder.
 *
 * <p>Usage: {@code Launcher HOME [HTTP_PORT]}; port 0 (the default) takes a free one. When the
 * HTTP layer is up it prints {@code READY http://127.0.0.1:PORT} on standard output. It stops
 * cleanly on SIGTERM/SIGINT or when its standard input closes (so it dies with its parent).
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: Launcher HOME [HTTP_PORT]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        String port = args.length > 1 ? args[1] : "0";
        LogConfigurator.configureESLogging(); // Elasticsearch's loggers over log4j2.properties
        Files.createDirectories(home.resolve("config"));
        Files.createDirectories(home.resolve("logs"));
        Settings settings = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("cluster.name", "catalogue-tests")
                .put("node.name", "catalogue-tests")
                .put("network.host", "127.0.0.1")
                .put("http.port", port)
                .put("transport.port", "0")
                .put("discovery.type", "single-node")
                .put("node.processors", Math.min(2, Runtime.getRuntime().availableProcessors()))
                // the heap of a test JVM is small; the real-memory breaker trips on it
                .put("indices.breaker.total.use_real_memory", false)
                // a test machine's disk may be nearly full: never block writes for it
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .build();
        long started = System.nanoTime();
        Node node = new ClasspathNode(
                new Environment(settings, home.resolve("config")),
                List.of(Netty4Plugin.class, EnglishAnalysisPlugin.class));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                boolean closed = node.awaitClose(30, TimeUnit.SECONDS);
                System.err.println(closed ? "STOPPED" : "STOPPED (timed out waiting for close)");
            } catch (IOException | InterruptedException e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "elasticsearch-stop"));
        node.start();
        node.injector().getInstance(RestController.class)
                .registerHandler(new RootInfoHandler(node.injector().getInstance(ClusterService.class)));
        int bound = node.injector().getInstance(HttpServerTransport.class)
                .boundAddress().publishAddress().getPort();
        System.err.printf("started in %d ms%n", (System.nanoTime() - started) / 1_000_000);
        System.out.println("READY http://127.0.0.1:" + bound);
        System.out.flush();
        Thread watcher = new Thread(() -> {
            try (InputStream in = System.in) {
                while (in.read() >= 0) {
                    // until end of input
                }
            } catch (IOException e) {
                // a broken input counts as closed
            }
            System.exit(0);
        }, "stdin-watcher");
        watcher.setDaemon(true);
        watcher.start();
        stopped.await();
    }
}
