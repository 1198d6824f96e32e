//! Admission webhook benchmark: latency (p50, p99) and requests per second at
//! several concurrencies,
//!
//! - in process: the router alone (parse, decide, encode), no TLS, no socket;
//! - `direct`: HTTPS `POST /validate` straight to the webhook server (TLS,
//!   one keep-alive connection per worker), the server running in this
//!   process on its own runtime with a cache holding one enforce gate and its
//!   signed ALLOW passport. The load generator is lean so that it measures the
//!   server: a closed loop per connection writing a pre-serialised request
//!   (head and body in one buffer) over rustls and reading the answer into a
//!   reused buffer (no HTTP client library, no per-request allocation);
//! - `apiserver`: server-side dry-run image updates of a gated Deployment
//!   through the local kube-apiserver (`e2e/cluster.sh`), which calls the same
//!   webhook over TLS (a ValidatingWebhookConfiguration with a URL and the
//!   caBundle is registered for a dedicated namespace), compared with the same
//!   requests on an unlabelled Deployment (never sent to the webhook), and
//!   with the same decision taken by the apiserver itself: the shipped
//!   ValidatingAdmissionPolicy `releasepassport-workload-images`
//!   (`config/admission/policies.yaml`, CEL over the gate's status) bound to
//!   a namespace of its own, no webhook registered there.
//!
//! `--server-cpus` / `--client-cpus` pin the threads of the server's and the
//! load generator's runtimes to CPU lists (with `taskset -p`, thread by
//! thread), e.g. `--server-threads 1 --client-threads 1 --server-cpus 0
//! --client-cpus 1`; without them both share every core.
//!
//! Run: `cargo run --release --example bench-webhook -- [--mode direct|apiserver|both]
//! [--seconds 5] [--concurrency 1,16,64] [--server-threads 2] [--client-threads 2]
//! [--server-cpus LIST --client-cpus LIST]`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use ed25519_dalek::SigningKey;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use releasepassport::api::{PassportSpec, ReleaseGate};
use releasepassport::passport::{self, PassportSigner, VerifyingKeySet};
use releasepassport::webhook::config::{Endpoint, RenderOptions, render};
use releasepassport::webhook::{AppState, WebhookCache, WebhookMetrics, router, server, tls};
use serde_json::{Value, json};

const NS: &str = "rp-webhook-bench";
const GATE: &str = "payment-api-production";
const PASSPORT: &str = "payment-api-production-bench";
const CONFIG: &str = "rp-webhook-bench";
/// Namespace of the ValidatingAdmissionPolicy path (no webhook there).
const VAP_NS: &str = "rp-webhook-bench-vap";
/// The shipped policy that checks a gated workload's images in CEL.
const VAP_POLICY: &str = "releasepassport-workload-images";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Direct,
    Apiserver,
    Both,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Worker threads of the webhook server's runtime.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Pin the server's threads to these CPUs (taskset list, e.g. `0`).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Pin the load generator's threads (and the main thread) to these CPUs.
    #[arg(long)]
    client_cpus: Option<String>,
}

/// Thread ids of the server's and of the load generator's runtimes.
static SERVER_THREADS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
static CLIENT_THREADS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn current_tid() -> Option<String> {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// CPU time (on-CPU nanoseconds from schedstat) used so far by `threads`.
fn cpu_ns(threads: &std::sync::Mutex<Vec<String>>) -> u64 {
    let tids = threads.lock().map(|t| t.clone()).unwrap_or_default();
    tids.iter()
        .filter_map(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Pins the calling thread to `cpus` (`taskset -p -c`, util-linux).
fn pin_current_thread(cpus: &str) {
    let Some(tid) = current_tid() else {
        eprintln!("cannot pin: /proc/thread-self is not readable");
        return;
    };
    let ok = std::process::Command::new("taskset")
        .args(["-p", "-c", cpus, &tid])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("cannot pin thread {tid} to CPUs {cpus} (is taskset installed?)");
    }
}

fn runtime(
    threads: usize,
    cpus: Option<String>,
    ids: &'static std::sync::Mutex<Vec<String>>,
) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(threads).enable_all();
    builder.on_thread_start(move || {
        if let (Some(tid), Ok(mut ids)) = (current_tid(), ids.lock()) {
            ids.push(tid);
        }
        if let Some(cpus) = &cpus {
            pin_current_thread(cpus);
        }
    });
    builder.build()
}

fn image(c: char) -> String {
    format!(
        "registry.example.com/payment-api@sha256:{}",
        c.to_string().repeat(64)
    )
}

fn world() -> anyhow::Result<(ReleaseGate, DynamicObject, VerifyingKeySet)> {
    let signer = PassportSigner::new(SigningKey::from_bytes(&[7; 32]));
    let mut keys = VerifyingKeySet::new();
    keys.insert(signer.verifying_key());
    let gate: ReleaseGate = serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
        "metadata": {"name": GATE, "namespace": NS, "generation": 1},
        "spec": {"service": "payment-api", "release": "v2.18.4", "environment": "production",
                 "mode": "enforce", "policyRef": {"name": GATE}, "artifact": {"image": image('a')}},
        "status": {"observedGeneration": 1, "passportName": PASSPORT, "decision": "ALLOW"}
    }))?;
    let mut spec: PassportSpec = serde_json::from_value(json!({
        "passportVersion": "1", "service": "payment-api", "release": "v2.18.4", "environment": "production",
        "mode": "enforce", "decision": "ALLOW", "confidence": 100, "generatedAt": "2026-11-23T07:00:00Z",
        "gate": {"namespace": NS, "name": GATE, "generation": 1},
        "artifact": {"image": image('a'), "digest": format!("sha256:{}", "a".repeat(64))},
        "policy": {"name": GATE, "hash": format!("sha256:{}", "00".repeat(32))}, "actor": "bench",
        "policyResults": (0..8).map(|i| json!({"id": format!("rule-{i}"), "label": "a rule", "state": "pass",
            "onFail": "HOLD", "required": true, "observed": "0.4%", "threshold": "< 2%"})).collect::<Vec<_>>(),
        "signature": {"algorithm": "ed25519", "keyId": "", "value": ""}
    }))?;
    passport::sign(&mut spec, &signer)?;
    let stored: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "Passport",
        "metadata": {"name": PASSPORT, "namespace": NS}, "spec": spec
    }))?;
    Ok((gate, stored, keys))
}

/// An AdmissionReview as the apiserver sends it: an image update of the gated Deployment.
fn review_body() -> Vec<u8> {
    let deployment = |img: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "payment-api", "namespace": NS, "generation": 2,
                         "labels": {"app": "payment-api", "releasepassport.io/gate": GATE}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "payment-api"}},
                     "template": {"metadata": {"labels": {"app": "payment-api"}},
                                  "spec": {"containers": [{"name": "api", "image": img}]}}}})
    };
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "0d6b", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "payment-api", "namespace": NS, "operation": "UPDATE",
            "userInfo": {"username": "bench"}, "object": deployment(&image('a')),
            "oldObject": deployment(&image('1')), "dryRun": false}
    }))
    .unwrap_or_default()
}

struct Server {
    addr: SocketAddr,
    ca_pem: String,
    _runtime: tokio::runtime::Runtime,
}

/// Starts the webhook server on its own runtime (`threads` workers, pinned
/// to `cpus` when given).
fn start_server(threads: usize, cpus: Option<String>) -> anyhow::Result<Server> {
    let runtime = runtime(threads, cpus, &SERVER_THREADS)?;
    let certs = tls::generate(&["127.0.0.1".to_string()])?;
    let config = Arc::new(tls::TlsConfig::from_pem(
        certs.cert_pem.as_bytes(),
        certs.key_pem.as_bytes(),
    )?);
    let (gate, passport, keys) = world()?;
    let state = AppState {
        cache: Arc::new(WebhookCache::from_objects(vec![gate], vec![passport], keys)),
        metrics: WebhookMetrics::unregistered(),
        events: None,
    };
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    runtime.spawn(server::serve_tls(listener, config, router(state)));
    Ok(Server {
        addr,
        ca_pem: certs.ca_pem,
        _runtime: runtime,
    })
}

struct Stats {
    p50_ms: f64,
    p99_ms: f64,
    rps: f64,
    errors: usize,
}

fn stats(mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) -> Stats {
    latencies.sort_unstable();
    let pick = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    Stats {
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        rps: latencies.len() as f64 / elapsed.as_secs_f64(),
        errors,
    }
}

/// Runs `concurrency` workers doing `call` until `duration` has passed.
async fn load<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while start.elapsed() < duration {
                let t = Instant::now();
                if call(worker).await {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    stats(all, errors, start.elapsed())
}

fn tls_connector(ca_pem: &str) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls)))
}

/// One keep-alive HTTPS connection of the load generator.
struct Connection {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    buf: Vec<u8>,
}

impl Connection {
    async fn open(
        addr: SocketAddr,
        connector: &tokio_rustls::TlsConnector,
    ) -> anyhow::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?.to_owned();
        let stream = connector.connect(name, tcp).await?;
        Ok(Self {
            stream,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Sends `request` (head and body) and reads one response; true for a
    /// 200 with its whole body read.
    async fn call(&mut self, request: &[u8]) -> std::io::Result<bool> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(request).await?;
        self.stream.flush().await?;
        let mut filled = 0;
        loop {
            if filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[filled..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
            let Some(end) = self.buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = &self.buf[..end];
            let ok = head.starts_with(b"HTTP/1.1 200");
            let length = content_length(head).unwrap_or(0);
            let total = end + 4 + length;
            if self.buf.len() < total {
                self.buf.resize(total, 0);
            }
            while filled < total {
                let n = self.stream.read(&mut self.buf[filled..total]).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                filled += n;
            }
            return Ok(ok);
        }
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let line = std::str::from_utf8(line).ok()?.trim();
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// The HTTP/1.1 request, head and body, serialised once.
fn raw_request(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// The router alone (parse, decide, encode), no TLS and no network: what
/// one request costs the server.
async fn in_process(args: &Args) -> anyhow::Result<()> {
    use tower::ServiceExt;
    let (gate, passport, keys) = world()?;
    let app = router(AppState {
        cache: Arc::new(WebhookCache::from_objects(vec![gate], vec![passport], keys)),
        metrics: WebhookMetrics::unregistered(),
        events: None,
    });
    let body = axum::body::Bytes::from(review_body());
    let thread_cpu = || {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu = thread_cpu();
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(1 << 20);
    while start.elapsed() < Duration::from_secs(args.seconds) {
        let request = axum::http::Request::post("/validate")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.clone()))?;
        let t = Instant::now();
        let response = app.clone().oneshot(request).await?;
        let _ = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
        latencies.push(t.elapsed());
    }
    let cpu_us = (thread_cpu() - cpu) as f64 / latencies.len().max(1) as f64 / 1000.0;
    let s = stats(latencies, 0, start.elapsed());
    println!(
        "| in process (router only, no TLS) | 1 | {:.3} | {:.3} | {:.0} | 0 | {cpu_us:.1} | |",
        s.p50_ms, s.p99_ms, s.rps
    );
    Ok(())
}

async fn direct(server: &Server, args: &Args) -> anyhow::Result<()> {
    let connector = tls_connector(&server.ca_pem)?;
    let request: Arc<[u8]> = raw_request(&review_body()).into();
    let duration = Duration::from_secs(args.seconds);
    for &c in &args.concurrency {
        let mut connections = Vec::with_capacity(c);
        for _ in 0..c {
            let mut conn = Connection::open(server.addr, &connector).await?;
            // Warm up: the connection and the verification memo.
            anyhow::ensure!(conn.call(&request).await?, "the webhook did not answer 200");
            connections.push(conn);
        }
        let (server_cpu, client_cpu) = (cpu_ns(&SERVER_THREADS), cpu_ns(&CLIENT_THREADS));
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(c);
        for mut conn in connections {
            let request = request.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 18);
                let mut errors = 0usize;
                loop {
                    let t = Instant::now();
                    if t.duration_since(start) >= duration {
                        break;
                    }
                    match conn.call(&request).await {
                        Ok(true) => latencies.push(t.elapsed()),
                        Ok(false) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (latencies, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            all.extend(l);
            errors += e;
        }
        let n = all.len().max(1) as f64;
        let server_us = (cpu_ns(&SERVER_THREADS) - server_cpu) as f64 / n / 1000.0;
        let client_us = (cpu_ns(&CLIENT_THREADS) - client_cpu) as f64 / n / 1000.0;
        let s = stats(all, errors, start.elapsed());
        println!(
            "| direct (HTTPS /validate) | {c} | {:.3} | {:.3} | {:.0} | {} | {server_us:.1} | {client_us:.1} |",
            s.p50_ms, s.p99_ms, s.rps, s.errors
        );
    }
    Ok(())
}

async fn cluster_client() -> anyhow::Result<kube::Client> {
    let out = std::process::Command::new("bash")
        .args(["e2e/cluster.sh", "--control-plane-only", "env", "--json"])
        .output()
        .context("e2e/cluster.sh env")?;
    let env: Value = serde_json::from_slice(&out.stdout).context("cluster env")?;
    let path = env["kubeconfig"].as_str().context("kubeconfig")?;
    let kc = kube::config::Kubeconfig::read_from(path)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

async fn through_apiserver(server: &Server, args: &Args) -> anyhow::Result<()> {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Namespace;
    let client = cluster_client().await?;
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    let _ = ns_api.create(&PostParams::default(), &ns).await;
    let mut config = render(&RenderOptions {
        name: CONFIG.into(),
        operator_namespace: "release-passport-system".into(),
        exclude_namespaces: vec![],
        endpoint: Endpoint::Url(format!("https://{}/validate", server.addr)),
        failure_policy: "Fail".into(),
        enforced_failure_policy: "Fail".into(),
        evidence_failure_policy: "Ignore".into(),
        timeout_seconds: 5,
        ca_bundle_pem: Some(server.ca_pem.clone()),
    });
    for w in config.webhooks.iter_mut().flatten() {
        if let Some(sel) = w.namespace_selector.as_mut() {
            sel.match_labels =
                Some([("kubernetes.io/metadata.name".to_string(), NS.to_string())].into());
        }
    }
    let vwc: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = vwc.delete(CONFIG, &DeleteParams::default()).await;
    vwc.create(&PostParams::default(), &config).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    for (name, gated) in [("payment-api", true), ("plain", false)] {
        let _ = deployments.delete(name, &DeleteParams::default()).await;
        let mut labels = json!({"app": name});
        if gated {
            labels["releasepassport.io/gate"] = json!(GATE);
        }
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "api", "image": image('1')}]}}}
        }))?;
        // Created unlabelled-equivalent: the gated one runs the rollback-free
        // path only on update; its CREATE goes through the webhook too, with
        // an image the passport does not cover, so create it first without
        // the label, then label it.
        let mut unlabelled = d.clone();
        unlabelled.metadata.labels = Some([("app".to_string(), name.to_string())].into());
        for _ in 0..50 {
            if deployments
                .create(&PostParams::default(), &unlabelled)
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        deployments
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"labels": d.metadata.labels}})),
            )
            .await?;
    }
    // Wait until the apiserver calls the webhook (the configuration is picked up asynchronously).
    let dry = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let deny = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image('b')}]}}}});
    for _ in 0..100 {
        if deployments
            .patch("payment-api", &dry, &Patch::Strategic(&deny))
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let vap_deployments = admission_policy_path(&client, &dry, &deny).await?;
    let admit = Arc::new(
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image('a')}]}}}}),
    );
    for (api, name, label) in [
        (
            &deployments,
            "plain",
            "apiserver, unlabelled Deployment (no webhook call)",
        ),
        (
            &vap_deployments,
            "payment-api",
            "apiserver, gated Deployment (ValidatingAdmissionPolicy in CEL, no webhook)",
        ),
        (
            &deployments,
            "payment-api",
            "apiserver, gated Deployment (webhook called)",
        ),
    ] {
        for &c in &args.concurrency {
            let (api, admit, dry) = (api.clone(), admit.clone(), dry.clone());
            let s = load(c, Duration::from_secs(args.seconds), move |_| {
                let (api, admit, dry) = (api.clone(), admit.clone(), dry.clone());
                async move {
                    api.patch(name, &dry, &Patch::Strategic(&*admit))
                        .await
                        .is_ok()
                }
            })
            .await;
            // No CPU columns: with etcd and the apiserver on the same cores,
            // their loopback traffic is partly charged to whichever thread runs.
            println!(
                "| {label} | {c} | {:.3} | {:.3} | {:.0} | {} | | |",
                s.p50_ms, s.p99_ms, s.rps, s.errors
            );
        }
    }
    let _ = vwc.delete(CONFIG, &DeleteParams::default()).await;
    let _ = dynamic_api(&client, VAP_BINDING_GVK)
        .delete(VAP_NS, &DeleteParams::default())
        .await;
    Ok(())
}

const VAP_GVK: (&str, &str, &str, &str) = (
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingAdmissionPolicy",
    "validatingadmissionpolicies",
);
const VAP_BINDING_GVK: (&str, &str, &str, &str) = (
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingAdmissionPolicyBinding",
    "validatingadmissionpolicybindings",
);

fn dynamic_api(client: &kube::Client, gvk: (&str, &str, &str, &str)) -> Api<DynamicObject> {
    let (group, version, kind, plural) = gvk;
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(group, version, kind),
        plural,
    );
    Api::all_with(client.clone(), &resource)
}

/// The ValidatingAdmissionPolicy path: the project's CRDs, the shipped
/// `releasepassport-workload-images` policy bound to [`VAP_NS`] alone, an
/// enforce-mode gate there whose status (as the operator writes it) allows
/// `image('a')`, and a gated Deployment. Returns the Deployments of
/// [`VAP_NS`] once the apiserver refuses `deny` there.
async fn admission_policy_path(
    client: &kube::Client,
    dry: &PatchParams,
    deny: &Value,
) -> anyhow::Result<Api<k8s_openapi::api::apps::v1::Deployment>> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let apply = PatchParams::apply("releasepassport-bench").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in releasepassport::api::all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &apply, &Patch::Apply(&crd)).await?;
    }
    // The policy exactly as shipped.
    let text = std::fs::read_to_string("config/admission/policies.yaml")
        .context("config/admission/policies.yaml (run from the repository root)")?;
    let policy: Value = serde_saphyr::from_multiple::<Value>(&text)?
        .into_iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy" && d["metadata"]["name"] == VAP_POLICY)
        .with_context(|| {
            format!("no ValidatingAdmissionPolicy {VAP_POLICY} in config/admission/policies.yaml")
        })?;
    let policy: DynamicObject = serde_json::from_value(policy)?;
    dynamic_api(client, VAP_GVK)
        .patch(VAP_POLICY, &apply, &Patch::Apply(&policy))
        .await?;
    let binding: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": VAP_NS},
        "spec": {"policyName": VAP_POLICY, "validationActions": ["Deny"],
                 "paramRef": {"selector": {}, "parameterNotFoundAction": "Allow"},
                 "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": VAP_NS}}}}
    }))?;
    dynamic_api(client, VAP_BINDING_GVK)
        .patch(VAP_NS, &apply, &Patch::Apply(&binding))
        .await?;
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": VAP_NS}}))?;
    let _ = ns_api.create(&PostParams::default(), &ns).await;

    // The gate, and its status as the operator writes it.
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), VAP_NS);
    let gate: ReleaseGate = serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
        "metadata": {"name": GATE},
        "spec": {"service": "payment-api", "release": "v2.18.4", "environment": "production",
                 "mode": "enforce", "policyRef": {"name": GATE}, "artifact": {"image": image('a')}}
    }))?;
    let mut applied = None;
    for _ in 0..100 {
        match gates.patch(GATE, &apply, &Patch::Apply(&gate)).await {
            Ok(g) => {
                applied = Some(g);
                break;
            }
            // The CRD is not served yet.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let applied = applied.context("the ReleaseGate CRD is never served")?;
    let status = json!({"status": {"observedGeneration": applied.metadata.generation,
                                   "passportName": PASSPORT, "decision": "ALLOW", "mode": "enforce"}});
    gates
        .patch_status(GATE, &PatchParams::default(), &Patch::Merge(&status))
        .await?;

    // The gated Deployment: created unlabelled, then labelled (images unchanged).
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), VAP_NS);
    let _ = deployments
        .delete("payment-api", &DeleteParams::default())
        .await;
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "payment-api", "labels": {"app": "payment-api"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "payment-api"}},
                 "template": {"metadata": {"labels": {"app": "payment-api"}},
                              "spec": {"containers": [{"name": "api", "image": image('1')}]}}}
    }))?;
    for _ in 0..50 {
        if deployments.create(&PostParams::default(), &d).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    deployments
        .patch(
            "payment-api",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"releasepassport.io/gate": GATE}}})),
        )
        .await?;
    // The apiserver loads policies asynchronously: wait until it refuses.
    for _ in 0..300 {
        if deployments
            .patch("payment-api", dry, &Patch::Strategic(deny))
            .await
            .is_err()
        {
            return Ok(deployments);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the apiserver never enforced {VAP_POLICY} in {VAP_NS}")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = start_server(args.server_threads, args.server_cpus.clone())?;
    // The load generator has its own runtime so that it does not share the
    // server's worker threads.
    if let Some(cpus) = &args.client_cpus {
        pin_current_thread(cpus);
    }
    let runtime = runtime(
        args.client_threads,
        args.client_cpus.clone(),
        &CLIENT_THREADS,
    )?;
    println!(
        "server: {} thread(s){}; load generator: {} thread(s){}",
        args.server_threads,
        args.server_cpus
            .as_deref()
            .map(|c| format!(" on CPU {c}"))
            .unwrap_or_default(),
        args.client_threads,
        args.client_cpus
            .as_deref()
            .map(|c| format!(" on CPU {c}"))
            .unwrap_or_default(),
    );
    println!(
        "| path | concurrency | p50 (ms) | p99 (ms) | requests/s | errors | server CPU µs/request | load generator CPU µs/request |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    runtime.block_on(async {
        if matches!(args.mode, Mode::Direct | Mode::Both) {
            in_process(&args).await?;
            direct(&server, &args).await?;
        }
        if matches!(args.mode, Mode::Apiserver | Mode::Both) {
            through_apiserver(&server, &args).await?;
        }
        anyhow::Ok(())
    })
}
