//! The argocd connector against the real local control plane, with Argo CD's
//! Application CRD (e2e/crds/argocd-application-crd.yaml)
//! installed and Applications whose status is written the way the Argo CD
//! controller writes it (with the object: the CRD has no status subresource).
//! Also: a token read from a Secret never shows in connector errors.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use kube::core::ApiResource;
use releasepassport::api::{ConnectorHealth, ConnectorScopeSpec, EvidenceDocument, Fact};
use releasepassport::connectors::{ConnectorError, Connectors, ScopeRequest};
use serde_json::{Value, json};

const CRD_NAME: &str = "applications.argoproj.io";
const CRD_FIXTURE: &str = "e2e/crds/argocd-application-crd.yaml";

/// What the connector answered while the CRD was not installed.
struct CrdAbsent {
    health: ConnectorHealth,
    message: String,
}

async fn connectors(client: Client) -> Connectors {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Connectors::new(client, support::config().await, Duration::from_secs(10)).expect("connectors")
}

fn argocd_scope(
    application: &str,
    namespace: &str,
    service_account: Option<&str>,
) -> ConnectorScopeSpec {
    let mut spec = json!({
        "connector": "argocd",
        "argocd": {"application": application, "namespace": namespace}
    });
    if let Some(sa) = service_account {
        spec["serviceAccountName"] = json!(sa);
    }
    serde_json::from_value(spec).expect("ConnectorScope spec")
}

async fn collect(
    connectors: &Connectors,
    namespace: &str,
    spec: &ConnectorScopeSpec,
) -> Result<EvidenceDocument, ConnectorError> {
    let req = ScopeRequest {
        namespace,
        name: "payment-api-argocd",
        spec,
        service: "payment-api",
        environment: "production",
        gate: None,
        now: jiff::Timestamp::now(),
        gate_name: "payment-api-production",
        release: "v2.18.4",
        previous_release: Some("v2.17.9"),
    };
    connectors
        .collect(&req)
        .await
        .map(|doc| doc.expect("the argocd connector produces evidence"))
}

/// Removes Argo CD's CRD, records what the connector says without it, then
/// installs it and waits until it is served. Runs once per test process,
/// before any test uses Applications.
fn argocd_crd() -> &'static CrdAbsent {
    static STATE: OnceLock<CrdAbsent> = OnceLock::new();
    STATE.get_or_init(|| {
        support::kubectl_ok(&[
            "delete",
            "crd",
            CRD_NAME,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=120s",
        ]);
        // The tests run inside their own runtimes; this one lives on its own
        // thread so it can block.
        let absent = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let client = support::client().await;
                let ns = support::namespace(&client, "argocd-nocrd").await;
                let connectors = connectors(client).await;
                let spec = argocd_scope("payment-api", &ns, None);
                // The apiserver stops serving a deleted CRD's resources
                // shortly after the CRD object is gone.
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match collect(&connectors, &ns, &spec).await {
                        Err(e @ ConnectorError::Invalid(_)) => {
                            break CrdAbsent {
                                health: e.health(),
                                message: e.to_string(),
                            };
                        }
                        other => {
                            assert!(
                                Instant::now() < deadline,
                                "Applications still served after the CRD was deleted: {other:?}"
                            );
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            })
        })
        .join()
        .expect("checking the connector without the CRD");
        support::kubectl_ok(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            CRD_FIXTURE,
        ]);
        support::kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{CRD_NAME}"),
            "--timeout=120s",
        ]);
        absent
    })
}

fn applications(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"),
        "applications",
    );
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// An Application as the Argo CD controller leaves it after its third sync:
/// synced and healthy at c3d4…, rolled out before at b2c3….
async fn create_application(client: &Client, namespace: &str, name: &str) {
    let app: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "project": "default",
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "payments"},
            "source": {"repoURL": "https://git.example.com/payments/payment-api.git", "path": "deploy/production", "targetRevision": "main"}
        },
        "status": {
            "sync": {"status": "Synced", "revision": "c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5e6"},
            "health": {"status": "Healthy"},
            "reconciledAt": "2026-05-03T09:29:00Z",
            "operationState": {
                "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "startedAt": "2026-05-03T09:00:00Z",
                "finishedAt": "2026-05-03T09:00:20Z",
                "operation": {"sync": {"revision": "c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5e6"}}
            },
            "history": [
                {"id": 0, "revision": "a1b2c3d4e5f60718293a4b5c6d7e8f9001a2b3c4", "deployedAt": "2026-05-01T10:00:00Z"},
                {"id": 1, "revision": "b2c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5", "deployedAt": "2026-05-02T10:00:00Z"},
                {"id": 2, "revision": "c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5e6", "deployedAt": "2026-05-03T09:00:20Z"}
            ]
        }
    }))
    .expect("Application");
    applications(client, namespace)
        .create(&PostParams::default(), &app)
        .await
        .expect("creating the Application");
}

fn facts(doc: &EvidenceDocument) -> std::collections::BTreeMap<&str, &Value> {
    doc.facts
        .iter()
        .filter_map(|f: &Fact| f.value.as_ref().map(|v| (f.name.as_str(), v)))
        .collect()
}

fn assert_application_facts(doc: &EvidenceDocument) {
    assert_eq!(doc.connector, "argocd");
    let f = facts(doc);
    assert_eq!(f["sync_status"], &json!("Synced"));
    assert_eq!(f["health_status"], &json!("Healthy"));
    assert_eq!(
        f["revision"],
        &json!("c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5e6")
    );
    assert_eq!(f["operation_phase"], &json!("Succeeded"));
    assert_eq!(f["history_length"], &json!(3));
    assert_eq!(
        f["rollback_revision"],
        &json!("b2c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5")
    );
    assert_eq!(f["rollback_deployed_at"], &json!("2026-05-02T10:00:00Z"));
}

#[tokio::test]
async fn argocd_without_the_application_crd_is_invalid() {
    let absent = argocd_crd();
    assert_eq!(absent.health, ConnectorHealth::Invalid);
    assert!(
        absent.message.contains("Argo CD's Application CRD")
            && absent.message.contains("not installed"),
        "{}",
        absent.message
    );
}

#[tokio::test]
async fn argocd_facts_come_from_the_application_status() {
    argocd_crd();
    let client = support::client().await;
    let ns = support::namespace(&client, "argocd-facts").await;
    create_application(&client, &ns, "payment-api").await;
    let connectors = connectors(client).await;

    let doc = collect(&connectors, &ns, &argocd_scope("payment-api", &ns, None))
        .await
        .expect("the operator reads the Application");
    assert_application_facts(&doc);
    assert_eq!(doc.scope["application"], "payment-api");
    assert_eq!(doc.scope["applicationNamespace"], ns);

    // Argo CD marks the next change: the facts follow the status.
    support::kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "applications.argoproj.io",
        "payment-api",
        "--type=merge",
        "-p",
        r#"{"status":{"sync":{"status":"OutOfSync"},"health":{"status":"Degraded"}}}"#,
    ]);
    let doc = collect(&connectors, &ns, &argocd_scope("payment-api", &ns, None))
        .await
        .expect("the operator reads the Application again");
    let f = facts(&doc);
    assert_eq!(f["sync_status"], &json!("OutOfSync"));
    assert_eq!(f["health_status"], &json!("Degraded"));
}

#[tokio::test]
async fn argocd_missing_application_is_invalid() {
    argocd_crd();
    let client = support::client().await;
    let ns = support::namespace(&client, "argocd-missing").await;
    let connectors = connectors(client).await;
    let err = collect(&connectors, &ns, &argocd_scope("checkout", &ns, None))
        .await
        .expect_err("no such Application");
    assert!(matches!(err, ConnectorError::Invalid(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("Application checkout not found in namespace {ns}")
    );
}

#[tokio::test]
async fn argocd_reader_without_a_role_on_applications_is_forbidden() {
    argocd_crd();
    let client = support::client().await;
    let team = support::namespace(&client, "argocd-team").await;
    let apps = support::namespace(&client, "argocd-apps").await;
    create_application(&client, &apps, "payment-api").await;
    support::kubectl_ok(&["-n", &team, "create", "serviceaccount", "evidence-reader"]);
    let connectors = connectors(client).await;
    let spec = argocd_scope("payment-api", &apps, Some("evidence-reader"));

    let err = collect(&connectors, &team, &spec)
        .await
        .expect_err("the reader has no Role on applications");
    assert!(matches!(err, ConnectorError::Forbidden(_)), "{err:?}");
    // The apiserver's own explanation, naming the identity actually used.
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "User \"system:serviceaccount:{team}:evidence-reader\" cannot get resource \"applications\" in API group \"argoproj.io\""
        )),
        "{message}"
    );
}

#[tokio::test]
async fn argocd_reader_with_a_role_on_applications_reads_the_facts() {
    argocd_crd();
    let client = support::client().await;
    let team = support::namespace(&client, "argocd-team").await;
    let apps = support::namespace(&client, "argocd-apps").await;
    create_application(&client, &apps, "payment-api").await;
    support::kubectl_ok(&["-n", &team, "create", "serviceaccount", "evidence-reader"]);
    support::kubectl_ok(&[
        "-n",
        &apps,
        "create",
        "role",
        "read-payment-api-application",
        "--verb=get",
        "--resource=applications.argoproj.io",
        "--resource-name=payment-api",
    ]);
    support::kubectl_ok(&[
        "-n",
        &apps,
        "create",
        "rolebinding",
        "evidence-reader",
        "--role=read-payment-api-application",
        &format!("--serviceaccount={team}:evidence-reader"),
    ]);
    let connectors = connectors(client).await;

    let doc = collect(
        &connectors,
        &team,
        &argocd_scope("payment-api", &apps, Some("evidence-reader")),
    )
    .await
    .expect("the reader's Role allows get on this Application");
    assert_application_facts(&doc);
}

/// A loopback endpoint that refuses every request with 401 and records the
/// Authorization header it was sent.
fn refusing_endpoint() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let addr = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                    && let Ok(mut seen) = record.lock()
                {
                    seen.push(value.trim().to_string());
                }
                line.clear();
            }
            let body = r#"{"status":"error","errorType":"unauthorized","error":"bad token"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn prometheus_token_from_a_secret_is_sent_but_never_shown_in_errors() {
    const TOKEN: &str = "prom-token-7f3a9c1e5b2d8f4a6c0e";
    let client = support::client().await;
    let ns = support::namespace(&client, "prom-token").await;
    support::kubectl_ok(&[
        "-n",
        &ns,
        "create",
        "secret",
        "generic",
        "prometheus-token",
        &format!("--from-literal=token={TOKEN}"),
    ]);
    let connectors = connectors(client).await;
    let scope = |url: &str| -> ConnectorScopeSpec {
        serde_json::from_value(json!({
            "connector": "prometheus",
            "prometheus": {"url": url, "queries": [{"name": "error_rate", "query": "sum(rate(http_requests_total[5m]))", "unit": "%"}]},
            "secretRef": {"name": "prometheus-token", "key": "token"}
        }))
        .expect("ConnectorScope spec")
    };
    let req = |spec| ScopeRequest {
        namespace: &ns,
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

    let (url, seen) = refusing_endpoint();
    let spec = scope(&url);
    let err = connectors
        .collect(&req(&spec))
        .await
        .expect_err("the endpoint refuses the token");
    assert!(matches!(err, ConnectorError::Forbidden(_)), "{err:?}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
    let sent = seen.lock().expect("recorded headers").clone();
    assert_eq!(sent, vec![format!("Bearer {TOKEN}")]);

    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let spec = scope(&format!("http://127.0.0.1:{closed}"));
    let err = connectors
        .collect(&req(&spec))
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, ConnectorError::Unreachable(_)), "{err:?}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
}

/// Serves one Application document at `/api/v1/applications/<name>` the way
/// Argo CD's API server answers it, to bearer `token` only (403 otherwise,
/// as Argo CD does for both a missing and a hidden Application). Records
/// each request line.
fn argocd_api(name: &str, token: &str, application: Value) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let addr = listener.local_addr().expect("address");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&requests);
    let path = format!("/api/v1/applications/{name}?");
    let expected_auth = format!("Bearer {token}");
    let body = application.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut authorized = false;
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    authorized = value.trim() == expected_auth;
                }
                line.clear();
            }
            if let Ok(mut seen) = record.lock() {
                seen.push(request_line.trim_end().to_string());
            }
            let found = request_line.starts_with(&format!("GET {path}"));
            let (status, body) = if authorized && found {
                ("200 OK", body.clone())
            } else {
                (
                    "403 Forbidden",
                    r#"{"error":"permission denied","code":7,"message":"permission denied"}"#
                        .to_string(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), requests)
}

#[tokio::test]
async fn argocd_api_with_a_token_reads_the_same_facts_as_the_resource() {
    const TOKEN: &str = "argocd-token-0c9e1d2b7a4f";
    argocd_crd();
    let client = support::client().await;
    let ns = support::namespace(&client, "argocd-api").await;
    create_application(&client, &ns, "payment-api").await;
    // The API answers the Application object itself: serve the one the
    // apiserver holds.
    let stored = applications(&client, &ns)
        .get("payment-api")
        .await
        .expect("reading the Application back");
    let stored = serde_json::to_value(&stored).expect("Application JSON");
    support::kubectl_ok(&[
        "-n",
        &ns,
        "create",
        "secret",
        "generic",
        "argocd-token",
        &format!("--from-literal=token={TOKEN}"),
    ]);
    let connectors = connectors(client).await;
    let scope = |server: &str, key: &str| -> ConnectorScopeSpec {
        serde_json::from_value(json!({
            "connector": "argocd",
            "argocd": {"application": "payment-api", "namespace": ns, "server": server},
            "secretRef": {"name": "argocd-token", "key": key}
        }))
        .expect("ConnectorScope spec")
    };

    let (server, requests) = argocd_api("payment-api", TOKEN, stored);
    let doc = collect(&connectors, &ns, &scope(&server, "token"))
        .await
        .expect("the API answers the Application");
    assert_application_facts(&doc);
    assert_eq!(doc.scope["source"], server);
    assert_eq!(
        requests.lock().expect("requests").as_slice(),
        [format!(
            "GET /api/v1/applications/payment-api?appNamespace={ns} HTTP/1.1"
        )]
    );

    // Another token: Argo CD's 403 is Forbidden, and no token is shown.
    support::kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "secret",
        "argocd-token",
        "--type=merge",
        "-p",
        r#"{"stringData":{"other":"argocd-token-stale-55aa"}}"#,
    ]);
    let err = collect(&connectors, &ns, &scope(&server, "other"))
        .await
        .expect_err("the API refuses another token");
    assert!(matches!(err, ConnectorError::Forbidden(_)), "{err:?}");
    assert!(
        !err.to_string().contains("argocd-token-stale-55aa") && !err.to_string().contains(TOKEN),
        "{err}"
    );
}
