//! The `jira` connector against a local server answering with Jira Cloud's,
//! Jira Data Center's and Jira Service Management's documented bodies and
//! headers (tests/fixtures/providers/jira/).

mod replay;

use std::time::Duration;

use base64::Engine as _;
use releasepassport::api::{ConnectorHealth, ConnectorScopeSpec};
use replay::{Answer, Replay, Route, TOKEN, fact, request, with_token};
use serde_json::{Value, json};

fn spec(base: &str, jira: Value) -> ConnectorScopeSpec {
    let mut jira = jira;
    jira["url"] = json!(base);
    jira["project"] = json!("CHG");
    serde_json::from_value(json!({
        "connector": "jira",
        "jira": jira,
        "secretRef": {"name": "provider-token", "key": "token"}
    }))
    .unwrap()
}

async fn collect(spec: &ConnectorScopeSpec) -> releasepassport::api::EvidenceDocument {
    with_token(Duration::from_secs(5))
        .collect(&request(spec))
        .await
        .expect("evidence")
        .expect("a document")
}

#[tokio::test]
async fn a_change_ticket_by_key_approved_in_service_management() {
    let server = Replay::routes(vec![
        Route::path("/rest/api/3/issue/CHG-1042").answer(Answer::fixture("jira/issue.json")),
        Route::path("/rest/servicedeskapi/request/CHG-1042/approval")
            .answer(Answer::fixture("jira/approvals.json")),
    ])
    .await;
    let spec = spec(
        &server.base,
        json!({"user": "ci-reader@acme.example", "issueKey": "CHG-1042", "serviceManagement": true}),
    );
    let doc = collect(&spec).await;
    assert_eq!(fact(&doc, "change_approval_linked"), Some(json!(true)));
    assert_eq!(fact(&doc, "change_linked"), Some(json!(true)));
    assert_eq!(fact(&doc, "change_key"), Some(json!("CHG-1042")));
    assert_eq!(fact(&doc, "change_status"), Some(json!("Approved")));
    assert_eq!(fact(&doc, "change_approved"), Some(json!(true)));
    assert_eq!(fact(&doc, "change_approval_state"), Some(json!("approved")));
    assert_eq!(
        fact(&doc, "change_approvers"),
        Some(json!("Alice Approver"))
    );
    assert_eq!(
        fact(&doc, "change_updated_at"),
        Some(json!("2026-05-03T09:10:00Z"))
    );
    assert_eq!(
        doc.freshness.observed_at,
        "2026-05-03T09:29:59Z".parse().unwrap()
    );
    // Jira Cloud API tokens go as Basic email:token.
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("ci-reader@acme.example:{TOKEN}"));
    for r in server.received() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Basic {basic}").as_str())
        );
    }
    // Nothing of the credential in the evidence.
    let text = serde_json::to_string(&doc).unwrap();
    assert!(!text.contains(TOKEN) && !text.contains(&basic));
}

#[tokio::test]
async fn the_fix_version_search_pages_and_judges_the_newest_ticket() {
    let server = Replay::routes(vec![
        Route::path("/rest/api/3/search/jql")
            .query("nextPageToken", "CAEaAggD")
            .answer(Answer::fixture("jira/search-page2.json")),
        Route::path("/rest/api/3/search/jql").answer(Answer::fixture("jira/search-page1.json")),
    ])
    .await;
    let spec = spec(&server.base, json!({"user": "ci-reader@acme.example"}));
    let doc = collect(&spec).await;
    assert_eq!(fact(&doc, "change_tickets"), Some(json!(2)));
    assert_eq!(fact(&doc, "change_key"), Some(json!("CHG-1043")));
    assert_eq!(
        fact(&doc, "change_status"),
        Some(json!("Awaiting approval"))
    );
    assert_eq!(fact(&doc, "change_approved"), Some(json!(false)));
    assert_eq!(fact(&doc, "change_approval_linked"), Some(json!(false)));
    let received = server.received();
    assert_eq!(received.len(), 2);
    let jql = received[0]
        .query()
        .into_iter()
        .find(|(k, _)| k == "jql")
        .map(|(_, v)| v)
        .unwrap();
    assert_eq!(
        jql,
        "project = \"CHG\" AND fixVersion = \"v2.18.4\" ORDER BY updated DESC"
    );
    assert!(
        received[1]
            .query()
            .contains(&("nextPageToken".into(), "CAEaAggD".into()))
    );
}

#[tokio::test]
async fn data_center_search_with_a_personal_access_token() {
    let server = Replay::routes(vec![
        Route::path("/rest/api/2/search").answer(Answer::fixture("jira/dc-search.json")),
    ])
    .await;
    let spec = spec(
        &server.base,
        json!({"deployment": "dataCenter", "jql": "labels = \"{service}-{release}\""}),
    );
    let doc = collect(&spec).await;
    assert_eq!(fact(&doc, "change_approval_linked"), Some(json!(true)));
    assert_eq!(
        fact(&doc, "change_updated_at"),
        Some(json!("2026-05-03T09:10:00Z"))
    );
    let r = &server.received()[0];
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let q = r.query();
    assert!(q.contains(&("startAt".into(), "0".into())), "{q:?}");
    assert!(
        q.contains(&(
            "jql".into(),
            "project = \"CHG\" AND (labels = \"payment-api-v2.18.4\") ORDER BY updated DESC".into()
        )),
        "{q:?}"
    );
}

#[tokio::test]
async fn no_linked_ticket_and_pending_approvals_are_not_approved() {
    let server = Replay::routes(vec![
        Route::path("/rest/api/3/search/jql").answer(Answer::fixture("jira/search-empty.json")),
    ])
    .await;
    let doc = collect(&spec(&server.base, json!({}))).await;
    assert_eq!(fact(&doc, "change_linked"), Some(json!(false)));
    assert_eq!(fact(&doc, "change_approval_linked"), Some(json!(false)));
    assert_eq!(fact(&doc, "change_key"), None);

    let server = Replay::routes(vec![
        Route::path("/rest/api/3/issue/CHG-1042").answer(Answer::fixture("jira/issue.json")),
        Route::path("/rest/servicedeskapi/request/CHG-1042/approval")
            .answer(Answer::fixture("jira/approvals-pending.json")),
    ])
    .await;
    let doc = collect(&spec(
        &server.base,
        json!({"issueKey": "CHG-1042", "serviceManagement": true}),
    ))
    .await;
    assert_eq!(fact(&doc, "change_approval_state"), Some(json!("pending")));
    assert_eq!(fact(&doc, "change_approval_linked"), Some(json!(false)));
}

#[tokio::test]
async fn an_issue_key_outside_the_project_is_refused_without_a_call() {
    let server = Replay::start(vec![Answer::fixture("jira/issue.json")]).await;
    let err = with_token(Duration::from_secs(5))
        .collect(&request(&spec(&server.base, json!({"issueKey": "OPS-1"}))))
        .await
        .expect_err("outside the project");
    assert_eq!(err.health(), ConnectorHealth::Invalid, "{err}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn failures_map_to_health_and_rate_limits_are_honoured() {
    replay::check_failure_modes("jira", |base| spec(base, json!({"issueKey": "CHG-1042"}))).await;
}
