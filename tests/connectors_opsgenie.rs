//! The `opsgenie` connector against a local server answering with the
//! Opsgenie Alert and Team APIs' documented bodies and headers
//! (tests/fixtures/providers/opsgenie/).

mod replay;

use std::time::Duration;

use releasepassport::api::ConnectorScopeSpec;
use replay::{Answer, Replay, Route, TOKEN, fact, request, with_token};
use serde_json::json;

fn spec(base: &str) -> ConnectorScopeSpec {
    serde_json::from_value(json!({
        "connector": "opsgenie",
        "opsgenie": {"url": base, "team": "payments"},
        "secretRef": {"name": "provider-token", "key": "token"}
    }))
    .unwrap()
}

#[tokio::test]
async fn open_alerts_of_the_team_across_pages() {
    let server = Replay::routes(vec![
        Route::path("/v2/teams/payments").answer(Answer::fixture("opsgenie/team.json")),
        Route::path("/v2/alerts")
            .query("offset", "0")
            .answer(Answer::fixture("opsgenie/alerts-page1.json")),
        Route::path("/v2/alerts")
            .query("offset", "100")
            .answer(Answer::fixture("opsgenie/alerts-page2.json")),
    ])
    .await;
    let spec = spec(&server.base);
    let doc = with_token(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(doc.connector, "opsgenie");
    assert_eq!(fact(&doc, "active_incidents"), Some(json!(101)));
    assert_eq!(fact(&doc, "active_sev1_incidents"), Some(json!(1)));
    assert_eq!(fact(&doc, "active_p3_or_higher_incidents"), Some(json!(2)));
    assert_eq!(fact(&doc, "unacknowledged_alerts"), Some(json!(1)));
    let worst = fact(&doc, "most_severe_incident").expect("named");
    assert_eq!(
        worst,
        json!("Opsgenie alert #1791 70413a06-38d6-4c85-92b8-5ebc900d42e2 (P1, open)")
    );
    assert_eq!(
        doc.freshness.observed_at,
        "2026-05-03T09:29:58Z".parse().unwrap()
    );

    let received = server.received();
    assert_eq!(received.len(), 3);
    for r in &received {
        assert_eq!(
            r.header("authorization"),
            Some(format!("GenieKey {TOKEN}").as_str())
        );
    }
    assert!(
        received[0]
            .query()
            .contains(&("identifierType".into(), "name".into()))
    );
    assert!(
        received[1]
            .query()
            .contains(&("query".into(), "status:open AND teams:\"payments\"".into())),
        "{:?}",
        received[1].query()
    );
}

#[tokio::test]
async fn an_empty_scope_has_no_incident() {
    let server = Replay::routes(vec![
        Route::path("/v2/teams/payments").answer(Answer::fixture("opsgenie/team.json")),
        Route::path("/v2/alerts").answer(Answer::fixture("opsgenie/alerts-empty.json")),
    ])
    .await;
    let spec = spec(&server.base);
    let doc = with_token(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(fact(&doc, "active_incidents"), Some(json!(0)));
    assert_eq!(fact(&doc, "most_severe_incident"), None);
}

#[tokio::test]
async fn failures_map_to_health_and_rate_limits_are_honoured() {
    replay::check_failure_modes("opsgenie", spec).await;
}
