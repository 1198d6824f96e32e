//! Acting as yourself in the console, end to end: the real controller
//! serves the console against the local control plane and headless Chromium
//! signs in with a person's own token. A reader sees no Approve button and a
//! forged POST creates nothing; an approver (alice, a real user of the
//! apiserver's static token file) asks for approval, approves the release
//! for its digest (the gate moves from REQUIRE_APPROVAL to ALLOW), re-runs
//! the evaluation and comments; then signs out.

#[path = "support/actions_browser.rs"]
mod browser;
mod support;

use browser::{LIMIT, click, cookie_value, form, page_with, set_cookie, text, type_into};
use fantoccini::Locator;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};
use releasepassport::api::*;
use support::approval_gate::{GATE, IMAGE, decided, seed};
use support::controller as ctl;
use support::identities as ids;

/// A ServiceAccount that may read the project's resources in `ns` only.
fn reader(ns: &str, name: &str) -> String {
    let _ = ids::service_account(ns, name);
    let manifest = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: {name}, namespace: {ns}}}\nrules:\n  - apiGroups: [releasepassport.io]\n    resources: [releasegates, passports, policies, connectorscopes]\n    verbs: [get, list, watch]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {name}}}\nsubjects: [{{kind: ServiceAccount, name: {name}, namespace: {ns}}}]\n"
    );
    let file = std::env::temp_dir().join(format!("rp-console-act-{ns}-{name}.yaml"));
    std::fs::write(&file, manifest).expect("manifest");
    support::kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
    support::kubectl_ok(&["create", "token", name, "-n", ns, "--duration", "1h"])
        .trim()
        .to_string()
}

/// Signs in through the token form without a browser; returns the session
/// cookie's value.
async fn sign_in(http: &reqwest::Client, base: &str, token: &str) -> String {
    let login = format!("{base}/console/login");
    let r = http.get(&login).send().await.expect("login page");
    let nonce = cookie_value(&set_cookie(&r, "rp_login").expect("login nonce cookie"));
    let r = http
        .post(&login)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("rp_login={nonce}"))
        .body(form(&[("token", token), ("nonce", &nonce)]))
        .send()
        .await
        .expect("post login");
    assert_eq!(r.status(), 303, "signed in");
    cookie_value(&set_cookie(&r, "rp_session").expect("session cookie"))
}

/// The gate page as this session sees it.
async fn gate_page(http: &reqwest::Client, url: &str, session: &str) -> String {
    let r = http
        .get(url)
        .header("cookie", format!("rp_session={session}"))
        .send()
        .await
        .expect("gate page");
    assert_eq!(r.status(), 200);
    r.text().await.expect("page")
}

/// The CSRF token a page's forms carry.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end of value")].to_string()
}

async fn post_approve(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    csrf: &str,
) -> reqwest::StatusCode {
    http.post(format!("{url}/approve"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("rp_session={session}"))
        .body(form(&[
            ("csrf", csrf),
            ("digest", IMAGE.split_once('@').expect("digest").1),
            ("reference", "CHG-FORGED"),
        ]))
        .send()
        .await
        .expect("post approve")
        .status()
}

async fn approvals(client: &Client, ns: &str) -> Vec<ReleaseApproval> {
    Api::<ReleaseApproval>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list approvals")
        .items
}

/// Waits until the apiserver admits a ReleaseRequest of `who` (a server-side
/// dry run): a kind whose CRD was just created is served, and its admission
/// policies can mutate it, only moments later.
fn served_to(who: &ids::Identity, ns: &str) {
    let probe = format!(
        "apiVersion: releasepassport.io/v1alpha1\nkind: ReleaseRequest\nmetadata: {{name: probe, namespace: {ns}}}\nspec: {{gate: {GATE}, type: Rerun}}\n"
    );
    for attempt in 0.. {
        let out = who.kubectl_stdin(
            &[
                "create",
                "--dry-run=server",
                "--request-timeout=10s",
                "-f",
                "-",
            ],
            &probe,
        );
        if out.status.success() {
            return;
        }
        assert!(
            attempt < 60,
            "the apiserver never admitted a ReleaseRequest: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// The note of the first Event with `reason` in `ns`.
async fn event_note(client: &Client, ns: &str, reason: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    ctl::eventually(LIMIT, &format!("an Event {reason}"), || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
                .and_then(|e| e.note)
        }
    })
    .await
}

async fn evaluated_at(gates: &Api<ReleaseGate>) -> jiff::Timestamp {
    gates
        .get(GATE)
        .await
        .expect("gate")
        .status
        .and_then(|s| s.evaluated_at)
        .expect("evaluated")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_console_approves_as_the_signed_in_person() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let ns = support::namespace(&client, "console-act").await;
    seed(&client, &ns).await;
    let alice = ids::user("alice");
    ids::grant(&ns, "releasepassport-approver", &alice);
    let alice_token = ids::static_token("alice");
    served_to(&alice, &ns);
    let viewer = reader(&ns, "console-viewer");

    let port = browser::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut controller = ctl::start(
        &format!("rp-test-console-act-{}", std::process::id()),
        "console-act-tests",
        &[
            "--no-webhook",
            "--console-addr",
            &format!("127.0.0.1:{port}"),
        ],
    );
    decided(&client, &ns, Decision::RequireApproval).await;
    let gate_url = format!("{base}/console/gates/{ns}/{GATE}");
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    browser::serving(&http, &base).await;

    // A reader: no Approve button, and a POST with the session's own CSRF
    // token is refused (the SubjectAccessReview says no) with nothing created.
    let viewer_session = sign_in(&http, &base, &viewer).await;
    let page = ctl::eventually(LIMIT, "the gate page for the reader", || {
        let (http, url, s) = (http.clone(), gate_url.clone(), viewer_session.clone());
        async move {
            let page = gate_page(&http, &url, &s).await;
            page.contains("Act on this gate").then_some(page)
        }
    })
    .await;
    assert!(
        !page.contains("id=\"approve\""),
        "no Approve button for a reader"
    );
    assert!(page.contains("id=\"no-actions\""));
    assert!(
        !page.contains("id=\"rerun\""),
        "no Re-run button for a reader"
    );
    assert!(
        !page.contains("id=\"comment\""),
        "no comment form for a reader"
    );
    let csrf = csrf_of(&page);
    assert_eq!(
        post_approve(&http, &gate_url, &viewer_session, &csrf).await,
        403,
        "a reader's approval is refused"
    );
    // alice's session, but a forged form (another session's CSRF token).
    let alice_session = sign_in(&http, &base, &alice_token).await;
    let alice_page = gate_page(&http, &gate_url, &alice_session).await;
    assert!(alice_page.contains("id=\"approve\""), "{alice_page}");
    assert_eq!(
        post_approve(&http, &gate_url, &alice_session, &csrf).await,
        403,
        "a POST without the session's CSRF token is refused"
    );
    assert_eq!(
        post_approve(&http, &gate_url, &alice_session, "").await,
        403,
        "a POST without a CSRF token is refused"
    );
    assert!(
        approvals(&client, &ns).await.is_empty(),
        "the refused POSTs created nothing"
    );

    // alice signs in with her token in the browser and approves.
    let downloads = tempfile::tempdir().expect("download dir");
    let (_driver, b) = browser::browser(downloads.path()).await;
    b.goto(&format!("{base}/console/login"))
        .await
        .expect("goto");
    type_into(&b, "token", &alice_token).await;
    click(&b, "sign-in").await;
    assert_eq!(text(&b, "#account-user").await, "alice");
    page_with(&b, &gate_url, "id=\"approve\"").await;

    // She asks the other approvers first: an Event and a history entry.
    type_into(&b, "approval-note", "CHG-1042 is linked").await;
    click(&b, "request-approval").await;
    assert!(
        text(&b, "#action-notice")
            .await
            .starts_with("Your approval request was created")
    );
    let asked = event_note(&client, &ns, "ApprovalRequested").await;
    assert_eq!(
        asked,
        "alice asks the approvers to approve this release: CHG-1042 is linked"
    );

    let digest = IMAGE.split_once('@').expect("digest").1;
    assert!(text(&b, "#approve-form").await.contains(digest));
    type_into(&b, "reference", "CHG-1042").await;
    click(&b, "approve").await;
    assert!(
        text(&b, "#action-notice")
            .await
            .starts_with("Your approval was created.")
    );
    let created = approvals(&client, &ns).await;
    assert_eq!(created.len(), 1, "one approval");
    let a = &created[0].spec;
    assert_eq!(
        (
            a.approver.as_str(),
            a.digest.as_str(),
            a.reference.as_deref()
        ),
        ("alice", digest, Some("CHG-1042")),
        "authored by alice (stamped by the apiserver), for the gate's digest"
    );

    // The gate moves to ALLOW, counting alice's approval.
    decided(&client, &ns, Decision::Allow).await;
    let page = page_with(&b, &gate_url, "CHG-1042").await;
    assert!(page.contains("alice"));
    // The action is recorded on the gate.
    let note = event_note(&client, &ns, "ApprovedInConsole").await;
    assert!(
        note.starts_with("alice approved v2.18.4") && note.contains(digest),
        "{note}"
    );

    // Re-run: a new evaluation, requested by alice.
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    let before = evaluated_at(&gates).await;
    page_with(&b, &gate_url, "id=\"rerun\"").await;
    click(&b, "rerun").await;
    assert!(
        text(&b, "#action-notice")
            .await
            .starts_with("Your re-run request was created")
    );
    let rerun = ctl::eventually(LIMIT, "the re-run to be evaluated", || {
        let gates = gates.clone();
        async move {
            let g = gates.get(GATE).await.ok()?;
            let st = g.status?;
            let e = st
                .history
                .iter()
                .find(|e| e.type_ == HistoryType::RerunRequested)?
                .clone();
            (st.evaluated_at? > before).then_some(e)
        }
    })
    .await;
    assert_eq!(rerun.actor.as_deref(), Some("alice"));
    let requests: Api<ReleaseRequest> = Api::namespaced(client.clone(), &ns);
    let handled = ctl::eventually(LIMIT, "the re-run request to be handled", || {
        let requests = requests.clone();
        async move {
            requests
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|r| r.spec.type_ == RequestType::Rerun)
                .filter(|r| r.status.as_ref().is_some_and(|s| s.handled_at.is_some()))
        }
    })
    .await;
    assert_eq!(handled.spec.requester, "alice", "stamped by the apiserver");

    // A comment shows with its author.
    let remark = "Rolled out to 5% first; the error rate is steady.";
    type_into(&b, "comment", remark).await;
    click(&b, "add-comment").await;
    page_with(&b, &gate_url, "Rolled out to 5% first").await;
    assert_eq!(text(&b, "#comments li .comment-author").await, "alice");
    assert_eq!(text(&b, "#comments li .comment-body").await, remark);

    // Nobody can author a request in someone else's name.
    let forged = format!(
        "apiVersion: releasepassport.io/v1alpha1\nkind: ReleaseRequest\nmetadata: {{name: forged, namespace: {ns}}}\nspec: {{gate: {GATE}, type: Comment, body: hi, requester: bob}}\n"
    );
    let out = alice.kubectl_stdin(&["create", "-f", "-"], &forged);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("[rule requester-is-author]"),
        "{err}"
    );

    // Logout ends the session.
    b.find(Locator::Css("summary[aria-label='Account menu']"))
        .await
        .expect("account menu")
        .click()
        .await
        .expect("open");
    click(&b, "logout").await;
    assert_eq!(text(&b, "p.ok").await, "You are signed out.");
    b.goto(&gate_url).await.expect("goto");
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
    assert!(
        !log.contains(&alice_token),
        "the token never reaches the log"
    );
    assert!(!log.contains(&viewer), "the token never reaches the log");
}
