//! Admission webhook benchmark: latency (p50, p99) and requests per second at
//! several concurrencies,
//!
//! - `direct`: HTTPS `POST /validate` straight to the webhook server (TLS,
//!   keep-alive connections, one per worker), the server running in this
//!   process on its own runtime with a cache holding one enforce gate and its
//!   signed ALLOW passport;
//! - `apiserver`: server-side dry-run image updates of a gated Deployment
//!   through the local kube-apiserver (`e2e/cluster.sh`), which calls the same
//!   webhook over TLS (a ValidatingWebhookConfiguration with a URL and the
//!   caBundle is registered for a dedicated namespace), compared with the same
//!   requests on an unlabelled Deployment (never sent to the webhook).
//!
//! Run: `cargo run --release --example bench-webhook -- [--mode direct|apiserver|both]
//! [--seconds 5] [--concurrency 1,16,64] [--server-threads 2]`.

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
        "policy": {"name": GATE, "hash": "sha256:00"}, "actor": "bench",
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

/// Starts the webhook server on its own runtime (`threads` workers).
fn start_server(threads: usize) -> anyhow::Result<Server> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
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

fn https_client(ca_pem: &str) -> anyhow::Result<reqwest::Client> {
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
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(256)
        .build()?)
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
    let body = review_body();
    let start = Instant::now();
    let mut latencies = Vec::new();
    while start.elapsed() < Duration::from_secs(args.seconds) {
        let request = axum::http::Request::post("/validate")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.clone()))?;
        let t = Instant::now();
        let response = app.clone().oneshot(request).await?;
        let _ = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
        latencies.push(t.elapsed());
    }
    let s = stats(latencies, 0, start.elapsed());
    println!(
        "| in process (router only, no TLS) | 1 | {:.3} | {:.3} | {:.0} | 0 |",
        s.p50_ms, s.p99_ms, s.rps
    );
    Ok(())
}

async fn direct(server: &Server, args: &Args) -> anyhow::Result<()> {
    let url = format!("https://{}/validate", server.addr);
    let body = Arc::new(review_body());
    // One client (own connection pool) per worker: one keep-alive connection
    // each, like the apiserver's.
    for &c in &args.concurrency {
        let clients: Arc<Vec<reqwest::Client>> = Arc::new(
            (0..c)
                .map(|_| https_client(&server.ca_pem))
                .collect::<anyhow::Result<_>>()?,
        );
        let (url, body) = (url.clone(), body.clone());
        // Warm up: connections and the verification memo.
        for client in clients.iter() {
            let _ = client.post(&url).body(body.to_vec()).send().await;
        }
        let s = load(c, Duration::from_secs(args.seconds), move |w| {
            let client = clients[w].clone();
            let (url, body) = (url.clone(), body.clone());
            async move {
                match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.to_vec())
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;
        println!(
            "| direct (HTTPS /validate) | {c} | {:.3} | {:.3} | {:.0} | {} |",
            s.p50_ms, s.p99_ms, s.rps, s.errors
        );
    }
    Ok(())
}

async fn cluster_client() -> anyhow::Result<kube::Client> {
    let out = std::process::Command::new("bash")
        .args(["e2e/cluster.sh", "env", "--json"])
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
    let admit = Arc::new(
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image('a')}]}}}}),
    );
    for (name, label) in [
        (
            "plain",
            "apiserver, unlabelled Deployment (no webhook call)",
        ),
        (
            "payment-api",
            "apiserver, gated Deployment (webhook called)",
        ),
    ] {
        for &c in &args.concurrency {
            let (api, admit, dry) = (deployments.clone(), admit.clone(), dry.clone());
            let s = load(c, Duration::from_secs(args.seconds), move |_| {
                let (api, admit, dry) = (api.clone(), admit.clone(), dry.clone());
                async move {
                    api.patch(name, &dry, &Patch::Strategic(&*admit))
                        .await
                        .is_ok()
                }
            })
            .await;
            println!(
                "| {label} | {c} | {:.3} | {:.3} | {:.0} | {} |",
                s.p50_ms, s.p99_ms, s.rps, s.errors
            );
        }
    }
    let _ = vwc.delete(CONFIG, &DeleteParams::default()).await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = start_server(args.server_threads)?;
    // The load generator has its own runtime so that it does not share the
    // server's worker threads.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("| path | concurrency | p50 (ms) | p99 (ms) | requests/s | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
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
