//! The console end to end: the real controller binary serves it against the
//! local control plane; headless Chromium (driven over WebDriver by
//! chromedriver) signs in with ServiceAccount tokens, reads passports,
//! exports, simulates and signs out. Screenshots of every page at desktop and
//! phone widths go to target/console-screenshots/.

mod support;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use releasepassport::api::*;
use serde_json::json;
use support::controller as ctl;

const LIMIT: Duration = Duration::from_secs(90);
const SECRET_JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaS1ib3QifQ.c2lnbmF0dXJlLXNlY3JldA";
const PAYMENT_IMAGE: &str = "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const CHECKOUT_IMAGE: &str = "registry.example.com/checkout-api@sha256:1111111111111111111111111111111111111111111111111111111111111111";
const ROLLBACK_IMAGE: &str = "registry.example.com/checkout-api@sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The seed's policy without the rule that needs a running Deployment, plus
/// an optional rule that shows a CI note (which carries a token).
fn policy() -> Policy {
    let mut policy: Policy = support::ci_policy();
    policy.spec.rules.retain(|r| r.id != "deployment-ready");
    let note: PolicyRule = serde_json::from_value(json!({
        "id": "release-note", "label": "CI release note attached", "connector": "ingest",
        "fact": "release_note", "condition": {"operator": "present"}, "onFail": "HOLD", "required": false
    }))
    .expect("rule");
    policy.spec.rules.push(note);
    policy
}

fn evidence(error_rate: &str, approval_linked: bool) -> serde_json::Value {
    let now = jiff::Timestamp::now();
    json!([
        {"connector": "ci-argocd", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "ci-prometheus", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
         "facts": [{"name": "error_rate", "value": error_rate}]},
        {"connector": "ingest", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
         "facts": [{"name": "active_sev1_incidents", "value": 0},
                   {"name": "change_approval_linked", "value": approval_linked},
                   {"name": "release_note", "value": format!("deployed by CI with Authorization: Bearer {SECRET_JWT}")}]}
    ])
}

async fn create_gate(client: &Client, ns: &str, gate: serde_json::Value) {
    let gate: ReleaseGate = serde_json::from_value(gate).expect("gate");
    Api::<ReleaseGate>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &gate)
        .await
        .expect("create gate");
}

async fn seed(client: &Client, ns: &str, service: &str, image: &str, extra: serde_json::Value) {
    let mut p = policy();
    p.metadata.name = Some(format!("{service}-policy"));
    Api::<Policy>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &p)
        .await
        .expect("policy");
    let mut spec = json!({
        "service": service, "release": "v2.18.4", "environment": "production", "mode": "shadow",
        "policyRef": {"name": format!("{service}-policy")},
        "artifact": {"image": image, "sourceSha": "9c1e4b7f2a8d3e6c5b4a3f2e1d0c9b8a7f6e5d4c"},
        "rollback": {"release": "v2.17.9"},
        "evidence": evidence("3.4%", false),
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    create_gate(
        client,
        ns,
        json!({"apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
               "metadata": {"name": format!("{service}-production")}, "spec": spec}),
    )
    .await;
}

async fn decided(client: &Client, ns: &str, gate: &str) -> (Decision, String) {
    let api: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    ctl::eventually(LIMIT, &format!("a decision for {ns}/{gate}"), || {
        let api = api.clone();
        async move {
            let g = api.get(gate).await.ok()?;
            let st = g.status?;
            Some((st.decision?, st.passport_name?))
        }
    })
    .await
}

/// A ServiceAccount that may read the project's resources in `ns` only.
fn reader(ns: &str, name: &str) -> String {
    let manifest = format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: {name}, namespace: {ns}}}
rules:
  - apiGroups: [releasepassport.io]
    resources: [releasegates, passports, policies, connectorscopes]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {name}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}
subjects: [{{kind: ServiceAccount, name: {name}, namespace: {ns}}}]
"#
    );
    let file = std::env::temp_dir().join(format!("rp-console-{ns}-{name}.yaml"));
    std::fs::write(&file, manifest).expect("manifest");
    support::kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
    token(ns, name)
}

fn token(ns: &str, name: &str) -> String {
    support::kubectl_ok(&["create", "token", name, "-n", ns, "--duration", "1h"])
        .trim()
        .to_string()
}

struct Driver {
    process: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn find_binary(name: &str, install_hint: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("{name} not found on PATH: {install_hint}"))
}

/// Starts chromedriver and a headless Chromium session that downloads into `downloads`.
async fn browser(downloads: &Path) -> (Driver, Browser) {
    let hint = "run `make deps` (bash hack/install-deps.sh chromium installs Debian chromium and chromium-driver)";
    let chromedriver = find_binary("chromedriver", hint);
    let chromium = find_binary("chromium", hint);
    let port = free_port();
    let process = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let driver = Driver { process };
    let status = format!("http://127.0.0.1:{port}/status");
    ctl::eventually(LIMIT, "chromedriver to listen", || {
        let status = status.clone();
        async move {
            reqwest::get(&status)
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await;
    let profile = downloads.join("profile");
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
                "safebrowsing.enabled": false,
            },
        }
    });
    let caps = caps.as_object().cloned().expect("capabilities");
    let client = ClientBuilder::rustls()
        .expect("rustls")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session in headless Chromium");
    (driver, client)
}

async fn text(b: &Browser, css: &str) -> String {
    b.wait()
        .at_most(LIMIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("element {css}: {e}"))
        .prop("textContent")
        .await
        .expect("element text")
        .unwrap_or_default()
        .trim()
        .to_string()
}

async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in b.find_all(Locator::Css(css)).await.expect("find_all") {
        let t = e
            .prop("textContent")
            .await
            .expect("text")
            .unwrap_or_default();
        out.push(t.trim().to_string());
    }
    out
}

async fn shoot(b: &Browser, name: &str) {
    let dir = screenshot_dir();
    for (label, w, h) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        b.set_window_size(w, h).await.expect("window size");
        let png = b.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(dir.join(format!("{name}-{label}.png")), png).expect("write screenshot");
    }
    b.set_window_size(1280, 900).await.expect("window size");
}

/// Loads `url` until the page contains `needle` (the console's caches follow
/// the apiserver's watch).
async fn page_with(b: &Browser, url: &str, needle: &str) -> String {
    ctl::eventually(LIMIT, &format!("{url} to show {needle:?}"), || async {
        b.goto(url).await.ok()?;
        let source = b.source().await.ok()?;
        source.contains(needle).then_some(source)
    })
    .await
}

fn form(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(String::from)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_console_in_a_browser() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let team = support::namespace(&client, "console-team").await;
    let other = support::namespace(&client, "console-other").await;

    // Team namespace: payment-api HOLD (the seed), checkout-api HOLD on the
    // error rate only. Other namespace: ledger-api, which the team must not see.
    seed(&client, &team, "payment-api", PAYMENT_IMAGE, json!({})).await;
    seed(
        &client,
        &team,
        "checkout-api",
        CHECKOUT_IMAGE,
        json!({"rollback": {"release": "v2.17.9", "image": ROLLBACK_IMAGE},
               "evidence": evidence("3.4%", true)}),
    )
    .await;
    seed(&client, &other, "ledger-api", PAYMENT_IMAGE, json!({})).await;
    let scope: ConnectorScope = serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "ConnectorScope",
        "metadata": {"name": "payment-api-ci"}, "spec": {"connector": "ingest"}
    }))
    .expect("scope");
    Api::<ConnectorScope>::namespaced(client.clone(), &team)
        .create(&PostParams::default(), &scope)
        .await
        .expect("scope");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut controller = ctl::start(
        &format!("rp-test-console-{}", std::process::id()),
        "console-tests",
        &[
            "--no-webhook",
            "--console-addr",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let (decision, passport) = decided(&client, &team, "payment-api-production").await;
    assert_eq!(decision, Decision::Hold);
    let (checkout_decision, _) = decided(&client, &team, "checkout-api-production").await;
    assert_eq!(checkout_decision, Decision::Hold);
    decided(&client, &other, "ledger-api-production").await;
    let login_url = format!("{base}/console/login");
    ctl::eventually(LIMIT, "the console to serve", || {
        let url = login_url.clone();
        async move {
            reqwest::get(&url)
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await;

    let viewer = reader(&team, "console-viewer");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");

    // --- without a browser: bearer header, refusals, cookie attributes, CSRF.
    let r = http
        .get(format!("{base}/console/passports"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303, "no credentials: sent to sign in");
    let r = http
        .get(format!("{base}/console/passports"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401, "a token the apiserver rejects");
    let page = ctl::eventually(
        LIMIT,
        "the viewer's passport list to show payment-api",
        || {
            let (http, viewer, base) = (http.clone(), viewer.clone(), base.clone());
            async move {
                let r = http
                    .get(format!("{base}/console/passports"))
                    .bearer_auth(&viewer)
                    .send()
                    .await
                    .ok()?;
                let body = r.text().await.ok()?;
                body.contains("payment-api").then_some(body)
            }
        },
    )
    .await;
    assert!(
        !page.contains("ledger-api"),
        "another namespace's passports are not listed"
    );
    let r = http
        .get(format!("{base}/console/passports/{other}/x"))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 403);

    let r = http.get(&login_url).send().await.expect("login page");
    let nonce_cookie = set_cookie(&r, "rp_login").expect("login nonce cookie");
    let nonce = cookie_value(&nonce_cookie);
    let r = http
        .post(&login_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("rp_login={nonce}"))
        .body(form(&[("token", &viewer), ("nonce", "forged")]))
        .send()
        .await
        .expect("post login");
    assert_eq!(
        r.status(),
        401,
        "a sign-in without the form's nonce is refused"
    );
    let r = http
        .post(&login_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("rp_login={nonce}"))
        .body(form(&[("token", &viewer), ("nonce", &nonce)]))
        .send()
        .await
        .expect("post login");
    assert_eq!(r.status(), 303);
    let session = set_cookie(&r, "rp_session").expect("session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(
            session.contains(attr),
            "session cookie {session:?} lacks {attr}"
        );
    }
    assert!(!session.contains(&viewer), "the token is not the session");
    let r = http
        .post(format!(
            "{base}/console/gates/{team}/checkout-api-production/simulate"
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("rp_session={}", cookie_value(&session)))
        .body(form(&[("csrf", "wrong"), ("policy", "rules: []")]))
        .send()
        .await
        .expect("post simulate");
    assert_eq!(
        r.status(),
        403,
        "a simulation without the session's CSRF token is refused"
    );

    // --- in the browser.
    let downloads = tempfile::tempdir().expect("download dir");
    let (_driver, b) = browser(downloads.path()).await;
    b.goto(&format!("{base}/console")).await.expect("goto");
    assert!(
        b.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/console/login")
    );
    shoot(&b, "login").await;
    b.find(Locator::Id("token"))
        .await
        .expect("token field")
        .send_keys(&viewer)
        .await
        .expect("type");
    b.find(Locator::Id("sign-in"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let user = text(&b, "#account-user").await;
    assert_eq!(user, format!("system:serviceaccount:{team}:console-viewer"));

    // Overview and list: the team's releases, never the other namespace's.
    let overview = page_with(&b, &format!("{base}/console"), "payment-api").await;
    assert!(!overview.contains("ledger-api"));
    assert_eq!(text(&b, "#count-held").await, "2");
    // Keyboard first: the first Tab lands on "Skip to content".
    b.find(Locator::Css("body"))
        .await
        .expect("body")
        .send_keys("\u{E004}")
        .await
        .expect("tab");
    let focused = b
        .execute("return document.activeElement.textContent", vec![])
        .await
        .expect("focus");
    assert_eq!(focused, json!("Skip to content"));
    shoot(&b, "overview").await;
    let list = page_with(&b, &format!("{base}/console/passports"), "checkout-api").await;
    assert!(!list.contains("ledger-api"));
    shoot(&b, "releases").await;
    b.goto(&format!("{base}/console/passports/{other}/anything"))
        .await
        .expect("goto");
    let refused = b.source().await.expect("source");
    assert!(
        refused.contains(&format!("may not get passports in namespace {other}")),
        "{refused}"
    );

    // The seed's HOLD passport: three failing checks and their next actions.
    page_with(
        &b,
        &format!("{base}/console/passports/{team}/{passport}"),
        "Policy results",
    )
    .await;
    let failing: BTreeSet<String> = texts(&b, "#results tr[data-state=fail] td:first-child strong")
        .await
        .into_iter()
        .collect();
    assert_eq!(
        failing,
        ["change-approval", "error-rate", "rollback-image"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert_eq!(
        texts(&b, "#next-actions li").await,
        vec![
            "Re-sync the GitOps application and wait for fresh runtime evidence.".to_string(),
            "Attach rollback artifact for payment-api v2.17.9.".to_string(),
            "Link the Jira change approval, then re-run the shadow gate.".to_string(),
        ]
    );
    // The investigation: the HOLD checks before the approval one, each
    // explained, and no earlier ALLOW of this gate to compare with.
    let findings = b
        .find_all(Locator::Css("#findings li"))
        .await
        .expect("findings");
    let mut ranked = Vec::new();
    for f in findings {
        ranked.push(
            f.attr("data-rule")
                .await
                .expect("data-rule")
                .unwrap_or_default(),
        );
    }
    assert_eq!(ranked, ["error-rate", "rollback-image", "change-approval"]);
    let investigation = text(&b, "#investigation").await;
    assert!(
        investigation
            .contains("Rollback evidence is missing: no rollback image is attached for v2.17.9."),
        "{investigation}"
    );
    assert!(investigation.contains("This gate has no earlier ALLOW to compare with."));
    assert!(text(&b, "#signature").await.starts_with("verified"));
    let source = b.source().await.expect("source");
    assert!(!source.contains(SECRET_JWT), "no token on the page");
    shoot(&b, "passport").await;

    // Export: a real download, redacted.
    b.find(Locator::LinkText("Export JSON"))
        .await
        .expect("export link")
        .click()
        .await
        .expect("click");
    let file = downloads.path().join(format!("{passport}.json"));
    let exported = ctl::eventually(LIMIT, "the JSON export to be downloaded", || {
        let file = file.clone();
        async move {
            std::fs::read_to_string(&file)
                .ok()
                .filter(|s| s.trim_end().ends_with('}'))
        }
    })
    .await;
    let doc: serde_json::Value = serde_json::from_str(&exported).expect("exported JSON");
    assert_eq!(doc["decision"], "HOLD");
    assert!(
        exported.contains("[redacted]"),
        "the CI note's token was replaced"
    );
    assert!(!exported.contains(SECRET_JWT), "no token in the export");

    // Simulator: relaxing checkout-api's error-rate threshold to 5% allows it; nothing is written.
    let passports: Api<Passport> = Api::namespaced(client.clone(), &team);
    let before = passports
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .len();
    let gate_url = format!("{base}/console/gates/{team}/checkout-api-production");
    page_with(&b, &gate_url, "Simulator").await;
    let policy_text = b
        .find(Locator::Id("policy"))
        .await
        .expect("policy textarea")
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default();
    assert!(
        policy_text.contains("2%"),
        "the current policy is in the editor: {policy_text}"
    );
    b.execute(
        "const t = document.getElementById('policy'); t.value = arguments[0];",
        vec![json!(
            policy_text
                .replace("\"2%\"", "\"5%\"")
                .replace(" 2%\n", " 5%\n")
        )],
    )
    .await
    .expect("edit the policy");
    b.find(Locator::Id("simulate"))
        .await
        .expect("simulate button")
        .click()
        .await
        .expect("click");
    assert_eq!(text(&b, "#simulated-decision").await, "ALLOW");
    shoot(&b, "gate-simulator").await;
    let g = Api::<ReleaseGate>::namespaced(client.clone(), &team)
        .get("checkout-api-production")
        .await
        .expect("gate");
    assert_eq!(
        g.status.and_then(|s| s.decision),
        Some(Decision::Hold),
        "the simulation wrote nothing"
    );
    let after = passports
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(before, after, "the simulation signed nothing");
    b.execute(
        "document.getElementById('policy').value = 'rules: [';",
        vec![],
    )
    .await
    .expect("edit");
    b.find(Locator::Id("simulate"))
        .await
        .expect("simulate button")
        .click()
        .await
        .expect("click");
    assert!(
        text(&b, "#simulation-error")
            .await
            .contains("not valid YAML")
    );

    // The other pages render for this user.
    for (name, path, needle) in [
        ("gates", "/console/gates", "checkout-api"),
        ("radar", "/console/radar", "payment-api"),
        ("metrics", "/console/metrics", "graduation"),
        ("integrations", "/console/integrations", "payment-api-ci"),
        ("audit", "/console/audit", "Export CSV"),
        ("settings", "/console/settings", "Signing key id"),
    ] {
        let page = page_with(&b, &format!("{base}{path}"), needle).await;
        assert!(
            !page.contains("ledger-api"),
            "{path} shows another namespace"
        );
        shoot(&b, name).await;
    }

    // The audit log carries the decisions as governance events, and exports them.
    let audit = page_with(&b, &format!("{base}/console/audit"), "DecisionChanged").await;
    assert!(audit.contains("payment-api-production"));
    let csv = http
        .get(format!("{base}/console/audit?format=csv"))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("audit export");
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.expect("csv");
    assert!(
        csv.contains("DecisionChanged") && csv.contains("checkout-api-production"),
        "{csv}"
    );
    assert!(
        !csv.contains("ledger-api"),
        "another namespace's events are not exported"
    );

    // Logout, from the account menu.
    b.find(Locator::Css("summary[aria-label='Account menu']"))
        .await
        .expect("account menu")
        .click()
        .await
        .expect("open");
    b.find(Locator::Id("logout"))
        .await
        .expect("logout")
        .click()
        .await
        .expect("click");
    // Wait for the sign-in page the logout redirects to before reading it.
    let notice = text(&b, "p.ok").await;
    assert_eq!(notice, "You are signed out.");
    b.goto(&format!("{base}/console/passports"))
        .await
        .expect("goto");
    assert!(
        b.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/console/login"),
        "signed out for good"
    );

    b.close().await.expect("close the browser");
    controller.kill();
    let log = controller.log();
    assert!(!log.contains(&viewer), "the token never reaches the log");
    assert!(
        !log.contains(SECRET_JWT),
        "the CI note's token never reaches the log"
    );
}
