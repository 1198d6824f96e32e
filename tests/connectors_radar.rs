//! The `statuspage` and `journey` connectors' real code against local
//! servers, without a cluster: the documented Statuspage summary
//! (`tests/fixtures/providers/statuspage/`) and every failure a status page
//! can answer with, mapped to a health; journey probes that are never
//! redirected off their allowlisted URL and read bodies only up to 1 MiB.

mod replay;

use std::time::Duration;

use releasepassport::api::{ConnectorHealth as H, ConnectorScopeSpec};
use replay::{Answer, Replay, Route, connectors_with_timeout, fact, request};
use serde_json::json;

fn statuspage(base: &str, components: &[&str]) -> ConnectorScopeSpec {
    serde_json::from_value(json!({"connector": "statuspage",
        "statuspage": {"url": base, "dependency": "statuspage", "components": components}}))
    .expect("spec")
}

#[tokio::test]
async fn the_documented_summary_is_read_with_the_pages_own_clock() {
    let server = Replay::routes(vec![
        Route::path("/api/v2/summary.json")
            .answer(Answer::fixture("statuspage/summary-outage.json")),
    ])
    .await;
    let spec = statuspage(&server.base, &["API"]);
    let doc = connectors_with_timeout(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect("read")
        .expect("evidence");
    assert_eq!(doc.connector, "statuspage");
    assert_eq!(doc.scope["dependency"], "statuspage");
    assert_eq!(doc.scope["page"], "Atlassian Statuspage");
    // The fixture's `Date`, not our clock.
    assert_eq!(
        doc.freshness.observed_at,
        "2014-05-14T20:40:00Z"
            .parse::<jiff::Timestamp>()
            .expect("date")
    );
    assert_eq!(fact(&doc, "indicator"), Some(json!("major")));
    assert_eq!(
        fact(&doc, "component_api_status"),
        Some(json!("partial_outage"))
    );
    assert_eq!(fact(&doc, "incidents_open"), Some(json!(1)));
    assert_eq!(fact(&doc, "incident_impact"), Some(json!("critical")));
    assert_eq!(fact(&doc, "maintenance_in_progress"), Some(json!(false)));
    assert_eq!(fact(&doc, "dependency_operational"), Some(json!(false)));
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].header("authorization").is_none(),
        "a public page gets no credential"
    );

    let err = connectors_with_timeout(Duration::from_secs(5))
        .collect(&request(&statuspage(&server.base, &["Billing"])))
        .await
        .expect_err("unknown component");
    assert_eq!(err.health(), H::Invalid);
    assert!(err.to_string().contains("API, Management Portal"), "{err}");
}

#[tokio::test]
async fn status_page_failures_map_to_health() {
    let cases = [
        (Answer::json(404, json!({"error": "Not found"})), H::Invalid),
        (
            Answer::json(503, json!({"error": "unavailable"})),
            H::Unreachable,
        ),
        (
            Answer::json(429, json!({"error": "slow down"})).header("retry-after", "30"),
            H::Unreachable,
        ),
        (Answer::oversized(3 << 20), H::Invalid),
        (Answer::text(200, "<html>status</html>"), H::Invalid),
        (Answer::hang(), H::Unreachable),
    ];
    for (answer, health) in cases {
        let status = answer.status;
        let server = Replay::start(vec![answer]).await;
        let err = connectors_with_timeout(Duration::from_secs(2))
            .collect(&request(&statuspage(&server.base, &[])))
            .await
            .expect_err("a failure");
        assert_eq!(err.health(), health, "HTTP {status}: {err}");
    }
}

fn journey(allowed: &str, probes: serde_json::Value) -> ConnectorScopeSpec {
    serde_json::from_value(json!({"connector": "journey",
        "journey": {"allowedUrlPrefixes": [allowed], "probes": probes}}))
    .expect("spec")
}

#[tokio::test]
async fn probes_follow_no_redirect_and_read_at_most_a_mebibyte() {
    let elsewhere = Replay::start(vec![Answer::text(200, "Add to cart")]).await;
    let shop = Replay::routes(vec![
        Route::path("/cart")
            .answer(Answer::text(302, "").header("location", &elsewhere.url("/cart"))),
        Route::path("/big").answer(Answer::oversized(2 << 20)),
    ])
    .await;
    let spec = journey(
        &format!("{}/", shop.base),
        json!([
            {"name": "cart", "url": shop.url("/cart"), "expectBody": "Add to cart"},
            {"name": "big", "url": shop.url("/big")}
        ]),
    );
    let doc = connectors_with_timeout(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect("read")
        .expect("evidence");
    assert_eq!(fact(&doc, "cart_ok"), Some(json!(false)));
    assert_eq!(fact(&doc, "cart_status_code"), Some(json!(302)));
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
    assert_eq!(fact(&doc, "big_ok"), Some(json!(false)));
    assert_eq!(
        fact(&doc, "big_reason"),
        Some(json!("body larger than 1024 KiB"))
    );
    assert_eq!(fact(&doc, "failed_probes"), Some(json!("cart,big")));

    // A probe outside the allowlist: Invalid, and no request at all.
    let spec = journey(
        &format!("{}/shop/", shop.base),
        json!([{"name": "cart", "url": shop.url("/cart")}]),
    );
    let calls = shop.received().len();
    let err = connectors_with_timeout(Duration::from_secs(5))
        .collect(&request(&spec))
        .await
        .expect_err("outside the allowlist");
    assert_eq!(err.health(), H::Invalid, "{err}");
    assert_eq!(shop.received().len(), calls);
}
