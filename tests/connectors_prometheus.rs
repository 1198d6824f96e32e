//! The prometheus connector against a real Prometheus server (the Debian
//! `prometheus` package: `bash hack/install-deps.sh prometheus`), scraping a
//! tiny exporter this test serves on loopback. No Kubernetes is involved: the
//! connector never uses the cluster client unless a `secretRef` is set.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use releasepassport::api::{ConnectorScopeSpec, EvidenceDocument};
use releasepassport::connectors::{ConnectorError, Connectors, ScopeRequest};
use serde_json::{Value, json};

/// What the exporter serves: 20 of 1000 requests failed, i.e. 2%.
const METRICS: &str = "\
# HELP http_requests_total Requests served, by status code.
# TYPE http_requests_total counter
http_requests_total{code=\"200\"} 980
http_requests_total{code=\"500\"} 20
";

const ERROR_RATE: &str =
    r#"100 * sum(http_requests_total{code=~"5.."}) / sum(http_requests_total)"#;

/// How long Prometheus may take to start and scrape the exporter.
const STARTUP_DEADLINE: Duration = Duration::from_secs(90);

/// Serves `METRICS` on a loopback port from a background thread, for the
/// life of the test process.
fn start_exporter() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the exporter port");
    let addr = listener.local_addr().expect("exporter address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(match stream.try_clone() {
                Ok(s) => s,
                Err(_) => continue,
            });
            // Read the request head; the answer is the same for any path.
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" || line == "\n" {
                    break;
                }
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{METRICS}",
                METRICS.len()
            );
        }
    });
    addr
}

/// A loopback port nobody listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A running Prometheus server; killed when dropped, also when a test panics.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, with its own
    /// config and storage in a temporary directory.
    fn start(target: SocketAddr) -> Prometheus {
        let binary = std::env::var_os("PROMETHEUS_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
        assert!(
            binary.exists(),
            "{} not found: install it with `bash hack/install-deps.sh prometheus` (or `make deps`)",
            binary.display()
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("writing prometheus.yml");
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("creating the log file");
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    /// Waits until Prometheus answers `sum(http_requests_total) == 1000`,
    /// i.e. it has scraped the exporter at least once. `Err` with its log
    /// when Prometheus exited (e.g. its port was taken meanwhile).
    async fn wait_for_series(&mut self) -> Result<(), String> {
        // Whichever test of this process runs first builds the first client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "prometheus exited with {status}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ));
            }
            let answer = http
                .get(format!("{}/api/v1/query", self.url))
                .query(&[("query", "sum(http_requests_total)")])
                .send()
                .await;
            if let Ok(response) = answer
                && let Ok(body) = response.json::<Value>().await
                && body["data"]["result"][0]["value"][1] == json!("1000")
            {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not scrape the exporter within {}s: {}",
                STARTUP_DEADLINE.as_secs(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Prometheus with the exporter's series, ready to query. The port is
/// chosen free but released before Prometheus binds it, so a start that
/// lost it to another process is retried on a new port.
async fn prometheus_with_series() -> Prometheus {
    let exporter = start_exporter();
    let mut failures = Vec::new();
    for _ in 0..3 {
        let mut prometheus = Prometheus::start(exporter);
        match prometheus.wait_for_series().await {
            Ok(()) => return prometheus,
            Err(e) => failures.push(e),
        }
    }
    panic!("prometheus did not start: {}", failures.join("\n---\n"));
}

/// Connectors whose Kubernetes client points nowhere: Prometheus scopes
/// without `secretRef` never use it.
fn connectors() -> Connectors {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new("http://127.0.0.1:1".parse().expect("dummy cluster URL"));
    let client = kube::Client::try_from(config.clone()).expect("dummy client");
    Connectors::new(client, config, Duration::from_secs(10)).expect("connectors")
}

fn scope(url: &str, queries: Value) -> ConnectorScopeSpec {
    serde_json::from_value(json!({
        "connector": "prometheus",
        "prometheus": {"url": url, "queries": queries}
    }))
    .expect("ConnectorScope spec")
}

async fn collect(spec: &ConnectorScopeSpec) -> Result<Option<EvidenceDocument>, ConnectorError> {
    let req = ScopeRequest {
        namespace: "payments",
        name: "payment-api-prometheus",
        spec,
        service: "payment-api",
        environment: "production",
        gate: None,
        now: jiff::Timestamp::now(),
        gate_name: "payment-api-production",
        release: "v2.18.4",
        previous_release: Some("v2.17.9"),
    };
    connectors().collect(&req).await
}

fn fact<'a>(doc: &'a EvidenceDocument, name: &str) -> &'a releasepassport::api::Fact {
    doc.facts
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fact {name} in {doc:?}"))
}

#[tokio::test]
async fn prometheus_error_rate_fact_comes_from_the_allowlisted_query() {
    let prometheus = prometheus_with_series().await;
    let spec = scope(
        &prometheus.url,
        json!([
            {"name": "error_rate", "query": ERROR_RATE, "unit": "%"},
            {"name": "requests", "query": "sum(http_requests_total)"},
            {"name": "success_ratio", "query": r#"sum(http_requests_total{code="200"}) / sum(http_requests_total)"#}
        ]),
    );
    let doc = collect(&spec)
        .await
        .expect("the connector reads Prometheus")
        .expect("prometheus produces evidence");

    assert_eq!(doc.connector, "prometheus");
    assert_eq!(fact(&doc, "error_rate").value, Some(json!("2%")));
    assert_eq!(fact(&doc, "requests").value, Some(json!(1000)));
    assert_eq!(fact(&doc, "success_ratio").value, Some(json!(0.98)));
    assert_eq!(
        doc.facts.len(),
        3,
        "one fact per allowlisted query: {doc:?}"
    );
    // observedAt is Prometheus' evaluation time of the samples.
    let sample_time = fact(&doc, "error_rate")
        .observed_at
        .expect("a fact carries its sample time");
    assert!(doc.freshness.observed_at <= sample_time);
    assert_eq!(doc.scope["service"], "payment-api");
    assert_eq!(doc.scope["queries"], "error_rate,requests,success_ratio");
}

#[tokio::test]
async fn prometheus_query_returning_several_series_is_invalid() {
    let prometheus = prometheus_with_series().await;
    let spec = scope(
        &prometheus.url,
        json!([{"name": "requests_by_code", "query": "http_requests_total"}]),
    );
    let err = collect(&spec).await.expect_err("two series are refused");
    assert!(matches!(err, ConnectorError::Invalid(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "query requests_by_code returned 2 series; it must return one (aggregate it, e.g. sum(...))"
    );
}

#[tokio::test]
async fn prometheus_promql_errors_are_invalid_with_the_servers_explanation() {
    let prometheus = prometheus_with_series().await;

    let syntax = scope(
        &prometheus.url,
        json!([{"name": "broken", "query": "sum(http_requests_total"}]),
    );
    let err = collect(&syntax)
        .await
        .expect_err("a syntax error is refused");
    assert!(matches!(err, ConnectorError::Invalid(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("query broken failed: bad_data: "),
        "{err}"
    );

    let range = scope(
        &prometheus.url,
        json!([{"name": "window", "query": r#"http_requests_total{code="500"}[1m]"#}]),
    );
    let err = collect(&range).await.expect_err("a range query is refused");
    assert!(matches!(err, ConnectorError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("range vector"), "{err}");

    let missing = scope(
        &prometheus.url,
        json!([{"name": "latency", "query": "sum(no_such_metric)"}]),
    );
    let err = collect(&missing).await.expect_err("no series is refused");
    assert!(matches!(err, ConnectorError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("returned no series"), "{err}");
}

#[tokio::test]
async fn prometheus_down_is_unreachable() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let spec = scope(
        &url,
        json!([{"name": "error_rate", "query": ERROR_RATE, "unit": "%"}]),
    );
    let err = collect(&spec).await.expect_err("nothing listens");
    assert!(matches!(err, ConnectorError::Unreachable(_)), "{err:?}");
    assert!(err.to_string().contains("query error_rate on"), "{err}");
    assert!(
        !err.to_string().contains("query="),
        "the query URL stays out of messages: {err}"
    );
}

#[tokio::test]
async fn prometheus_url_with_credentials_is_refused_before_any_request() {
    let spec = scope(
        "http://admin:hunter2@127.0.0.1:9",
        json!([{"name": "error_rate", "query": ERROR_RATE}]),
    );
    let err = collect(&spec).await.expect_err("credentials in the URL");
    assert!(matches!(err, ConnectorError::Invalid(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
