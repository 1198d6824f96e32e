//! The opensearch connector against a real OpenSearch node (the
//! org.opensearch:opensearch server from Maven Central, built into the
//! project cache by `e2e/opensearch/opensearch.sh`), holding log documents
//! this test indexes. Only counts come back: a log line, secret included,
//! never reaches the evidence.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use releasepassport::api::{ConnectorHealth, ConnectorScopeSpec, EvidenceDocument};
use releasepassport::connectors::{ConnectorError, Connectors, ScopeRequest};
use serde_json::{Value, json};

/// How long the node may take to start on a busy 2-core machine.
const STARTUP_DEADLINE: Duration = Duration::from_secs(240);

const LEAKY_LINE: &str =
    "payment failed: card 4111111111111111 token=sk_live_51HqLyjWDarjtT1zdp7dc";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A running node; killed when dropped, also when a test panics.
struct Node {
    child: Child,
    url: String,
    log: PathBuf,
    _home: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start() -> Node {
        let built = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/e2e/opensearch/opensearch.sh"
            ))
            .arg("path")
            .output()
            .expect("running e2e/opensearch/opensearch.sh");
        assert!(
            built.status.success(),
            "building the OpenSearch node: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let run = String::from_utf8_lossy(&built.stdout).trim().to_string();
        let home = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir_all(home.path().join("config")).expect("config directory");
        let port = free_port();
        let log = home.path().join("node.log");
        let child = Command::new(&run)
            .arg(home.path())
            .arg(port.to_string())
            .arg(free_port().to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {run}: {e}"));
        Node {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _home: home,
        }
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the OpenSearch node exited with {status}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let health = http
                .get(format!(
                    "{}/_cluster/health?wait_for_status=yellow&timeout=5s",
                    self.url
                ))
                .send()
                .await;
            if let Ok(r) = health
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "OpenSearch did not start within {STARTUP_DEADLINE:?}: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Indexes log documents (bulk API) and makes them searchable.
    async fn index_logs(&self, http: &reqwest::Client, index: &str, docs: &[Value]) {
        let mut body = String::new();
        for d in docs {
            body.push_str("{\"index\":{}}\n");
            body.push_str(&d.to_string());
            body.push('\n');
        }
        let answer: Value = http
            .post(format!("{}/{index}/_bulk?refresh=true", self.url))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("bulk request")
            .json()
            .await
            .expect("bulk answer");
        assert_eq!(answer["errors"], json!(false), "{answer}");
    }
}

fn connectors() -> Connectors {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new("http://127.0.0.1:1".parse().expect("dummy cluster URL"));
    let client = kube::Client::try_from(config.clone()).expect("dummy client");
    Connectors::new(client, config, Duration::from_secs(20)).expect("connectors")
}

async fn collect(connectors: &Connectors, spec: Value) -> Result<EvidenceDocument, ConnectorError> {
    let spec: ConnectorScopeSpec = serde_json::from_value(spec).expect("ConnectorScope spec");
    let req = ScopeRequest {
        namespace: "payments",
        name: "payment-api-logs",
        spec: &spec,
        service: "payment-api",
        environment: "production",
        gate: None,
        gate_name: "payment-api-production",
        release: "v2.18.4",
        previous_release: None,
        now: jiff::Timestamp::now(),
    };
    connectors.collect(&req).await.map(|d| d.expect("evidence"))
}

fn scope(url: &str, index: &str, queries: Value) -> Value {
    json!({"connector": "opensearch", "search": {"url": url, "index": index, "queries": queries}})
}

#[tokio::test]
async fn counts_come_from_a_real_opensearch_node_and_log_lines_never_leave_it() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let mut node = Node::start();
    node.wait_ready(&http).await;
    let now = jiff::Timestamp::now();
    let minutes_ago = |m: i64| (now - jiff::SignedDuration::from_mins(m)).to_string();
    let mut docs = Vec::new();
    for i in 0..7 {
        docs.push(json!({"@timestamp": minutes_ago(i), "service": "payment-api", "level": "error", "message": LEAKY_LINE}));
    }
    for i in 0..3 {
        docs.push(json!({"@timestamp": minutes_ago(60 + i), "service": "payment-api", "level": "error", "message": "old error"}));
    }
    docs.push(json!({"@timestamp": minutes_ago(2), "service": "payment-api", "level": "fatal", "message": "startup failed: cannot bind :8080"}));
    for i in 0..20 {
        docs.push(json!({"@timestamp": minutes_ago(i % 10), "service": "payment-api", "level": "info", "message": "ok"}));
    }
    node.index_logs(&http, "logs-payment-api-2026.05.03", &docs)
        .await;
    node.index_logs(&http, "logs-checkout-2026.05.03", &[json!({"@timestamp": minutes_ago(1), "service": "checkout", "level": "error", "message": "other service"})]).await;

    let connectors = connectors();
    let doc = collect(
        &connectors,
        scope(
            &node.url,
            "logs-payment-api-*",
            json!([
                {"name": "error_logs_15m", "query": "{\"bool\": {\"filter\": [{\"term\": {\"level\": \"error\"}}, {\"range\": {\"@timestamp\": {\"gte\": \"now-15m\"}}}]}}"},
                {"name": "startup_failures", "query": "{\"match_phrase\": {\"message\": \"startup failed\"}}"},
                {"name": "all_errors", "query": "{\"term\": {\"level\": \"error\"}}"}
            ]),
        ),
    )
    .await
    .expect("opensearch");
    assert_eq!(doc.connector, "opensearch");
    let facts: std::collections::BTreeMap<&str, &Value> = doc
        .facts
        .iter()
        .filter_map(|f| f.value.as_ref().map(|v| (f.name.as_str(), v)))
        .collect();
    assert_eq!(
        facts["error_logs_15m"],
        &json!(7),
        "only this window, only this index pattern"
    );
    assert_eq!(facts["startup_failures"], &json!(1));
    assert_eq!(facts["all_errors"], &json!(10));
    assert_eq!(doc.scope["index"], "logs-payment-api-*");
    let text = serde_json::to_string(&doc).expect("json");
    assert!(
        !text.contains("4111111111111111") && !text.contains("sk_live"),
        "a log line leaked: {text}"
    );

    // A query OpenSearch refuses: its own reason, as Invalid.
    let err = collect(
        &connectors,
        scope(
            &node.url,
            "logs-payment-api-*",
            json!([{"name": "bad", "query": "{\"no_such_query\": {}}"}]),
        ),
    )
    .await
    .expect_err("unknown query type");
    assert_eq!(err.health(), ConnectorHealth::Invalid, "{err}");
    assert!(err.to_string().contains("no_such_query"), "{err}");

    // An index that does not exist.
    let err = collect(
        &connectors,
        scope(
            &node.url,
            "logs-nothing",
            json!([{"name": "n", "query": "{\"match_all\": {}}"}]),
        ),
    )
    .await
    .expect_err("missing index");
    assert_eq!(err.health(), ConnectorHealth::Invalid, "{err}");
    assert!(err.to_string().contains("no such index"), "{err}");
}
