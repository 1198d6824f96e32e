// One OpenSearch node on loopback, for tests: the server of the
// org.opensearch:opensearch artifact with the netty4 HTTP transport, started
// in-process as the OpenSearch bootstrap would, without its launcher
// scripts. Usage: OpenSearchNode HOME HTTP_PORT TRANSPORT_PORT
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collection;
import java.util.Collections;
import java.util.List;

import org.opensearch.common.settings.Settings;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

public final class OpenSearchNode {
  /** A node whose plugins come from the classpath instead of a plugins directory. */
  static final class ClasspathPluginNode extends Node {
    ClasspathPluginNode(Settings settings, Collection<Class<? extends Plugin>> plugins) {
      super(
          InternalSettingsPreparer.prepareEnvironment(settings, Collections.emptyMap(), null, () -> "releasepassport-test"),
          plugins,
          true);
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: OpenSearchNode HOME HTTP_PORT TRANSPORT_PORT");
      System.exit(2);
    }
    Path home = Paths.get(args[0]);
    Settings settings = Settings.builder()
        .put("path.home", home.toString())
        .put("path.data", home.resolve("data").toString())
        .put("path.logs", home.resolve("logs").toString())
        .put("cluster.name", "releasepassport-test")
        .put("node.name", "node-1")
        .put("discovery.type", "single-node")
        .put("network.host", "127.0.0.1")
        .put("http.port", args[1])
        .put("transport.port", args[2])
        .put("http.type", "netty4")
        .put("transport.type", "netty4")
        .build();
    Node node = new ClasspathPluginNode(settings, List.of(Netty4Plugin.class));
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        node.close();
      } catch (Exception e) {
        // exiting anyway
      }
    }));
    node.start();
    System.out.println("opensearch node started on 127.0.0.1:" + args[1]);
    Thread.currentThread().join();
  }
}
