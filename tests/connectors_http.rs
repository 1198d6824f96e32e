//! The `http` connector (a customer-defined endpoint answering the
//! connector evidence shape) against a local endpoint.

mod replay;

use std::time::Duration;

use releasepassport::api::{ConnectorHealth, ConnectorScopeSpec};
use releasepassport::connectors::ScopeRequest;
use replay::{Answer, Replay};
use serde_json::json;

fn scope(url: &str) -> ConnectorScopeSpec {
    serde_json::from_value(json!({"connector": "http", "http": {"url": url}})).unwrap()
}

fn request<'a>(spec: &'a ConnectorScopeSpec) -> ScopeRequest<'a> {
    ScopeRequest {
        namespace: "payments",
        name: "payment-api-evidence",
        spec,
        service: "payment-api",
        environment: "production",
        gate: None,
        now: jiff::Timestamp::now(),
        gate_name: "payment-api-production",
        release: "v2.18.4",
        previous_release: Some("v2.17.9"),
    }
}

#[tokio::test]
async fn reads_the_evidence_shape_and_pins_the_scope() {
    let server = Replay::start(vec![Answer::json(
        200,
        json!({"connector": "pagerduty", "scope": {"service": "other", "team": "payments"},
               "freshness": {"observedAt": "2026-05-03T09:30:00Z"},
               "facts": [{"name": "active_sev1_incidents", "value": 0}]}),
    )])
    .await;
    let spec = scope(&server.url("/evidence"));
    let doc = replay::connectors()
        .collect(&request(&spec))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(doc.connector, "pagerduty");
    assert_eq!(doc.scope["service"], "payment-api", "the scope is pinned");
    assert_eq!(doc.scope["team"], "payments");
    assert_eq!(doc.freshness.max_age_seconds, Some(300));
    assert_eq!(doc.facts[0].name, "active_sev1_incidents");
}

#[tokio::test]
async fn refusals_errors_and_oversized_bodies_map_to_health() {
    for (answer, health) in [
        (Answer::text(401, "no"), ConnectorHealth::Forbidden),
        (Answer::text(403, "no"), ConnectorHealth::Forbidden),
        (Answer::text(503, "down"), ConnectorHealth::Unreachable),
        (Answer::text(200, "not json"), ConnectorHealth::Invalid),
        (Answer::oversized(2 << 20), ConnectorHealth::Invalid),
        (
            Answer::json(
                200,
                json!({"connector": "releasegate", "freshness": {"observedAt": "2026-05-03T09:30:00Z"}}),
            ),
            ConnectorHealth::Invalid,
        ),
        (Answer::hang(), ConnectorHealth::Unreachable),
    ] {
        let server = Replay::start(vec![answer]).await;
        let spec = scope(&server.url("/evidence"));
        let err = replay::connectors_with_timeout(Duration::from_secs(1))
            .collect(&request(&spec))
            .await
            .expect_err("no evidence");
        assert_eq!(err.health(), health, "{err}");
    }
}
