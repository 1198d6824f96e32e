//! The `pagerduty` connector against a local server answering with the
//! PagerDuty REST API v2's documented bodies and headers
//! (tests/fixtures/providers/pagerduty/).

mod replay;

use std::time::Duration;

use releasepassport::api::ConnectorScopeSpec;
use replay::{Answer, Replay, Route, TOKEN, fact, request, with_token};
use serde_json::json;

fn spec(base: &str) -> ConnectorScopeSpec {
    serde_json::from_value(json!({
        "connector": "pagerduty",
        "pagerduty": {"url": base, "serviceIds": ["PIJ90N7"]},
        "secretRef": {"name": "provider-token", "key": "token"}
    }))
    .unwrap()
}

#[tokio::test]
async fn active_incidents_of_the_scoped_service_across_pages() {
    let server = Replay::routes(vec![
        Route::path("/services/PIJ90N7").answer(Answer::fixture("pagerduty/service.json")),
        Route::path("/incidents")
            .query("offset", "0")
            .answer(Answer::fixture("pagerduty/incidents-page1.json")),
        Route::path("/incidents")
            .query("offset", "100")
            .answer(Answer::fixture("pagerduty/incidents-page2.json")),
    ])
    .await;
    let spec = spec(&server.base);
    let doc = with_token(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(doc.connector, "pagerduty");
    assert_eq!(fact(&doc, "active_incidents"), Some(json!(3)));
    assert_eq!(fact(&doc, "active_sev1_incidents"), Some(json!(1)));
    assert_eq!(fact(&doc, "active_p3_or_higher_incidents"), Some(json!(2)));
    assert_eq!(fact(&doc, "active_high_urgency_incidents"), Some(json!(1)));
    assert_eq!(
        fact(&doc, "open_incident_ids"),
        Some(json!("Q2SRP8WLJ0J7TD,Q1ZGVPKOHUQ8UN,Q0RIJJZL24RC6W"))
    );
    let worst = fact(&doc, "most_severe_incident").expect("named");
    let worst = worst.as_str().unwrap();
    assert!(
        worst.contains("#1234") && worst.contains("Q2SRP8WLJ0J7TD") && worst.contains("P1"),
        "{worst}"
    );
    assert!(
        !worst.contains("Checkout returns 502"),
        "titles are private text: {worst}"
    );
    // Freshness from PagerDuty's own clock: the oldest Date of the answers.
    assert_eq!(
        doc.freshness.observed_at,
        "2026-05-03T09:29:58Z".parse().unwrap()
    );
    assert_eq!(doc.scope["pagerdutyServices"], "PIJ90N7");

    // What was sent: the documented auth scheme, only the scoped service,
    // only unresolved incidents, classic offset pagination.
    let received = server.received();
    assert_eq!(received.len(), 3);
    for r in &received {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Token token={TOKEN}").as_str())
        );
    }
    let q = received[1].query();
    assert!(
        q.contains(&("service_ids[]".into(), "PIJ90N7".into())),
        "{q:?}"
    );
    assert!(
        q.contains(&("statuses[]".into(), "triggered".into())),
        "{q:?}"
    );
    assert!(
        q.contains(&("statuses[]".into(), "acknowledged".into())),
        "{q:?}"
    );
    assert!(!q.iter().any(|(_, v)| v == "resolved"), "{q:?}");
    assert!(
        received[2]
            .query()
            .contains(&("offset".into(), "100".into()))
    );
}

#[tokio::test]
async fn an_empty_scope_has_no_incident() {
    let server = Replay::routes(vec![
        Route::path("/services/PIJ90N7").answer(Answer::fixture("pagerduty/service.json")),
        Route::path("/incidents").answer(Answer::fixture("pagerduty/incidents-empty.json")),
    ])
    .await;
    let spec = spec(&server.base);
    let doc = with_token(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(fact(&doc, "active_incidents"), Some(json!(0)));
    assert_eq!(fact(&doc, "active_sev1_incidents"), Some(json!(0)));
    assert_eq!(fact(&doc, "open_incident_ids"), Some(json!("")));
    assert_eq!(fact(&doc, "most_severe_incident"), None);
}

#[tokio::test]
async fn failures_map_to_health_and_rate_limits_are_honoured() {
    replay::check_failure_modes("pagerduty", spec).await;
}
