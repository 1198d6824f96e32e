//! The console's screenshots under docs/screenshots/, and whether they are
//! current. Every page is rendered by the console's own router from fixed
//! objects (the seed's payment-api Policy, ReleaseGate, HOLD Passport and
//! ConnectorScopes under `examples/`, plus a namespace on its way to its
//! first passport) at a fixed time, for a fixed ServiceAccount signed in
//! through the real apiserver (TokenReview, SubjectAccessReview).
//!
//! By default the test renders each page's HTML (no browser), normalises
//! the per-session values (CSRF token, sign-in nonce) and compares its
//! SHA-256 with docs/screenshots/manifest.json: a page that changed means
//! the screenshots are stale. `make screenshots` (RP_SCREENSHOTS=write)
//! rewrites the manifest and takes each PNG with headless Chromium.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use kube::api::{Api, PostParams};
use releasepassport::api::*;
use releasepassport::console::{Console, ConsoleState, Settings, auth::Auth};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use support::controller as ctl;

const LIMIT: Duration = Duration::from_secs(90);
const NS: &str = "payments";
const NEW_NS: &str = "checkout";
const ACCOUNT_NS: &str = "rp-screenshots";
const ACCOUNT: &str = "console-screenshots";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn dir() -> PathBuf {
    repo().join("docs/screenshots")
}

fn in_ns<T: kube::Resource>(mut object: T, ns: &str) -> T {
    object.meta_mut().namespace = Some(ns.into());
    object
}

/// The fixed objects every page is rendered from, and the time they are rendered at.
fn fixtures() -> (ConsoleState, jiff::Timestamp, String) {
    let passport: Passport = in_ns(support::load_yaml("examples/passport.yaml"), NS);
    let now = passport.spec.generated_at + jiff::SignedDuration::from_mins(10);
    let policy: Policy = in_ns(support::load_yaml("examples/policy.yaml"), NS);
    let mut gate: ReleaseGate = in_ns(support::load_yaml("examples/releasegate.yaml"), NS);
    gate.metadata.generation = Some(1);
    gate.status = Some(
        serde_json::from_value(json!({
            "observedGeneration": 1,
            "decision": passport.spec.decision,
            "confidence": passport.spec.confidence,
            "passportName": passport.metadata.name,
            "evaluatedAt": passport.spec.generated_at,
            "failingChecks": ["error-rate", "rollback-image", "change-approval"],
            "nextActions": passport.spec.next_actions,
            "mode": "shadow",
        }))
        .expect("gate status"),
    );
    let mut scopes: Vec<ConnectorScope> = [
        "examples/connectorscope-prometheus.yaml",
        "examples/connectorscope-kubernetes.yaml",
        "examples/connectorscope-argocd.yaml",
        "examples/connectorscope-pagerduty.yaml",
        "examples/connectorscope-jira.yaml",
    ]
    .iter()
    .map(|f| in_ns(support::load_yaml::<ConnectorScope>(f), NS))
    .collect();
    for s in &mut scopes {
        s.status = Some(
            serde_json::from_value(
                json!({"health": "Healthy", "lastObservedAt": passport.spec.generated_at}),
            )
            .expect("scope status"),
        );
    }
    // A namespace on its way to its first passport: a Policy and a scope.
    let mut new_policy = policy.clone();
    new_policy.metadata.name = Some("checkout-api-production".into());
    let new_policy = in_ns(new_policy, NEW_NS);
    let mut new_scope = scopes[1].clone();
    new_scope.metadata.name = Some("checkout-api-runtime".into());
    let new_scope = in_ns(new_scope, NEW_NS);
    scopes.push(new_scope);

    let mut keys = releasepassport::passport::VerifyingKeySet::new();
    let pem = std::fs::read_to_string(repo().join("examples/passport.pub")).expect("key");
    keys.insert(releasepassport::passport::load_verifying_key_pem(&pem).expect("public key"));
    let name = passport.metadata.name.clone().expect("passport name");
    let state = ConsoleState::from_objects(
        vec![gate],
        vec![passport],
        vec![policy, new_policy],
        scopes,
        vec![],
        keys,
    );
    (state, now, name)
}

/// The pages, by screenshot name.
fn pages(passport: &str) -> Vec<(&'static str, String)> {
    vec![
        ("login", "/console/login".into()),
        ("overview", "/console".into()),
        ("releases", "/console/passports".into()),
        ("passport", format!("/console/passports/{NS}/{passport}")),
        ("gates", "/console/gates".into()),
        (
            "gate",
            format!("/console/gates/{NS}/payment-api-production"),
        ),
        ("radar", "/console/radar".into()),
        ("metrics", "/console/metrics".into()),
        ("integrations", "/console/integrations".into()),
        ("audit", "/console/audit".into()),
        ("settings", "/console/settings".into()),
    ]
}

/// The fixed reader: may read the project's resources in every namespace.
async fn account(client: &kube::Client) -> String {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": ACCOUNT_NS}})).expect("ns");
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating {ACCOUNT_NS}: {e}"),
    }
    let manifest = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {ACCOUNT}, namespace: {ACCOUNT_NS}}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {ACCOUNT}}}\n\
         rules: [{{apiGroups: [releasepassport.io], resources: [releasegates, passports, policies, connectorscopes], verbs: [get, list, watch]}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {ACCOUNT}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {ACCOUNT}}}\n\
         subjects: [{{kind: ServiceAccount, name: {ACCOUNT}, namespace: {ACCOUNT_NS}}}]\n"
    );
    let file = std::env::temp_dir().join(format!("rp-screenshots-{}.yaml", std::process::id()));
    std::fs::write(&file, manifest).expect("manifest");
    support::kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
    support::kubectl_ok(&[
        "create",
        "token",
        ACCOUNT,
        "-n",
        ACCOUNT_NS,
        "--duration",
        "1h",
    ])
    .trim()
    .to_string()
}

/// Serves the console over the fixed objects on a free port.
async fn serve(client: kube::Client, state: ConsoleState, now: jiff::Timestamp) -> String {
    let console = Arc::new(Console {
        state: Arc::new(state),
        auth: Auth::new(client.clone(), Duration::from_secs(3600)),
        connectors: None,
        settings: Settings {
            namespace: "release-passport-system".into(),
            replica: Some("release-passport-7d9f8b6c5-x2x4q".into()),
            signing_key_secret: "release-passport-signing-key".into(),
            signing_key_id: "example".into(),
            public_key_configmap: "releasepassport-public-key".into(),
            passport_history: 50,
            resync_seconds: 300,
            connector_timeout_seconds: 10,
            session_ttl_seconds: 3600,
            webhook: true,
            leader_election: true,
        },
        public_key_pem: String::new(),
        kube_config: support::config().await,
        llm: None,
        oidc: None,
        clock: Some(now),
        client,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let app = releasepassport::console::router(console);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://127.0.0.1:{port}")
}

/// The page without its per-session values.
fn normalise(html: &str) -> String {
    let per_session = regex::Regex::new(r#"(name="(?:csrf|nonce)" value=")[^"]*""#).expect("regex");
    per_session.replace_all(html, "${1}SESSION\"").into_owned()
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Each page's normalised HTML, fetched with the account's bearer token
/// (the sign-in page without it).
async fn render(base: &str, token: &str, passport: &str) -> BTreeMap<String, (String, String)> {
    let http = reqwest::Client::new();
    let mut out = BTreeMap::new();
    for (name, path) in pages(passport) {
        let mut request = http.get(format!("{base}{path}"));
        if name != "login" {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("page");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let html = normalise(&response.text().await.expect("page body"));
        assert!(!html.contains(token), "{path} shows the token");
        out.insert(name.to_string(), (path, sha256(&html)));
    }
    out
}

fn manifest(pages: &BTreeMap<String, (String, String)>) -> Value {
    json!({
        "about": "SHA-256 of each console page's HTML, rendered from fixed objects (tests/cluster_console_screenshots.rs) with the per-session CSRF token and sign-in nonce normalised. Regenerate with `make screenshots`.",
        "pages": pages.iter().map(|(name, (path, hash))| json!({
            "page": name, "path": path, "png": format!("{name}.png"), "htmlSha256": hash,
        })).collect::<Vec<_>>(),
    })
}

/// console.js's relative ages, computed at `arguments[0]` (milliseconds).
const AGES_AT: &str = r#"
var now = arguments[0];
function fmt(s) {
  if (s < 90) return s + "s";
  if (s < 5400) return Math.round(s / 60) + "m";
  if (s < 129600) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}
document.querySelectorAll("time[datetime]").forEach(function (t) {
  var at = Date.parse(t.getAttribute("datetime"));
  if (isNaN(at)) return;
  var s = Math.round((now - at) / 1000);
  t.textContent = s < 0 ? "in " + fmt(-s) : fmt(s) + " ago";
});
"#;

/// Signs in through the form and takes one PNG per page.
async fn shoot(base: &str, token: &str, passport: &str, now: jiff::Timestamp) {
    let profile = tempfile::tempdir().expect("profile dir");
    let (_driver, b) = support::browser::start(profile.path(), 1280, 900).await;
    b.goto(&format!("{base}/console/login"))
        .await
        .expect("login");
    let png = b.screenshot().await.expect("screenshot");
    std::fs::write(dir().join("login.png"), png).expect("login.png");
    b.find(Locator::Id("token"))
        .await
        .expect("token field")
        .send_keys(token)
        .await
        .expect("type");
    b.find(Locator::Id("sign-in"))
        .await
        .expect("button")
        .click()
        .await
        .expect("sign in");
    b.wait()
        .at_most(LIMIT)
        .for_element(Locator::Id("account-user"))
        .await
        .expect("signed in");
    for (name, path) in pages(passport).into_iter().filter(|(n, _)| *n != "login") {
        b.goto(&format!("{base}{path}")).await.expect("page");
        // Times are turned into ages by the page script: let it run.
        b.wait()
            .at_most(LIMIT)
            .for_element(Locator::Css("main"))
            .await
            .expect("page body");
        // Ages ("10m ago") as at the fixed time, not the machine's.
        b.execute(AGES_AT, vec![json!(now.as_millisecond())])
            .await
            .expect("ages at the fixed time");
        // The whole page, up to 4000 pixels high.
        let height = b
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .expect("page height")
            .as_u64()
            .unwrap_or(900)
            .clamp(900, 4000);
        b.set_window_size(1280, height as u32)
            .await
            .expect("window size");
        let png = b.screenshot().await.expect("screenshot");
        b.set_window_size(1280, 900).await.expect("window size");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(dir().join(format!("{name}.png")), png).expect("write screenshot");
    }
    b.close().await.expect("close the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_screenshots_are_current() {
    let client = support::client().await;
    let token = account(&client).await;
    let (state, now, passport) = fixtures();
    let base = serve(client, state, now).await;
    // The first TokenReview of a new ServiceAccount token can race its creation.
    ctl::eventually(LIMIT, "the console to accept the account's token", || {
        let (base, token) = (base.clone(), token.clone());
        async move {
            reqwest::Client::new()
                .get(format!("{base}/console"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await;
    let rendered = render(&base, &token, &passport).await;
    let again = render(&base, &token, &passport).await;
    assert_eq!(rendered, again, "the pages render the same twice");
    let path = dir().join("manifest.json");
    if std::env::var("RP_SCREENSHOTS").as_deref() == Ok("write") {
        std::fs::create_dir_all(dir()).expect("docs/screenshots");
        let text = serde_json::to_string_pretty(&manifest(&rendered)).expect("manifest") + "\n";
        std::fs::write(&path, text).expect("write the manifest");
        shoot(&base, &token, &passport, now).await;
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make screenshots`)", path.display()));
    let recorded: Value = serde_json::from_str(&text).expect("manifest JSON");
    let now = manifest(&rendered)["pages"].clone();
    let then = recorded["pages"].as_array().cloned().unwrap_or_default();
    let changed: Vec<&str> = now
        .as_array()
        .expect("pages")
        .iter()
        .filter(|page| !then.contains(page))
        .filter_map(|page| page["page"].as_str())
        .collect();
    assert!(
        changed.is_empty() && then.len() == rendered.len(),
        "the console's pages changed since docs/screenshots/ were taken ({}): run `make screenshots` and commit docs/screenshots/",
        changed.join(", ")
    );
    for (name, _) in pages(&passport) {
        assert!(
            dir().join(format!("{name}.png")).is_file(),
            "docs/screenshots/{name}.png is missing: run `make screenshots`"
        );
    }
}
