//! The `linear` connector against a local server answering with the Linear
//! GraphQL API's documented bodies and headers
//! (tests/fixtures/providers/linear/).

mod replay;

use std::time::Duration;

use releasepassport::api::{ConnectorHealth, ConnectorScopeSpec};
use replay::{Answer, Replay, fact, request, with_token};
use serde_json::{Value, json};

fn spec(base: &str, linear: Value) -> ConnectorScopeSpec {
    let mut linear = linear;
    linear["url"] = json!(format!("{base}/graphql"));
    serde_json::from_value(json!({
        "connector": "linear",
        "linear": linear,
        "secretRef": {"name": "provider-token", "key": "token"}
    }))
    .unwrap()
}

#[tokio::test]
async fn the_release_label_issues_of_a_team_across_pages() {
    let server = Replay::start(vec![
        Answer::fixture("linear/issues-page1.json"),
        Answer::fixture("linear/issues-page2.json"),
    ])
    .await;
    let spec = spec(
        &server.base,
        json!({"team": "ENG", "label": "release:{release}"}),
    );
    let doc = with_token(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(fact(&doc, "release_issues"), Some(json!(3)));
    assert_eq!(fact(&doc, "release_issues_done"), Some(json!(2)));
    assert_eq!(fact(&doc, "release_issues_open"), Some(json!(1)));
    assert_eq!(fact(&doc, "release_issues_all_done"), Some(json!(false)));
    assert_eq!(
        fact(&doc, "release_issue_states"),
        Some(json!(
            "ENG-201: Done, ENG-202: In Review, ENG-190: Canceled"
        ))
    );
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].uri.path(), "/graphql");
    // An OAuth-style token goes as Bearer; the filter holds the scope.
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {}", replay::TOKEN).as_str())
    );
    let body = received[0].json();
    assert_eq!(
        body["variables"]["filter"]["labels"]["name"]["eq"],
        "release:v2.18.4"
    );
    assert_eq!(body["variables"]["filter"]["team"]["key"]["eq"], "ENG");
    assert_eq!(body["variables"]["after"], Value::Null);
    assert_eq!(
        received[1].json()["variables"]["after"],
        "7b1a8f4e-5a0c-4c0e-8d7b-3f2e1d0c9b8a"
    );
}

#[tokio::test]
async fn one_issue_by_identifier_with_a_personal_api_key() {
    let server = Replay::start(vec![Answer::fixture("linear/issue.json")]).await;
    let spec = spec(&server.base, json!({"issue": "ENG-123"}));
    let key = "lin_api_2Zc8mQp4Lx7Vb1Nt9Rw3Ks6Hd0Fg5Jy";
    let connectors = replay::connectors_with(
        &[("payments", "provider-token", "token", key)],
        Duration::from_secs(5),
    );
    let doc = connectors
        .collect(&request(&spec))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(fact(&doc, "issue_state"), Some(json!("Done")));
    assert_eq!(fact(&doc, "issue_state_type"), Some(json!("completed")));
    assert_eq!(fact(&doc, "release_issues_all_done"), Some(json!(true)));
    assert_eq!(server.received()[0].header("authorization"), Some(key));
    assert_eq!(server.received()[0].json()["variables"]["id"], "ENG-123");
}

#[tokio::test]
async fn an_empty_scope_and_a_missing_team() {
    let server = Replay::start(vec![Answer::fixture("linear/issues-empty.json")]).await;
    let spec_ = spec(
        &server.base,
        json!({"team": "ENG", "label": "release:{release}"}),
    );
    let doc = with_token(Duration::from_secs(5))
        .collect(&request(&spec_))
        .await
        .expect("evidence")
        .expect("a document");
    assert_eq!(fact(&doc, "release_issues"), Some(json!(0)));
    assert_eq!(fact(&doc, "release_issues_all_done"), Some(json!(false)));

    let server = Replay::start(vec![Answer::fixture("linear/team-missing.json")]).await;
    let err = with_token(Duration::from_secs(5))
        .collect(&request(&spec(
            &server.base,
            json!({"team": "ENG", "label": "x"}),
        )))
        .await
        .expect_err("no such team");
    assert_eq!(err.health(), ConnectorHealth::Invalid, "{err}");
    assert!(err.to_string().contains("team ENG not found"), "{err}");
}

#[tokio::test]
async fn graphql_errors_map_to_health_and_rate_limits_are_honoured() {
    replay::check_failure_modes("linear", |base| spec(base, json!({"issue": "ENG-123"}))).await;
}
