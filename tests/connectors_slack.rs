//! The `slack` notification connector against a local receiver that
//! answers as a Slack incoming webhook does (tests/fixtures/providers/slack/)
//! and checks the payload.

mod replay;

use std::time::Duration;

use releasepassport::api::{ConnectorHealth, ConnectorScopeSpec, Decision, Mode};
use releasepassport::connectors::notify::Notification;
use replay::{Answer, Replay, fact, request};
use serde_json::json;

fn spec() -> ConnectorScopeSpec {
    serde_json::from_value(json!({
        "connector": "slack",
        "slack": {"channel": "#releases"},
        "secretRef": {"name": "slack-webhook", "key": "url"}
    }))
    .unwrap()
}

fn notification() -> Notification {
    Notification {
        namespace: "payments".into(),
        gate: "payment-api-production".into(),
        service: "payment-api".into(),
        release: "v2.18.4".into(),
        environment: "production".into(),
        mode: Mode::Enforce,
        decision: Decision::Hold,
        previous: Some(Decision::Allow),
        confidence: 82,
        failing_checks: vec!["error-rate".into(), "change-approval".into()],
        next_actions: vec!["Link the Jira change approval, then re-run the enforce gate.".into()],
        passport: "payment-api-production-3179e15b72".into(),
        link: Some(
            "https://rp.example.com/console/passports/payments/payment-api-production-3179e15b72"
                .into(),
        ),
    }
}

/// The webhook URL carries its token: the test's receiver path stands in for it.
const HOOK_PATH: &str = "/services/T0AB12CDE/B0FG34HIJ/q8ZrT4mW2xVb9LpNf3HdKs77";

fn connectors(server: &Replay) -> releasepassport::connectors::Connectors {
    let url = server.url(HOOK_PATH);
    replay::connectors_with(
        &[("payments", "slack-webhook", "url", &url)],
        Duration::from_secs(2),
    )
}

#[tokio::test]
async fn a_decision_change_is_posted_and_recorded_as_evidence() {
    let server = Replay::start(vec![Answer::fixture("slack/ok.json")]).await;
    let connectors = connectors(&server);
    let spec = spec();
    let req = request(&spec);
    // Before any delivery the scope is healthy and reports none.
    let doc = connectors
        .collect(&req)
        .await
        .expect("evidence")
        .expect("doc");
    assert_eq!(fact(&doc, "notifications_sent"), Some(json!(0)));

    let detail = connectors
        .notify(&req, &notification())
        .await
        .expect("delivered");
    assert_eq!(detail, "posted HOLD to Slack #releases");
    let received = server.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.uri.path(), HOOK_PATH);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let payload = r.json();
    let text = payload["text"].as_str().expect("text");
    assert!(
        text.starts_with("HOLD: payment-api v2.18.4 -> production (enforce mode)"),
        "{text}"
    );
    assert!(
        text.contains("Failing checks: error-rate, change-approval"),
        "{text}"
    );
    assert_eq!(payload["blocks"][0]["type"], "section");
    assert!(
        payload["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("*HOLD* payment-api v2.18.4")
    );
    assert!(
        payload["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("• Link the Jira change approval")
    );
    assert_eq!(
        payload["blocks"][2]["elements"][0]["text"],
        "<https://rp.example.com/console/passports/payments/payment-api-production-3179e15b72|Passport payment-api-production-3179e15b72>"
    );
    assert!(
        !r.body.windows(10).any(|w| w == b"q8ZrT4mW2x"),
        "the webhook token is not in the payload"
    );

    let doc = connectors
        .collect(&req)
        .await
        .expect("evidence")
        .expect("doc");
    assert_eq!(doc.connector, "slack");
    assert_eq!(fact(&doc, "notifications_sent"), Some(json!(1)));
    assert_eq!(fact(&doc, "last_notification_delivered"), Some(json!(true)));
    assert_eq!(fact(&doc, "last_notified_decision"), Some(json!("HOLD")));
    assert!(!serde_json::to_string(&doc).unwrap().contains("q8ZrT4mW2x"));
}

#[tokio::test]
async fn slack_errors_map_to_health_and_are_recorded_as_failed_deliveries() {
    for (fixture, health) in [
        ("slack/invalid-payload.json", ConnectorHealth::Invalid),
        ("slack/invalid-token.json", ConnectorHealth::Forbidden),
        ("slack/no-service.json", ConnectorHealth::Invalid),
        ("slack/channel-archived.json", ConnectorHealth::Invalid),
        ("slack/rollup-error.json", ConnectorHealth::Unreachable),
    ] {
        let server = Replay::start(vec![Answer::fixture(fixture)]).await;
        let connectors = connectors(&server);
        let spec = spec();
        let req = request(&spec);
        let err = connectors
            .notify(&req, &notification())
            .await
            .expect_err(fixture);
        assert_eq!(err.health(), health, "{fixture}: {err}");
        assert!(!err.to_string().contains("q8ZrT4mW2x"), "{err}");
        let doc = connectors
            .collect(&req)
            .await
            .expect("evidence")
            .expect("doc");
        assert_eq!(
            fact(&doc, "last_notification_delivered"),
            Some(json!(false)),
            "{fixture}"
        );
    }

    // Rate limited: reported, and the next notification waits for Retry-After.
    let server = Replay::start(vec![Answer::fixture("slack/rate-limited.json")]).await;
    let connectors = connectors(&server);
    let spec = spec();
    let req = request(&spec);
    let err = connectors
        .notify(&req, &notification())
        .await
        .expect_err("429");
    assert!(err.to_string().contains("backing off 30s"), "{err}");
    let again = connectors
        .notify(&req, &notification())
        .await
        .expect_err("backing off");
    assert!(again.to_string().contains("backing off"), "{again}");
    assert_eq!(
        server.received().len(),
        1,
        "no second post during Retry-After"
    );

    // A receiver that never answers: the decision's reconcile is not held up
    // longer than the connector timeout.
    let server = Replay::start(vec![Answer::hang()]).await;
    let err = connectors_for_hang(&server)
        .notify(&req, &notification())
        .await
        .expect_err("timeout");
    assert_eq!(err.health(), ConnectorHealth::Unreachable, "{err}");

    // No Secret: CredentialRequired, nothing posted.
    let none = replay::connectors_with(&[], Duration::from_secs(2));
    let err = none.collect(&req).await.expect_err("no webhook");
    assert_eq!(err.health(), ConnectorHealth::CredentialRequired, "{err}");
    assert!(err.to_string().contains("slack-webhook"), "{err}");
}

fn connectors_for_hang(server: &Replay) -> releasepassport::connectors::Connectors {
    let url = server.url(HOOK_PATH);
    replay::connectors_with(
        &[("payments", "slack-webhook", "url", &url)],
        Duration::from_secs(1),
    )
}
