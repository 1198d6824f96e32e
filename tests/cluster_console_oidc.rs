//! Sign-in with the organisation's OpenID Connect provider, end to end: the
//! real npm `oidc-provider` (an OpenID Certified implementation) serves
//! HTTPS on loopback, the local apiserver trusts it (structured
//! authentication configuration, `e2e/cluster.sh`), the real controller
//! serves the console, and headless Chromium signs in through the
//! provider's own login and consent pages. The person (carol, in the
//! provider's group `payments-approvers`) is who the apiserver says the ID
//! token names; she approves a release as herself, and logout ends the
//! session at the console and at the provider.

#[path = "support/actions_browser.rs"]
mod browser;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use browser::{LIMIT, click, page_with, text, type_into};
use fantoccini::{Client as Browser, Locator};
use kube::api::{Api, ListParams};
use releasepassport::api::*;
use support::approval_gate::{GATE, IMAGE, decided, seed};
use support::controller as ctl;

const CLIENT_ID: &str = "release-passport-console";
/// The user name the apiserver maps carol's ID token to (`oidc:` + email).
const CAROL: &str = "oidc:carol@example.test";

/// The provider process; killed on drop.
struct Provider(Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `e2e/tools/oidc-provider` (installed from npm into the project
/// cache) as the issuer the apiserver trusts, for a console at `console`.
fn provider(console: &str, dir: &std::path::Path) -> Provider {
    let env = support::cluster();
    let (issuer, port, cert, key) = match (
        &env.oidc_issuer,
        env.oidc_port,
        &env.oidc_cert,
        &env.oidc_key,
    ) {
        (Some(i), Some(p), Some(c), Some(k)) => (i.clone(), p, c.clone(), k.clone()),
        _ => panic!("e2e/cluster.sh env --json names no OpenID Connect issuer"),
    };
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/tools/tools.sh");
    let out = Command::new("bash")
        .arg(&tools)
        .args(["path", "oidc-provider"])
        .output()
        .expect("e2e/tools/tools.sh path oidc-provider");
    assert!(
        out.status.success(),
        "installing oidc-provider: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let launcher = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let accounts = dir.join("accounts.json");
    std::fs::write(
        &accounts,
        r#"{"carol": {"groups": ["payments-approvers"]}}"#,
    )
    .expect("accounts");
    let mut child = Command::new(&launcher)
        .args(["--issuer", &issuer, "--port", &port.to_string()])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["--client-id", CLIENT_ID])
        .args([
            "--redirect-uri",
            &format!("{console}/console/oidc/callback"),
        ])
        .args([
            "--post-logout-redirect-uri",
            &format!("{console}/console/login?logged_out=1"),
        ])
        .arg("--accounts")
        .arg(&accounts)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting oidc-provider");
    let stdout = child.stdout.take().expect("provider stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("ready ") {
                let _ = tx.send(());
            }
            println!("oidc-provider: {line}");
        }
    });
    let provider = Provider(child);
    rx.recv_timeout(LIMIT)
        .expect("oidc-provider to print `ready` (is its port, the apiserver's + 2, free?)");
    provider
}

/// Where the browser is, and what it shows.
async fn at(b: &Browser) -> (String, String) {
    let url = b.current_url().await.expect("url").to_string();
    let source = b.source().await.unwrap_or_default();
    (url, source)
}

/// Clicks the element `css`.
async fn press(b: &Browser, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// Goes through the provider's pages (its login form when `login` is
/// given and it asks, its consent page) until the browser is back at the
/// console. Returns the console page it lands on: the overview, or the
/// sign-in page with the reason the sign-in failed.
async fn through_provider(b: &Browser, console: &str, login: Option<&str>) -> String {
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (url, source) = at(b).await;
        if url.starts_with(console) {
            if source.contains("id=\"account-user\"") || source.contains("id=\"login-error\"") {
                return source;
            }
            continue;
        }
        if source.contains("name=\"login\"") {
            let who = login.expect("the provider asked who signs in");
            b.find(Locator::Css("input[name=login]"))
                .await
                .expect("login field")
                .send_keys(who)
                .await
                .expect("type the login");
            b.find(Locator::Css("input[name=password]"))
                .await
                .expect("password field")
                .send_keys("any password")
                .await
                .expect("type the password");
            press(b, "button[type=submit]").await;
        } else if source.contains("name=\"prompt\" value=\"consent\"") {
            press(b, "button[type=submit]").await;
        }
    }
    let (url, source) = at(b).await;
    panic!("the sign-in never came back to the console; at {url}:\n{source}");
}

/// Signs in through the provider until the apiserver accepts its tokens:
/// the apiserver's JWT authenticator reads the provider's discovery
/// document in the background, so the first sign-ins after the provider
/// starts may be refused with "the token was not accepted".
async fn sign_in_with_provider(b: &Browser, console: &str, login: &str) {
    let mut last = String::new();
    for _ in 0..30 {
        b.goto(&format!("{console}/console/login"))
            .await
            .expect("goto login");
        click(b, "sign-in-oidc").await;
        let page = through_provider(b, console, Some(login)).await;
        if page.contains("id=\"account-user\"") {
            return;
        }
        last = text(b, "#login-error").await;
        assert!(
            last.contains("was not accepted by the Kubernetes API server"),
            "the sign-in failed for another reason: {last}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    panic!("the apiserver never accepted the provider's ID token: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_console_signs_in_through_the_oidc_provider_and_out_at_both_ends() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let ns = support::namespace(&client, "console-oidc").await;
    seed(&client, &ns).await;
    // carol may approve through her provider group, not by name.
    support::kubectl_ok(&[
        "create",
        "rolebinding",
        "payments-approvers",
        "-n",
        &ns,
        "--clusterrole",
        "releasepassport-approver",
        "--group",
        "oidc:payments-approvers",
    ]);

    let dir = tempfile::tempdir().expect("temp dir");
    let port = browser::free_port();
    let console = format!("http://127.0.0.1:{port}");
    let env = support::cluster();
    let issuer = env.oidc_issuer.clone().expect("issuer");
    let ca = env.ca_cert.clone().expect("the cluster CA");
    let _provider = provider(&console, dir.path());
    let mut controller = ctl::start(
        &format!("rp-test-console-oidc-{}", std::process::id()),
        "console-oidc-tests",
        &[
            "--no-webhook",
            "--console-addr",
            &format!("127.0.0.1:{port}"),
            "--console-url",
            &console,
            "--console-oidc-issuer",
            &issuer,
            "--console-oidc-ca-file",
            ca.to_str().expect("path"),
        ],
    );
    decided(&client, &ns, Decision::RequireApproval).await;
    // Bounded: the console accepts connections before its caches are
    // ready and answers only then; a retry must not wait on one request.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    browser::serving(&http, &console).await;

    // A callback that this browser did not start is refused.
    let forged = http
        .get(format!(
            "{console}/console/oidc/callback?code=stolen&state=guessed"
        ))
        .send()
        .await
        .expect("forged callback");
    assert_eq!(forged.status(), 401);
    assert!(
        forged
            .text()
            .await
            .expect("page")
            .contains("this sign-in was not started here or has expired")
    );

    // The provider's certificate is signed by the local cluster's CA, which
    // the browser does not know.
    let (_driver, b) = browser::browser_with(dir.path(), &["--ignore-certificate-errors"]).await;
    sign_in_with_provider(&b, &console, "carol").await;
    assert_eq!(text(&b, "#account-user").await, CAROL);

    // Settings names the provider, never a secret.
    let settings = page_with(&b, &format!("{console}/console/settings"), "oidc-issuer").await;
    assert_eq!(text(&b, "#oidc-issuer").await, issuer);
    assert!(settings.contains("none: a public client with PKCE"));

    // She approves as herself: the apiserver stamps her name from her ID
    // token, and the gate moves to ALLOW.
    let gate_url = format!("{console}/console/gates/{ns}/{GATE}");
    page_with(&b, &gate_url, "id=\"approve\"").await;
    type_into(&b, "reference", "CHG-2001").await;
    click(&b, "approve").await;
    assert!(
        text(&b, "#action-notice")
            .await
            .starts_with("Your approval was created.")
    );
    let approvals = Api::<ReleaseApproval>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("approvals")
        .items;
    assert_eq!(approvals.len(), 1);
    let digest = IMAGE.split_once('@').expect("digest").1;
    assert_eq!(
        (
            approvals[0].spec.approver.as_str(),
            approvals[0].spec.digest.as_str()
        ),
        (CAROL, digest),
        "authored by the person the ID token names"
    );
    decided(&client, &ns, Decision::Allow).await;

    // Logout ends the console's session, then the provider's (she confirms
    // on its page), and comes back signed out.
    b.goto(&format!("{console}/console")).await.expect("goto");
    press(&b, "summary[aria-label='Account menu']").await;
    click(&b, "logout").await;
    ctl::eventually(LIMIT, "the provider's logout page", || async {
        let (url, source) = at(&b).await;
        (url.starts_with(&issuer) && source.contains("name=\"logout\"")).then_some(())
    })
    .await;
    press(&b, "button[name=logout][value=yes]").await;
    ctl::eventually(LIMIT, "the console's signed-out page", || async {
        let (url, source) = at(&b).await;
        (url.starts_with(&format!("{console}/console/login"))
            && source.contains("You are signed out."))
        .then_some(())
    })
    .await;
    b.goto(&gate_url).await.expect("goto");
    assert!(
        b.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/console/login"),
        "signed out of the console"
    );
    // Signed out at the provider too: signing in again asks who you are.
    click(&b, "sign-in-oidc").await;
    ctl::eventually(LIMIT, "the provider to ask for a login again", || async {
        let (url, source) = at(&b).await;
        (url.starts_with(&issuer) && source.contains("name=\"login\"")).then_some(())
    })
    .await;

    b.close().await.expect("close the browser");
    controller.kill();
    let log = controller.log();
    assert!(log.contains("console: signed in"), "{log}");
    assert!(
        !log.contains("eyJ"),
        "no token (a JWT) reaches the controller's log"
    );
}
