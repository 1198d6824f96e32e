//! The investigation of a release on the real console: a gate reaches ALLOW,
//! then its evidence turns into the seed's HOLD (error rate 1.1% → 2.7%,
//! rollback image gone, Jira change no longer linked). The release page of
//! the HOLD names those three checks, ranked, and what changed since the
//! ALLOW. The optional language-model summary: with no endpoint configured
//! nothing calls out (a listener the usual OpenAI variables point at sees no
//! connection); with a local OpenAI-compatible stub the summary is shown,
//! labelled, beside an unchanged decision and investigation, and the stub
//! was sent the redacted investigation with the operator's key.

mod support;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use serde_json::{Value, json};
use support::controller as ctl;

const LIMIT: Duration = Duration::from_secs(90);
const IMAGE: &str = "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const ROLLBACK_IMAGE: &str = "registry.example.com/payment-api@sha256:2222222222222222222222222222222222222222222222222222222222222222";
const KEY: &str = "sk-local-stub-key-5f1e0c9a";
const STUB_TEXT: &str = "The release is held: the error rate rose to 2.7% after the last ALLOW.";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The seed's evidence, pushed by CI, at one error rate and link state.
fn evidence(error_rate: &str, change_linked: bool) -> Value {
    let now = jiff::Timestamp::now();
    json!([
        {"connector": "ci-argocd", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "ci-prometheus", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
         "facts": [{"name": "error_rate", "value": error_rate}]},
        {"connector": "ingest", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
         "facts": [{"name": "active_sev1_incidents", "value": 0},
                   {"name": "change_approval_linked", "value": change_linked}]}
    ])
}

/// Waits until the gate's status describes its current generation.
async fn decided(client: &Client, ns: &str, not: Option<&str>) -> (Decision, String) {
    let api: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    ctl::eventually(LIMIT, "a decision of the current generation", || {
        let api = api.clone();
        async move {
            let g = api.get("payment-api-production").await.ok()?;
            let st = g.status?;
            (st.observed_generation? >= g.metadata.generation?).then_some(())?;
            let name = st.passport_name?;
            (Some(name.as_str()) != not).then_some((st.decision?, name))
        }
    })
    .await
}

/// A ServiceAccount token that may read the project's resources in `ns`.
fn viewer(ns: &str) -> String {
    let manifest = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: viewer, namespace: {ns}}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: viewer, namespace: {ns}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}}\n\
         subjects: [{{kind: ServiceAccount, name: viewer, namespace: {ns}}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: viewer-rp, namespace: {ns}}}\n\
         rules: [{{apiGroups: [releasepassport.io], resources: [releasegates, passports, policies, connectorscopes], verbs: [get, list, watch]}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: viewer-rp, namespace: {ns}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: viewer-rp}}\n\
         subjects: [{{kind: ServiceAccount, name: viewer, namespace: {ns}}}]\n"
    );
    let file = std::env::temp_dir().join(format!("rp-investigation-{ns}.yaml"));
    std::fs::write(&file, manifest).expect("manifest");
    support::kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
    support::kubectl_ok(&["create", "token", "viewer", "-n", ns, "--duration", "1h"])
        .trim()
        .to_string()
}

/// Fetches a console page with a bearer token until it contains `needle`.
async fn page_with(url: &str, token: &str, needle: &str) -> String {
    let http = reqwest::Client::new();
    ctl::eventually(LIMIT, &format!("{url} to show {needle:?}"), || {
        let http = http.clone();
        async move {
            let r = http.get(url).bearer_auth(token).send().await.ok()?;
            let body = r.text().await.ok()?;
            body.contains(needle).then_some(body)
        }
    })
    .await
}

/// The `data-rule` attributes of the findings, in page order.
fn ranked(page: &str) -> Vec<String> {
    let findings = &page[page.find("id=\"findings\"").expect("findings")..];
    let findings = &findings[..findings.find("</ol>").expect("end of findings")];
    findings
        .split("data-rule=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(String::from)
        .collect()
}

/// The text of the finding of one rule.
fn finding<'a>(page: &'a str, rule: &str) -> &'a str {
    let start = page
        .find(&format!("data-rule=\"{rule}\""))
        .unwrap_or_else(|| panic!("no finding for {rule}"));
    let finding = &page[start..];
    &finding[..finding.find("</li>").expect("end of the finding")]
}

/// A local OpenAI-compatible endpoint that records what it is sent.
async fn stub() -> (u16, Arc<Mutex<Vec<(String, Value)>>>) {
    use axum::http::HeaderMap;
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(
            move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                let record = record.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    record.lock().expect("lock").push((auth, body));
                    axum::Json(
                        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "stub",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": STUB_TEXT}}]}),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("stub listener");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_page_explains_a_hold_after_an_allow() {
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let ns = support::namespace(&client, "investigation").await;

    let mut policy = support::ci_policy();
    policy.spec.rules.retain(|r| r.id != "deployment-ready");
    policy.metadata.name = Some("payment-api-production".into());
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    let gate: ReleaseGate = serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
        "metadata": {"name": "payment-api-production"},
        "spec": {"service": "payment-api", "release": "v2.18.4", "environment": "production",
                 "mode": "shadow", "policyRef": {"name": "payment-api-production"},
                 "artifact": {"image": IMAGE},
                 "rollback": {"release": "v2.17.9", "image": ROLLBACK_IMAGE},
                 "evidence": evidence("1.1%", true)}
    }))
    .expect("gate");
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    gates
        .create(&PostParams::default(), &gate)
        .await
        .expect("gate");

    // Without a model endpoint. The variables OpenAI clients read point at
    // a listener that must see no connection.
    let trap = TcpListener::bind("127.0.0.1:0").expect("trap listener");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_url = format!("http://{}/v1", trap.local_addr().expect("addr"));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = support::cluster();
    let mut first = ctl::start_with_env(
        &env.kubeconfig,
        &format!("rp-test-investigation-a-{}", std::process::id()),
        "investigation-a",
        &[
            "--no-webhook",
            "--console-addr",
            &format!("127.0.0.1:{port}"),
        ],
        &[
            ("OPENAI_BASE_URL", &trap_url),
            ("OPENAI_API_BASE", &trap_url),
            ("OPENAI_API_KEY", KEY),
        ],
    );
    let (decision, allowed) = decided(&client, &ns, None).await;
    assert_eq!(
        decision,
        Decision::Allow,
        "the gate's first passport allows"
    );

    // The evidence turns into the seed's HOLD.
    gates
        .patch(
            "payment-api-production",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "rollback": {"release": "v2.17.9", "image": null},
                "evidence": evidence("2.7%", false),
            }})),
        )
        .await
        .expect("the seed's HOLD evidence");
    let (decision, held) = decided(&client, &ns, Some(&allowed)).await;
    assert_eq!(decision, Decision::Hold);

    let token = viewer(&ns);
    let url = format!("{base}/console/passports/{ns}/{held}");
    let page = page_with(&url, &token, "id=\"changes\"").await;
    assert_eq!(
        ranked(&page),
        ["error-rate", "rollback-image", "change-approval"]
    );
    for (rule, sentence) in [
        (
            "error-rate",
            "Prometheus error rate below 2% rose from 1.1% at the last ALLOW to 2.7%, required &lt; 2%.",
        ),
        (
            "rollback-image",
            "Rollback evidence is missing: no rollback image is attached for v2.17.9.",
        ),
        ("change-approval", "Jira change approval"),
        ("change-approval", "observed false"),
    ] {
        let finding = finding(&page, rule);
        assert!(finding.contains(sentence), "{sentence:?} not in {finding}");
    }
    let changes = &page[page.find("id=\"changes\"").expect("changes")..];
    let changes = &changes[..changes.find("</table>").expect("end of changes")];
    for what in ["check error-rate", "check change-approval", "rollback"] {
        assert!(
            changes.contains(what),
            "{what} not among the changes: {changes}"
        );
    }
    assert!(
        changes.contains("1.1%") && changes.contains("2.7%"),
        "{changes}"
    );
    assert!(
        !page.contains("llm-summary"),
        "no summary without an endpoint"
    );
    page_with(
        &format!("{base}/console/settings"),
        &token,
        "off: nothing is sent anywhere",
    )
    .await;
    let mut connections = 0;
    while trap.accept().is_ok() {
        connections += 1;
    }
    assert_eq!(connections, 0, "nothing called out without an endpoint");
    first.kill();

    // With a local OpenAI-compatible endpoint.
    let (stub_port, seen) = stub().await;
    let key_file = std::env::temp_dir().join(format!("rp-llm-key-{}", std::process::id()));
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key file");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let second = ctl::start(
        &format!("rp-test-investigation-b-{}", std::process::id()),
        "investigation-b",
        &[
            "--no-webhook",
            "--console-addr",
            &format!("127.0.0.1:{port}"),
            "--console-llm-endpoint",
            &format!("http://127.0.0.1:{stub_port}/v1"),
            "--console-llm-model",
            "stub-model",
            "--console-llm-key-file",
            key_file.to_str().expect("path"),
        ],
    );
    let url = format!("{base}/console/passports/{ns}/{held}");
    let page = page_with(&url, &token, "id=\"llm-text\"").await;
    assert!(page.contains(STUB_TEXT));
    assert!(page.contains("Language-model summary (not part of the decision)"));
    assert_eq!(
        ranked(&page),
        ["error-rate", "rollback-image", "change-approval"],
        "the deterministic investigation is unchanged"
    );
    assert!(!page.contains(KEY), "the key is not on the page");
    let settings = page_with(&format!("{base}/console/settings"), &token, "stub-model").await;
    assert!(settings.contains("from a file (content never shown)"));
    assert!(
        !settings.contains(KEY),
        "the key is not on the settings page"
    );
    let g = gates.get("payment-api-production").await.expect("gate");
    assert_eq!(
        g.status.and_then(|s| s.decision),
        Some(Decision::Hold),
        "the summary changed no decision"
    );
    {
        let seen = seen.lock().expect("lock");
        for (auth, body) in seen.iter() {
            assert_eq!(auth, &format!("Bearer {KEY}"));
            assert_eq!(body["model"], "stub-model");
            let sent = body["messages"][1]["content"].as_str().expect("content");
            let sent: Value = serde_json::from_str(sent).expect("the investigation as JSON");
            assert_eq!(sent["findings"][0]["ruleId"], "error-rate", "{sent}");
        }
    }
    // Shown again from memory, not asked again.
    page_with(&url, &token, "id=\"llm-text\"").await;
    assert_eq!(seen.lock().expect("lock").len(), 1, "one call per passport");
    let log = second.log();
    assert!(!log.contains(KEY), "the key never reaches the log");
    let _ = std::fs::remove_file(key_file);
}
