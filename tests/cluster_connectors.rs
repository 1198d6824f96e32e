//! The incident and change connectors end to end, on the real control plane
//! with the real controller: the seed release (examples/) reads "No active
//! Sev-1 incident" from PagerDuty and "Jira change approval linked" from
//! Jira — not from pushed facts — through local servers answering with the
//! providers' documented bodies; a missing Secret is CredentialRequired and
//! a HOLD that names it; an open Sev-1 freezes the line, naming the incident;
//! a plain random token echoed back by a source never reaches a passport,
//! status, Event or export.

mod replay;
mod support;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use replay::{Answer, Replay, Route};
use serde_json::json;
use support::controller::{self as ctl, eventually};

const WAIT: Duration = Duration::from_secs(90);

async fn setup(prefix: &str) -> (Client, String) {
    static CONTROLLER: OnceLock<Mutex<ctl::ControllerProcess>> = OnceLock::new();
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    CONTROLLER.get_or_init(|| {
        Mutex::new(ctl::start(
            &format!("rp-test-connectors-{}", std::process::id()),
            "connectors-tests",
            &["--resync-seconds", "3"],
        ))
    });
    let ns = support::namespace(&client, prefix).await;
    (client, ns)
}

async fn secret(client: &Client, ns: &str, name: &str, value: &str) {
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": name},
        "stringData": {"token": value}
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &s)
        .await
        .expect("create secret");
}

/// Local PagerDuty and Jira: no incident on the service; the release's
/// change ticket found by fix version, its approval pending.
async fn providers() -> Replay {
    Replay::routes(vec![
        Route::path("/services/PIJ90N7")
            .answer(Answer::fixture("pagerduty/service.json").dated_now()),
        Route::path("/incidents")
            .answer(Answer::fixture("pagerduty/incidents-empty.json").dated_now()),
        Route::path("/rest/api/3/search/jql")
            .answer(Answer::fixture("jira/search-page2.json").dated_now()),
        Route::path("/rest/servicedeskapi/request/CHG-1042/approval")
            .answer(Answer::fixture("jira/approvals-pending.json").dated_now()),
    ])
    .await
}

/// The examples' PagerDuty and Jira scopes, pointed at the local providers;
/// their tokens are read as the namespace's reader ServiceAccount, with the
/// examples' RBAC.
async fn scopes(client: &Client, ns: &str, base: &str) {
    support::kubectl_ok(&[
        "apply",
        "-n",
        ns,
        "-f",
        "config/rbac/namespace-reader.yaml",
        "-f",
        "examples/rbac-provider-tokens.yaml",
    ]);
    let api: Api<ConnectorScope> = Api::namespaced(client.clone(), ns);
    let mut pd: ConnectorScope = support::load_yaml("examples/connectorscope-pagerduty.yaml");
    pd.spec.pagerduty.as_mut().expect("pagerduty scope").url = Some(base.into());
    let mut jira: ConnectorScope = support::load_yaml("examples/connectorscope-jira.yaml");
    jira.spec.jira.as_mut().expect("jira scope").url = base.into();
    for scope in [pd, jira] {
        api.create(&PostParams::default(), &scope)
            .await
            .expect("create scope");
    }
}

/// The seed Policy as it is for incidents and change approval; the Argo CD
/// and Prometheus facts, which other tests cover, pushed by CI here.
async fn policy(client: &Client, ns: &str) {
    let mut policy: Policy = support::load_yaml("examples/policy.yaml");
    for rule in &mut policy.spec.rules {
        if matches!(rule.connector.as_str(), "argocd" | "prometheus") {
            rule.connector = "ingest".into();
        }
    }
    Api::<Policy>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
}

fn gate(ns: &str) -> ReleaseGate {
    let mut gate: ReleaseGate = support::load_yaml("examples/releasegate.yaml");
    gate.metadata.namespace = Some(ns.into());
    gate.spec.connector_scopes = ["payment-api-pagerduty", "payment-api-jira"]
        .iter()
        .map(|n| LocalObjectReference {
            name: n.to_string(),
        })
        .collect();
    gate.spec.rollback = Some(
        serde_json::from_value(json!({
            "release": "v2.17.9",
            "image": format!("registry.example.com/payment-api@sha256:{}", "9".repeat(64))
        }))
        .expect("rollback"),
    );
    gate.spec.evidence = serde_json::from_value(json!([
        {"connector": "ingest", "freshness": {"observedAt": jiff::Timestamp::now(), "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}, {"name": "error_rate", "value": "0.4%"}]}
    ]))
    .expect("evidence");
    gate
}

/// Waits for the gate's latest passport to satisfy `want`.
async fn passport_where(
    client: &Client,
    ns: &str,
    what: &str,
    want: impl Fn(&PassportSpec) -> bool,
) -> (ReleaseGateStatus, PassportSpec) {
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    let passports: Api<Passport> = Api::namespaced(client.clone(), ns);
    eventually(WAIT, what, || {
        let gates = gates.clone();
        let passports = passports.clone();
        let want = &want;
        async move {
            let status = gates.get("payment-api-production").await.ok()?.status?;
            let p = passports.get(status.passport_name.as_deref()?).await.ok()?;
            want(&p.spec).then_some((status, p.spec))
        }
    })
    .await
}

fn result<'a>(p: &'a PassportSpec, id: &str) -> &'a PolicyResult {
    p.policy_results
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("rule {id}"))
}

#[tokio::test]
async fn cluster_seed_release_reads_pagerduty_and_jira_and_allows_once_jira_reports_the_approval() {
    let (client, ns) = setup("connectors").await;
    let providers = providers().await;
    secret(&client, &ns, "pagerduty-token", "u+Pq7sT2vW9xY3zA5bC8").await;
    secret(
        &client,
        &ns,
        "jira-token",
        "ATATT3xFfGF0q8ZrT4mW2xVb9LpNf3Hd",
    )
    .await;
    scopes(&client, &ns, &providers.base).await;
    policy(&client, &ns).await;
    Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &gate(&ns))
        .await
        .expect("gate");

    // The approval is pending in Jira Service Management.
    let (status, pending) = passport_where(&client, &ns, "a decision from the connectors", |p| {
        p.evidence.iter().any(|e| e.connector == "jira")
    })
    .await;
    assert_eq!(
        pending.decision,
        Decision::RequireApproval,
        "{:?}",
        pending.policy_results
    );
    assert_eq!(status.failing_checks, ["change-approval"]);
    let sev1 = result(&pending, "no-active-sev1");
    assert_eq!(sev1.state, ResultState::Pass);
    assert_eq!(
        sev1.source.as_deref(),
        Some("pagerduty/active_sev1_incidents")
    );
    let change = result(&pending, "change-approval");
    assert_eq!(change.state, ResultState::Fail);
    assert_eq!(
        change.source.as_deref(),
        Some("jira/change_approval_linked")
    );
    // Pulled, not pushed: the gate's own evidence has neither connector.
    let gate = Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .get("payment-api-production")
        .await
        .expect("gate");
    assert!(gate.spec.evidence.iter().all(|e| e.connector == "ingest"));
    for connector in ["pagerduty", "jira"] {
        let e = pending
            .evidence
            .iter()
            .find(|e| e.connector == connector)
            .unwrap_or_else(|| panic!("{connector} evidence"));
        assert_eq!(
            e.scope["connectorScope"],
            format!("payment-api-{connector}")
        );
    }
    let scope = Api::<ConnectorScope>::namespaced(client.clone(), &ns)
        .get("payment-api-jira")
        .await
        .expect("scope");
    let st = scope.status.expect("scope status");
    assert_eq!(
        st.health,
        Some(ConnectorHealth::Healthy),
        "{:?}",
        st.message
    );
    assert_eq!(st.support, Some(ConnectorSupport::RequiresCredential));

    // Jira reports the approval: ALLOW.
    providers.set_answer(
        "/rest/servicedeskapi/request/CHG-1042/approval",
        Answer::fixture("jira/approvals.json").dated_now(),
    );
    let (status, allow) = passport_where(&client, &ns, "ALLOW once Jira approved", |p| {
        p.decision == Decision::Allow
    })
    .await;
    assert!(status.failing_checks.is_empty());
    assert_eq!(result(&allow, "change-approval").state, ResultState::Pass);

    // Incident freeze: the Policy says it in one line; an open Sev-1 on the
    // service blocks and the next action names the incident.
    Api::<Policy>::namespaced(client.clone(), &ns)
        .patch(
            "payment-api-production",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"incidentFreeze": {}}})),
        )
        .await
        .expect("freeze");
    providers.set_answer(
        "/incidents",
        Answer::fixture("pagerduty/incidents-sev1.json").dated_now(),
    );
    let (status, blocked) = passport_where(&client, &ns, "BLOCK on the open Sev-1", |p| {
        p.decision == Decision::Block
    })
    .await;
    assert_eq!(status.failing_checks, ["no-active-sev1", "incident-freeze"]);
    let freeze = result(&blocked, "incident-freeze");
    assert_eq!(freeze.state, ResultState::Fail);
    assert_eq!(
        freeze.source.as_deref(),
        Some("pagerduty/active_p1_or_higher_incidents")
    );
    assert!(
        blocked.next_actions.iter().any(|a| a.starts_with(
            "Incident freeze: resolve PagerDuty incident #1234 Q2SRP8WLJ0J7TD (P1, triggered"
        )),
        "{:?}",
        blocked.next_actions
    );
    assert!(
        status.next_actions.iter().any(|a| a.contains("#1234")
            && a.contains("https://acme.pagerduty.com/incidents/Q2SRP8WLJ0J7TD")),
        "{:?}",
        status.next_actions
    );
}

#[tokio::test]
async fn cluster_a_missing_secret_is_credential_required_and_the_hold_names_it() {
    let (client, ns) = setup("nosecret").await;
    let providers = providers().await;
    // Jira's Secret exists, PagerDuty's does not.
    secret(
        &client,
        &ns,
        "jira-token",
        "ATATT3xFfGF0q8ZrT4mW2xVb9LpNf3Hd",
    )
    .await;
    scopes(&client, &ns, &providers.base).await;
    policy(&client, &ns).await;
    Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &gate(&ns))
        .await
        .expect("gate");

    let scopes: Api<ConnectorScope> = Api::namespaced(client.clone(), &ns);
    let st = eventually(WAIT, "the PagerDuty scope's health", || {
        let scopes = scopes.clone();
        async move {
            let st = scopes.get("payment-api-pagerduty").await.ok()?.status?;
            st.health.is_some().then_some(st)
        }
    })
    .await;
    assert_eq!(st.health, Some(ConnectorHealth::CredentialRequired));
    let message = st.message.clone().unwrap_or_default();
    assert!(
        message.contains("Secret pagerduty-token not found"),
        "{message}"
    );
    let ready = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "CredentialRequired")
    );

    let (status, hold) =
        passport_where(&client, &ns, "a HOLD", |p| p.decision == Decision::Hold).await;
    assert_eq!(status.failing_checks, ["no-active-sev1", "change-approval"]);
    let sev1 = result(&hold, "no-active-sev1");
    assert_eq!(sev1.state, ResultState::Missing);
    assert!(
        sev1.reason
            .as_deref()
            .unwrap_or_default()
            .contains("pagerduty-token"),
        "{sev1:?}"
    );
    assert!(
        status.next_actions.first().is_some_and(|a| a.contains("ConnectorScope payment-api-pagerduty (CredentialRequired) has no evidence: Secret pagerduty-token not found")),
        "{:?}",
        status.next_actions
    );
    // An Event on the scope says it too.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    eventually(WAIT, "a CredentialRequired Event", || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("CredentialRequired"))
        }
    })
    .await;
}

#[tokio::test]
async fn cluster_a_plain_token_echoed_by_a_source_is_masked_everywhere() {
    let (client, ns) = setup("echo").await;
    // A plain random token, as a new user would create it, and an endpoint
    // (a misconfigured bridge) that echoes the Authorization it receives.
    let token = "Zq4xR8mT2vLp9WsK6bNd";
    secret(&client, &ns, "bridge-token", token).await;
    let echo = Replay::start(vec![Answer::json(
        200,
        json!({"connector": "http", "freshness": {"observedAt": jiff::Timestamp::now()},
               "scope": {"note": format!("called with {token}")},
               "facts": [{"name": "bridge_header", "value": format!("Bearer {token} / {token}")},
                         {"name": "change_note", "value": token}]}),
    )])
    .await;
    let scope: ConnectorScope = serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "ConnectorScope",
        "metadata": {"name": "bridge"},
        "spec": {"connector": "http", "http": {"url": echo.url("/evidence")},
                 "secretRef": {"name": "bridge-token", "key": "token"}}
    }))
    .expect("scope");
    Api::<ConnectorScope>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &scope)
        .await
        .expect("scope");
    let policy: Policy = serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "Policy",
        "metadata": {"name": "payment-api-production"},
        "spec": {"rules": [{"id": "note", "label": "Change note present", "connector": "http",
                            "fact": "change_note", "condition": {"operator": "equals", "value": "none"},
                            "onFail": "HOLD", "nextAction": "Check note {evidence.change_note}."}]}
    }))
    .expect("policy");
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    let mut g = gate(&ns);
    g.spec.connector_scopes = vec![LocalObjectReference {
        name: "bridge".into(),
    }];
    g.spec.evidence = vec![];
    Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &g)
        .await
        .expect("gate");
    let (status, passport) = passport_where(&client, &ns, "a passport from the bridge", |p| {
        p.evidence.iter().any(|e| e.connector == "http")
    })
    .await;
    assert!(
        echo.received()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {token}"))),
        "the token was sent"
    );
    let everything = [
        serde_json::to_string(&passport).expect("passport"),
        serde_json::to_string(&status).expect("status"),
        support::kubectl_ok(&["get", "connectorscopes,events", "-n", &ns, "-o", "json"]),
    ];
    for text in &everything {
        assert!(!text.contains(token), "the token survived: {text}");
    }
    assert!(everything[0].contains("[redacted]"), "{}", everything[0]);
    // And exports of the stored passport.
    let value = serde_json::to_value(&passport).expect("json");
    let prepared = releasepassport::passport::export::prepare(&value).expect("export");
    assert!(!releasepassport::passport::export::to_markdown(&prepared).contains(token));
}

#[tokio::test]
async fn cluster_a_decision_change_is_posted_to_slack_and_recorded_in_the_gate_history() {
    let (client, ns) = setup("notify").await;
    let providers = providers().await;
    secret(&client, &ns, "pagerduty-token", "u+Pq7sT2vW9xY3zA5bC8").await;
    secret(
        &client,
        &ns,
        "jira-token",
        "ATATT3xFfGF0q8ZrT4mW2xVb9LpNf3Hd",
    )
    .await;
    scopes(&client, &ns, &providers.base).await;
    policy(&client, &ns).await;
    // A Slack receiver; one delivery fails (the webhook was removed).
    let slack = Replay::start(vec![Answer::fixture("slack/ok.json")]).await;
    let gone = Replay::start(vec![Answer::fixture("slack/no-service.json")]).await;
    for (name, receiver) in [("releases", &slack), ("old-channel", &gone)] {
        secret(
            &client,
            &ns,
            &format!("slack-{name}"),
            &receiver.url("/services/T0AB12CDE/B0FG34HIJ/Xq7mT2vW9xY3zA5bC8Lp"),
        )
        .await;
        let scope: ConnectorScope = serde_json::from_value(json!({
            "apiVersion": "releasepassport.io/v1alpha1", "kind": "ConnectorScope",
            "metadata": {"name": format!("slack-{name}")},
            "spec": {"connector": "slack", "slack": {"channel": format!("#{name}")},
                     "secretRef": {"name": format!("slack-{name}"), "key": "token"}}
        }))
        .expect("scope");
        Api::<ConnectorScope>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &scope)
            .await
            .expect("slack scope");
    }
    let mut g = gate(&ns);
    g.spec.connector_scopes.extend(
        ["slack-releases", "slack-old-channel"].map(|n| LocalObjectReference { name: n.into() }),
    );
    Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &g)
        .await
        .expect("gate");

    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    let history = eventually(WAIT, "notification history entries", || {
        let gates = gates.clone();
        async move {
            let h = gates
                .get("payment-api-production")
                .await
                .ok()?
                .status?
                .history;
            let delivered = h
                .iter()
                .any(|e| e.type_ == HistoryType::NotificationDelivered);
            let failed = h.iter().any(|e| e.type_ == HistoryType::NotificationFailed);
            (delivered && failed).then_some(h)
        }
    })
    .await;
    let delivered = history
        .iter()
        .find(|e| e.type_ == HistoryType::NotificationDelivered)
        .expect("delivered");
    assert_eq!(delivered.decision, Some(Decision::RequireApproval));
    assert!(
        delivered
            .message
            .contains("posted REQUIRE_APPROVAL to Slack #releases"),
        "{}",
        delivered.message
    );
    let failed = history
        .iter()
        .find(|e| e.type_ == HistoryType::NotificationFailed)
        .expect("failed");
    assert!(
        failed.message.contains("slack-old-channel") && failed.message.contains("404"),
        "{}",
        failed.message
    );
    // The decision did not wait for, nor depend on, the deliveries.
    let status = gates
        .get("payment-api-production")
        .await
        .expect("gate")
        .status
        .expect("status");
    assert_eq!(status.decision, Some(Decision::RequireApproval));

    let posts = slack.received();
    assert_eq!(posts.len(), 1, "one post per decision change");
    let payload = posts[0].json();
    assert!(
        payload["text"]
            .as_str()
            .unwrap()
            .starts_with("REQUIRE_APPROVAL: payment-api v2.18.4 -> production"),
        "{payload}"
    );
    assert!(
        !posts[0].body.windows(12).any(|w| w == b"Xq7mT2vW9xY3"),
        "the webhook token is not in the payload"
    );

    // At the next evaluation the delivery is the scope's evidence.
    let (_, passport) = passport_where(&client, &ns, "slack evidence in a passport", |p| {
        p.evidence.iter().any(|e| e.connector == "slack")
    })
    .await;
    assert!(
        passport
            .evidence
            .iter()
            .any(|e| e.scope.get("connectorScope").map(String::as_str) == Some("slack-releases"))
    );
    let everything = support::kubectl_ok(&[
        "get",
        "releasegates,connectorscopes,events",
        "-n",
        &ns,
        "-o",
        "json",
    ]);
    assert!(
        !everything.contains("Xq7mT2vW9xY3"),
        "the webhook token leaked"
    );
}
