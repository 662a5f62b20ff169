package catalogue.testing.elasticsearch;

import java.util.List;

import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.rest.RestChannel;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.XContentFactory;

/**
 * {@code GET /} and {@code HEAD /}: the node's name and version, as clients' {@code info()} and
 * {@code ping()} ask. Elasticsearch answers them in its rest-root module, which it does not
 * publish on Maven Central.
 */
final class RootInfoHandler implements RestHandler {
    private final ClusterService cluster;

    RootInfoHandler(ClusterService cluster) {
        this.cluster = cluster;
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
    }

    @Override
    public void handleRequest(RestRequest request, RestChannel channel, NodeClient client) throws Exception {
        Build build = Build.current();
        XContentBuilder body = XContentFactory.jsonBuilder().prettyPrint();
        if (request.hasParam("pretty") && !request.paramAsBoolean("pretty", true)) {
            body = XContentFactory.jsonBuilder();
        }
        body.startObject()
                .field("name", cluster.getNodeName())
                .field("cluster_name", cluster.getClusterName().value())
                .field("cluster_uuid", cluster.state().metadata().clusterUUID())
                .startObject("version")
                .field("number", build.qualifiedVersion())
                .field("build_flavor", build.flavor())
                .field("build_type", build.type().displayName())
                .field("build_hash", build.hash())
                .field("build_date", build.date())
                .field("build_snapshot", build.isSnapshot())
                .field("lucene_version", org.apache.lucene.util.Version.LATEST.toString())
                .field("minimum_wire_compatibility_version", build.minWireCompatVersion())
                .field("minimum_index_compatibility_version", build.minIndexCompatVersion())
                .endObject()
                .field("tagline", "You Know, for Search")
                .endObject();
        channel.sendResponse(new RestResponse(RestStatus.OK, body));
    }
}
