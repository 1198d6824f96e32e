//! The `sentry` connector against a local server answering with the Sentry
//! web API's documented bodies and headers (tests/fixtures/providers/sentry/).

mod replay;

use std::time::Duration;

use releasepassport::api::ConnectorScopeSpec;
use replay::{Answer, Replay, Route, TOKEN, fact, request, with_token};
use serde_json::json;

fn spec(base: &str) -> ConnectorScopeSpec {
    serde_json::from_value(json!({
        "connector": "sentry",
        "sentry": {"url": base, "organization": "acme", "project": "payment-api"},
        "secretRef": {"name": "provider-token", "key": "token"}
    }))
    .unwrap()
}

#[tokio::test]
async fn new_issues_crash_free_rates_and_a_spike_against_the_previous_release() {
    let server = Replay::routes(vec![
        Route::path("/api/0/projects/acme/payment-api/")
            .answer(Answer::fixture("sentry/project.json")),
        Route::path("/api/0/projects/acme/payment-api/issues/")
            .query("cursor", "1777800000000:100:0")
            .answer(Answer::fixture("sentry/issues-page2.json")),
        Route::path("/api/0/projects/acme/payment-api/issues/")
            .answer(Answer::fixture("sentry/issues-page1.json")),
        Route::path("/api/0/organizations/acme/sessions/")
            .answer(Answer::fixture("sentry/sessions.json")),
    ])
    .await;
    let spec = spec(&server.base);
    let doc = with_token(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(fact(&doc, "new_issues"), Some(json!(102)));
    assert_eq!(fact(&doc, "sessions"), Some(json!(4200)));
    assert_eq!(fact(&doc, "crash_free_sessions"), Some(json!("97.12%")));
    assert_eq!(fact(&doc, "crash_free_users"), Some(json!("98.01%")));
    assert_eq!(fact(&doc, "previous_release"), Some(json!("v2.17.9")));
    assert_eq!(
        fact(&doc, "previous_crash_free_sessions"),
        Some(json!("99.63%"))
    );
    assert_eq!(fact(&doc, "crash_rate_vs_previous"), Some(json!(7.78)));
    assert_eq!(fact(&doc, "error_spike"), Some(json!(true)));
    // The oldest of Sentry's own timestamps: the sessions window's end.
    assert_eq!(
        doc.freshness.observed_at,
        "2026-05-03T09:15:00Z".parse().unwrap()
    );

    let received = server.received();
    assert_eq!(received.len(), 4);
    for r in &received {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    let issues = received[1].query();
    assert!(
        issues.contains(&(
            "query".into(),
            "is:unresolved firstRelease:\"v2.18.4\"".into()
        )),
        "{issues:?}"
    );
    assert!(issues.contains(&("environment".into(), "production".into())));
    let sessions = received[3].query();
    assert!(
        sessions.contains(&("project".into(), "4505321021243392".into())),
        "{sessions:?}"
    );
    assert!(sessions.contains(&("groupBy".into(), "release".into())));
    assert!(
        sessions.contains(&(
            "query".into(),
            "release:\"v2.18.4\" OR release:\"v2.17.9\"".into()
        )),
        "{sessions:?}"
    );
    assert!(sessions.contains(&("field".into(), "crash_free_rate(user)".into())));
}

#[tokio::test]
async fn an_empty_scope_has_no_new_issue_and_no_spike() {
    let server = Replay::routes(vec![
        Route::path("/api/0/projects/acme/payment-api/")
            .answer(Answer::fixture("sentry/project.json")),
        Route::path("/api/0/projects/acme/payment-api/issues/")
            .answer(Answer::fixture("sentry/issues-empty.json")),
        Route::path("/api/0/organizations/acme/sessions/")
            .answer(Answer::fixture("sentry/sessions-empty.json")),
    ])
    .await;
    let spec = spec(&server.base);
    let doc = with_token(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(fact(&doc, "new_issues"), Some(json!(0)));
    assert_eq!(fact(&doc, "sessions"), Some(json!(0)));
    assert_eq!(fact(&doc, "crash_free_sessions"), None);
    assert_eq!(fact(&doc, "error_spike"), Some(json!(false)));
    assert_eq!(
        server.received().len(),
        3,
        "an empty next page is not fetched"
    );
}

#[tokio::test]
async fn failures_map_to_health_and_rate_limits_are_honoured() {
    replay::check_failure_modes("sentry", spec).await;
}
