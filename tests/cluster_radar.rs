//! Radar and scorecards end to end, on the real control plane with the real
//! controller and its console: journey checks probe a real local HTTP
//! server (a shop with a home page, a JSON health endpoint and a checkout
//! answering HEAD) and a dependency's Atlassian Statuspage summary, served
//! from the provider's documented bodies, becomes pulled evidence; a Policy
//! decides on both; the ConnectorScopes carry the Radar rows and the Radar
//! page shows them with freshness and confidence; a probe outside the
//! allowlist is refused without a request. Then the console's scorecards
//! (page and CSV) show exactly the numbers `releasepassport report metrics`
//! computes for the same passports.

mod replay;
mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use kube::Client;
use kube::api::{Api, PostParams};
use releasepassport::api::*;
use replay::{Answer, Replay, Route};
use serde_json::{Value, json};
use support::controller::{self as ctl, eventually};

const WAIT: Duration = Duration::from_secs(90);
const GATE: &str = "shop-production";

/// A shop on loopback: `/` (HTML), `/api/health` (JSON) and `/checkout`
/// (HEAD); `broken` makes the checkout answer 503 and the health degraded.
async fn shop(broken: Arc<AtomicBool>) -> String {
    let health = broken.clone();
    let checkout = broken;
    let app = axum::Router::new()
        .route(
            "/",
            get(|| async { axum::response::Html("<h1>Shop</h1><button>Add to cart</button>") }),
        )
        .route(
            "/api/health",
            get(move || {
                let broken = health.load(Ordering::SeqCst);
                async move {
                    axum::Json(json!({"status": if broken { "degraded" } else { "ok" }, "checks": [{"db": "up"}]}))
                }
            }),
        )
        .route(
            "/checkout",
            get(move || {
                let broken = checkout.load(Ordering::SeqCst);
                async move {
                    if broken {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the shop");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn create<K>(client: &Client, ns: &str, value: Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Clone
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let object: K = serde_json::from_value(value).expect("object");
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .expect("create");
}

/// The journey scope (inside the allowlist), one whose probe leaves it,
/// and the dependency's status page.
async fn scopes(client: &Client, ns: &str, shop: &str, status: &str) {
    create::<ConnectorScope>(
        client,
        ns,
        json!({"metadata": {"name": "shop-journey"}, "spec": {"connector": "journey", "maxAgeSeconds": 600,
            "journey": {"allowedUrlPrefixes": [format!("{shop}/")], "probes": [
                {"name": "home", "url": format!("{shop}/"), "expectBody": "Add to cart"},
                {"name": "health", "url": format!("{shop}/api/health"), "expectStatus": 200, "maxLatencyMs": 10000,
                 "expectJson": {"pointer": "/status", "equals": "ok"}},
                {"name": "checkout", "url": format!("{shop}/checkout"), "method": "HEAD", "expectStatus": 200}]}}}),
    )
    .await;
    create::<ConnectorScope>(
        client,
        ns,
        json!({"metadata": {"name": "shop-journey-outside"}, "spec": {"connector": "journey",
            "journey": {"allowedUrlPrefixes": [format!("{shop}/")], "probes": [
                {"name": "internal", "url": format!("{status}/internal/metadata")}]}}}),
    )
    .await;
    create::<ConnectorScope>(
        client,
        ns,
        json!({"metadata": {"name": "shop-dependency-status"}, "spec": {"connector": "statuspage", "maxAgeSeconds": 600,
            "statuspage": {"url": status, "dependency": "statuspage", "components": ["API"]}}}),
    )
    .await;
}

async fn policy_and_gate(client: &Client, ns: &str) {
    create::<Policy>(
        client,
        ns,
        json!({"metadata": {"name": GATE}, "spec": {"rules": [
            {"id": "journeys-pass", "label": "User journeys pass", "connector": "journey", "fact": "journey_ok",
             "condition": {"operator": "equals", "value": true}, "onFail": "HOLD",
             "nextAction": "Fix the failing journeys: {evidence.failed_probes}."},
            {"id": "dependency-up", "label": "Statuspage API operational", "connector": "statuspage",
             "fact": "dependency_operational", "condition": {"operator": "equals", "value": true}, "onFail": "HOLD"}
        ]}}),
    )
    .await;
    create::<ReleaseGate>(
        client,
        ns,
        json!({"metadata": {"name": GATE}, "spec": {
            "service": "shop", "release": "v1.4.0", "environment": "production", "mode": "shadow",
            "policyRef": {"name": GATE},
            "connectorScopes": [{"name": "shop-journey"}, {"name": "shop-dependency-status"}],
            "artifact": {"image": format!("registry.example.com/shop@sha256:{}", "4".repeat(64))}}}),
    )
    .await;
    // A gate of its own reads the scope whose probe leaves the allowlist.
    create::<ReleaseGate>(
        client,
        ns,
        json!({"metadata": {"name": "internal-production"}, "spec": {
            "service": "internal", "release": "v0.1.0", "environment": "production", "mode": "shadow",
            "policyRef": {"name": GATE},
            "connectorScopes": [{"name": "shop-journey-outside"}],
            "artifact": {"image": format!("registry.example.com/internal@sha256:{}", "5".repeat(64))}}}),
    )
    .await;
}

async fn passport_where(
    client: &Client,
    ns: &str,
    what: &str,
    want: impl Fn(&PassportSpec) -> bool,
) -> PassportSpec {
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    let passports: Api<Passport> = Api::namespaced(client.clone(), ns);
    eventually(WAIT, what, || {
        let (gates, passports, want) = (gates.clone(), passports.clone(), &want);
        async move {
            let status = gates.get(GATE).await.ok()?.status?;
            let p = passports.get(status.passport_name.as_deref()?).await.ok()?;
            want(&p.spec).then_some(p.spec)
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

async fn scope_status(client: &Client, ns: &str, name: &str) -> ConnectorScopeStatus {
    Api::<ConnectorScope>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("scope")
        .status
        .unwrap_or_default()
}

/// A ServiceAccount that may read the project's resources in `ns`, and its token.
fn reader(ns: &str) -> String {
    let name = "radar-viewer";
    support::kubectl_ok(&["create", "serviceaccount", name, "-n", ns]);
    support::kubectl_ok(&[
        "create",
        "role",
        name,
        "-n",
        ns,
        "--verb=get,list,watch",
        "--resource=releasegates.releasepassport.io,passports.releasepassport.io,policies.releasepassport.io,connectorscopes.releasepassport.io",
    ]);
    support::kubectl_ok(&[
        "create",
        "rolebinding",
        name,
        "-n",
        ns,
        &format!("--role={name}"),
        &format!("--serviceaccount={ns}:{name}"),
    ]);
    support::kubectl_ok(&["create", "token", name, "-n", ns, "--duration", "1h"])
        .trim()
        .to_string()
}

async fn console_get(base: &str, token: &str, path: &str) -> String {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("console request");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.text().await.expect("console body")
}

/// The `data-value` of every `data-metric` in the scorecard of `service`.
fn scorecard_values(html: &str, ns: &str, service: &str) -> BTreeMap<String, String> {
    let start = html
        .find(&format!(
            "data-namespace=\"{ns}\" data-service=\"{service}\""
        ))
        .unwrap_or_else(|| panic!("no scorecard for {ns}/{service}"));
    let section = &html[start..];
    let section = &section[..section.find("</section>").expect("section end")];
    let mut values = BTreeMap::new();
    for part in section.split("data-metric=\"").skip(1) {
        let key = &part[..part.find('"').expect("metric")];
        let rest = &part[part.find("data-value=\"").expect("value") + 12..];
        values.insert(
            key.to_string(),
            rest[..rest.find('"').expect("end")].to_string(),
        );
    }
    values
}

/// `report metrics --output json` for the namespace.
fn report_metrics(ns: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args([
            "report", "metrics", "-n", ns, "--window", "30d", "--output", "json",
        ])
        .env("KUBECONFIG", &support::cluster().kubeconfig)
        .output()
        .expect("running report metrics");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("report metrics JSON")
}

/// The JSON number (or absence) as the CSV and the page write it.
fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Number(n) => n
            .as_u64()
            .map(|u| u.to_string())
            .or_else(|| n.as_f64().map(|f| f.to_string()))
            .unwrap_or_default(),
        other => other.to_string(),
    }
}

/// One CSV record (RFC 4180 quoting; no field of these files spans lines).
fn csv_record(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("field").push(c),
        }
    }
    fields
}

/// Each scorecard column and where `report metrics` JSON keeps it.
const COLUMNS: &[(&str, &str)] = &[
    ("deployments", "/deployments"),
    ("deployments_per_day", "/deploymentsPerDay"),
    ("lead_time_p50_seconds", "/leadTime/p50Seconds"),
    ("lead_time_p90_seconds", "/leadTime/p90Seconds"),
    ("failed_deployments", "/failedDeployments"),
    ("change_failure_rate", "/changeFailureRate"),
    ("rollback_recommended", "/rollbackRecommended"),
    ("time_to_restore_p50_seconds", "/timeToRestore/p50Seconds"),
    ("time_to_restore_p90_seconds", "/timeToRestore/p90Seconds"),
    ("open_incidents", "/openIncidents"),
    ("approval_wait_p50_seconds", "/approvalWait/p50Seconds"),
    ("approval_wait_p90_seconds", "/approvalWait/p90Seconds"),
    ("passports", "/evidence/passports"),
    ("mean_confidence", "/evidence/meanConfidence"),
    ("evidence_fresh_ratio", "/evidence/freshRatio"),
];

/// The console's scorecard (page and CSV) against `report metrics`, once
/// the passports stand still between two reports.
async fn scorecards_match_report(base: &str, token: &str, ns: &str) {
    let last = std::sync::Mutex::new(String::new());
    let compared = tokio::time::timeout(WAIT, async {
        loop {
            let found = async {
                let before = report_metrics(ns);
                let page = console_get(base, token, "/console/metrics?window=30d").await;
                let csv = console_get(base, token, "/console/metrics.csv?window=30d").await;
                let after = report_metrics(ns);
                let group = |m: &Value| {
                    m["groups"]
                        .as_array()?
                        .iter()
                        .find(|g| g["service"] == "shop")
                        .cloned()
                };
                let (json, again) = (group(&before)?, group(&after)?);
                // The numbers, not the timeline's period starts (they follow `now`).
                let numbers = |g: &Value| {
                    COLUMNS
                        .iter()
                        .map(|(_, pointer)| g.pointer(pointer).cloned())
                        .chain([g.get("holdReasons").cloned()])
                        .collect::<Vec<_>>()
                };
                if numbers(&json) != numbers(&again) {
                    *last.lock().expect("last") = "a passport landed between two reports".into();
                    return None;
                }
                let mut lines = csv.lines().map(csv_record);
                let header = lines.next().expect("CSV header");
                let row: BTreeMap<String, String> = lines
                    .find(|r| r[0] == ns && r[1] == "shop")
                    .map(|r| header.iter().cloned().zip(r).collect())?;
                let shown = scorecard_values(&page, ns, "shop");
                let differ: Vec<String> = COLUMNS
                    .iter()
                    .filter_map(|(col, pointer)| {
                        let want = text_of(json.pointer(pointer).unwrap_or(&Value::Null));
                        let csv_ok = row.get(*col) == Some(&want);
                        let page_ok = shown.get(*col).is_none_or(|v| *v == want);
                        (!csv_ok || !page_ok).then(|| {
                            format!(
                                "{col}: report {want:?}, csv {:?}, page {:?}",
                                row.get(*col),
                                shown.get(*col)
                            )
                        })
                    })
                    .collect();
                *last.lock().expect("last") = differ.join("; ");
                differ.is_empty().then_some((json, row, shown))
            }
            .await;
            match found {
                Some(found) => break found,
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the console's scorecards never equalled report metrics: {}",
            last.lock().expect("last")
        )
    });
    let (json, row, shown) = compared;
    // Not vacuous: the ALLOW promoted the digest, the HOLD counted its reasons.
    assert_eq!(json["deployments"], json!(1), "{json}");
    assert_eq!(row["deployments"], "1");
    assert_eq!(shown["deployments"], "1");
    assert!(row["hold_reasons"].contains("journeys-pass:"), "{row:?}");
    assert!(row["hold_reasons"].contains("dependency-up:"), "{row:?}");
    let holds: Vec<String> = json["holdReasons"]
        .as_array()
        .expect("holdReasons")
        .iter()
        .map(|h| format!("{}:{}", h["rule"].as_str().expect("rule"), h["count"]))
        .collect();
    assert_eq!(row["hold_reasons"], holds.join(";"));
    // The CLI writes the same CSV rows.
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args([
            "report", "metrics", "-n", ns, "--window", "30d", "--output", "csv",
        ])
        .env("KUBECONFIG", &support::cluster().kubeconfig)
        .output()
        .expect("running report metrics --output csv");
    let cli = String::from_utf8_lossy(&out.stdout);
    let cli_row = cli
        .lines()
        .map(csv_record)
        .find(|r| r[0] == ns && r[1] == "shop")
        .expect("the shop row in the CLI's CSV");
    // (Passports keep landing: compare what stands still.)
    assert_eq!(
        cli.lines().next().map(csv_record),
        Some(
            releasepassport::insights::SCORECARD_COLUMNS
                .iter()
                .map(|c| c.to_string())
                .collect()
        )
    );
    assert_eq!(cli_row[3], row["deployments"]);
    let passports: f64 = row["passports"].parse().expect("a number");
    assert_eq!(json["evidence"]["passports"].as_f64(), Some(passports));
}

#[tokio::test]
async fn cluster_journey_checks_and_a_statuspage_feed_are_evidence_radar_rows_and_scorecards() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let ns = support::namespace(&client, "radar").await;
    let broken = Arc::new(AtomicBool::new(false));
    let shop = shop(broken.clone()).await;
    let status =
        Replay::routes(vec![Route::path("/api/v2/summary.json").answer(
            Answer::fixture("statuspage/summary-operational.json").dated_now(),
        )])
        .await;
    scopes(&client, &ns, &shop, &status.base).await;
    policy_and_gate(&client, &ns).await;
    let port = free_port();
    let console = format!("http://127.0.0.1:{port}");
    let _controller = ctl::start(
        &format!("rp-test-radar-{}", std::process::id()),
        "radar-tests",
        &[
            "--resync-seconds",
            "3",
            "--no-webhook",
            "--console-addr",
            &format!("127.0.0.1:{port}"),
        ],
    );

    // A healthy day: every journey passes, the dependency is operational.
    let allow = passport_where(&client, &ns, "ALLOW from journeys and status page", |p| {
        p.decision == Decision::Allow
    })
    .await;
    for (rule, source) in [
        ("journeys-pass", "journey/journey_ok"),
        ("dependency-up", "statuspage/dependency_operational"),
    ] {
        let r = result(&allow, rule);
        assert_eq!(r.state, ResultState::Pass, "{r:?}");
        assert_eq!(r.source.as_deref(), Some(source));
    }
    for connector in ["journey", "statuspage"] {
        let e = allow
            .evidence
            .iter()
            .find(|e| e.connector == connector)
            .unwrap_or_else(|| panic!("{connector} evidence in {:?}", allow.evidence));
        assert_eq!(e.status, "fresh");
        assert_eq!(e.max_age_seconds, Some(600));
    }
    // The probe outside the allowlist was refused before any request.
    let outside = eventually(WAIT, "the refused scope's health", || async {
        let st = scope_status(&client, &ns, "shop-journey-outside").await;
        st.health.is_some().then_some(st)
    })
    .await;
    assert_eq!(
        outside.health,
        Some(ConnectorHealth::Invalid),
        "{outside:?}"
    );
    assert!(
        outside
            .message
            .as_deref()
            .is_some_and(|m| m.contains("allowedUrlPrefixes")),
        "{outside:?}"
    );
    assert!(
        status
            .received()
            .iter()
            .all(|r| r.uri.path() == "/api/v2/summary.json"),
        "the status server saw only the status page reads"
    );

    // A bad day: checkout answers 503, health is degraded, and the
    // dependency's API component has a partial outage with an incident.
    broken.store(true, Ordering::SeqCst);
    status.set_answer(
        "/api/v2/summary.json",
        Answer::fixture("statuspage/summary-outage.json").dated_now(),
    );
    let hold = passport_where(
        &client,
        &ns,
        "HOLD on the failing journeys and outage",
        |p| {
            p.decision == Decision::Hold
                && p.policy_results
                    .iter()
                    .all(|r| r.state == ResultState::Fail)
        },
    )
    .await;
    assert!(
        hold.next_actions
            .iter()
            .any(|a| a.contains("health,checkout")),
        "{:?}",
        hold.next_actions
    );

    let journey = eventually(WAIT, "the journey scope's Radar rows", || async {
        let st = scope_status(&client, &ns, "shop-journey").await;
        st.signals
            .iter()
            .any(|s| s.name == "checkout" && s.state == "fail")
            .then_some(st)
    })
    .await;
    let rows: Vec<(&str, &str)> = journey
        .signals
        .iter()
        .map(|s| (s.name.as_str(), s.state.as_str()))
        .collect();
    assert_eq!(
        rows,
        [("home", "pass"), ("health", "fail"), ("checkout", "fail")]
    );
    let checkout = &journey.signals[2];
    assert!(checkout.detail.starts_with("HTTP 503 in "), "{checkout:?}");
    assert_eq!(checkout.confidence, 100);
    assert!(
        journey.signals[1]
            .detail
            .contains(r#"/status is "degraded", expected "ok""#),
        "{:?}",
        journey.signals[1]
    );
    let dependency = scope_status(&client, &ns, "shop-dependency-status").await;
    let rows: Vec<(&str, &str, &str)> = dependency
        .signals
        .iter()
        .map(|s| (s.name.as_str(), s.state.as_str(), s.detail.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("api", "fail", "partial_outage"),
            (
                "incident: Unplanned Database Outage",
                "fail",
                "unresolved (page impact critical)"
            ),
        ]
    );

    // The Radar page shows both tables, each row with its age and confidence.
    let token = reader(&ns);
    eventually(WAIT, "the console to serve", || async {
        reqwest::get(format!("{console}/console/login"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    let radar = eventually(WAIT, "the Radar rows in the console", || async {
        let page = console_get(&console, &token, "/console/radar").await;
        (page.contains("data-check=\"checkout\"") && page.contains("partial_outage"))
            .then_some(page)
    })
    .await;
    let journeys = &radar[radar.find("id=\"journey-checks\"").expect("journey table")..];
    let journeys = &journeys[..journeys.find("</table>").expect("table end")];
    assert!(journeys.contains(&format!(
        "data-scope=\"{ns}/shop-journey\" data-check=\"checkout\""
    )));
    assert!(journeys.contains("HTTP 503 in "), "{journeys}");
    assert!(journeys.contains("(max 600s)"), "{journeys}");
    assert!(
        journeys.contains("<td class=\"confidence\">100%</td>"),
        "{journeys}"
    );
    // The refused scope is listed with its health and no confidence.
    assert!(journeys.contains(&format!("data-scope=\"{ns}/shop-journey-outside\"")));
    assert!(journeys.contains("Invalid"), "{journeys}");
    let third = &radar[radar
        .find("id=\"third-party-signals\"")
        .expect("signals table")..];
    let third = &third[..third.find("</table>").expect("table end")];
    assert!(
        third.contains("incident: Unplanned Database Outage"),
        "{third}"
    );
    assert!(third.contains("data-check=\"api\""), "{third}");

    // Scorecards: the page and the CSV say what `report metrics` says.
    scorecards_match_report(&console, &token, &ns).await;
    let page = console_get(&console, &token, "/console/metrics?window=30d").await;
    // Charts are inline SVG with a title and a description, and load nothing.
    let charts: Vec<&str> = page
        .split("<svg class=\"chart\"")
        .skip(1)
        .map(|c| &c[..c.find("</svg>").expect("svg end")])
        .collect();
    assert!(charts.len() >= 2, "two charts per scorecard");
    for chart in charts {
        assert!(chart.contains("role=\"img\""), "{chart}");
        assert!(chart.contains("<title id=\"chart-"), "{chart}");
        assert!(chart.contains("<desc id=\"chart-"), "{chart}");
        assert!(
            !chart.contains("href") && !chart.contains("url("),
            "{chart}"
        );
    }
    let promotions = &page[page
        .find("Promotions per period, shop production")
        .expect("chart title")..];
    assert!(
        promotions.contains("1 promotions, 0 of which failed"),
        "{promotions:.600}"
    );
}
