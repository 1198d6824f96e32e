//! The `servicenow` connector against a local server answering with the
//! ServiceNow Table API's documented bodies and headers
//! (tests/fixtures/providers/servicenow/).

mod replay;

use std::time::Duration;

use base64::Engine as _;
use releasepassport::api::{ConnectorScopeSpec, EvidenceDocument};
use replay::{Answer, Replay, Route, TOKEN, fact, request, with_token};
use serde_json::{Value, json};

fn spec(base: &str, sn: Value) -> ConnectorScopeSpec {
    let mut sn = sn;
    sn["url"] = json!(base);
    serde_json::from_value(json!({
        "connector": "servicenow",
        "servicenow": sn,
        "secretRef": {"name": "provider-token", "key": "token"}
    }))
    .unwrap()
}

/// Collected at a fixed time inside the fixtures' change window.
async fn collect_at(spec: &ConnectorScopeSpec, now: &str) -> EvidenceDocument {
    let mut req = request(spec);
    req.now = now.parse().unwrap();
    with_token(Duration::from_secs(5))
        .collect(&req)
        .await
        .expect("evidence")
        .expect("a document")
}

#[tokio::test]
async fn the_newest_change_request_its_approval_and_window_across_pages() {
    let server = Replay::routes(vec![
        Route::path("/api/now/table/change_request")
            .query("sysparm_offset", "0")
            .answer(Answer::fixture("servicenow/changes-page1.json")),
        Route::path("/api/now/table/change_request")
            .query("sysparm_offset", "50")
            .answer(Answer::fixture("servicenow/changes-page2.json")),
    ])
    .await;
    let spec = spec(
        &server.base,
        json!({"user": "release.reader", "query": "cmdb_ci.name={service}^short_descriptionLIKE{release}"}),
    );
    let doc = collect_at(&spec, "2026-05-03T10:00:00Z").await;
    assert_eq!(fact(&doc, "change_requests"), Some(json!(51)));
    assert_eq!(fact(&doc, "change_number"), Some(json!("CHG0030001")));
    assert_eq!(fact(&doc, "change_state"), Some(json!("Scheduled")));
    assert_eq!(fact(&doc, "change_approval"), Some(json!("approved")));
    assert_eq!(fact(&doc, "change_approval_linked"), Some(json!(true)));
    assert_eq!(
        fact(&doc, "change_window_start"),
        Some(json!("2026-05-03T08:00:00Z"))
    );
    assert_eq!(fact(&doc, "inside_change_window"), Some(json!(true)));
    assert_eq!(
        fact(&doc, "inside_approved_change_window"),
        Some(json!(true))
    );
    assert_eq!(
        doc.freshness.observed_at,
        "2026-05-03T09:29:59Z".parse().unwrap()
    );

    let received = server.received();
    assert_eq!(received.len(), 2, "51 records in pages of 50");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("release.reader:{TOKEN}"));
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    let q = received[0].query();
    assert!(
        q.contains(&(
            "sysparm_query".into(),
            "cmdb_ci.name=payment-api^short_descriptionLIKEv2.18.4^ORDERBYDESCsys_updated_on"
                .into()
        )),
        "{q:?}"
    );
    assert!(q.contains(&("sysparm_display_value".into(), "all".into())));

    // Outside the window, the change is approved but the window is not open.
    let later = collect_at(&spec, "2026-05-03T13:00:00Z").await;
    assert_eq!(fact(&later, "inside_change_window"), Some(json!(false)));
    assert_eq!(
        fact(&later, "inside_approved_change_window"),
        Some(json!(false))
    );
}

#[tokio::test]
async fn a_requested_change_is_not_approved_and_an_empty_scope_links_none() {
    let server = Replay::routes(vec![
        Route::path("/api/now/table/change_request")
            .query(
                "sysparm_query",
                "number=CHG0030002^ORDERBYDESCsys_updated_on",
            )
            .answer(Answer::fixture("servicenow/change-requested.json")),
        Route::path("/api/now/table/change_request")
            .answer(Answer::fixture("servicenow/changes-empty.json")),
    ])
    .await;
    let doc = collect_at(
        &spec(&server.base, json!({"number": "CHG0030002"})),
        "2026-05-03T10:00:00Z",
    )
    .await;
    assert_eq!(fact(&doc, "change_state"), Some(json!("Authorize")));
    assert_eq!(fact(&doc, "change_approved"), Some(json!(false)));
    assert_eq!(fact(&doc, "inside_change_window"), Some(json!(true)));
    assert_eq!(
        fact(&doc, "inside_approved_change_window"),
        Some(json!(false))
    );
    assert_eq!(fact(&doc, "change_approval_linked"), Some(json!(false)));
    // Bearer without a user (OAuth token).
    assert_eq!(
        server.received()[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    let empty = collect_at(
        &spec(&server.base, json!({"number": "CHG0039999"})),
        "2026-05-03T10:00:00Z",
    )
    .await;
    assert_eq!(fact(&empty, "change_linked"), Some(json!(false)));
    assert_eq!(fact(&empty, "change_approval_linked"), Some(json!(false)));
    assert_eq!(fact(&empty, "change_number"), None);
}

#[tokio::test]
async fn failures_map_to_health_and_rate_limits_are_honoured() {
    replay::check_failure_modes("servicenow", |base| {
        spec(base, json!({"number": "CHG0030001"}))
    })
    .await;
}
