//! Every SaaS connector's real code against a local server answering with
//! the provider's documented bodies and headers (fixtures under
//! `tests/fixtures/providers/`, each naming its documentation URL): a
//! healthy read (across pages where the API paginates), 401, 403, a 429
//! whose `Retry-After` is honoured, one whose wait exceeds the budget, a
//! server that never answers, and an answer larger than the connector
//! reads. The credentials come from a real Secret in the local control
//! plane, read through `secretRef` as the operator does, and never show in
//! a message.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use releasepassport::api::{
    ConnectorHealth, ConnectorScopeSpec, EvidenceDocument, ReleaseGateSpec,
};
use releasepassport::connectors::{ConnectorError, Connectors, ScopeRequest};
use serde_json::{Value, json};
use support::replay::{Replay, Reply, Route, fixture};

const TOKEN: &str = "rp-test-4f9c2a7e91d04b5f8c3e6a1d7b2f9e05";
const APP_KEY: &str = "rp-app-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b";
const SHA: &str = "c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5e6";
const DIGEST: &str = "sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// What each connector may take: short, so the hanging server is quick to give up on.
const TIMEOUT: Duration = Duration::from_secs(3);

/// One provider under test.
struct Case {
    /// Fixture directory and connector name.
    provider: &'static str,
    /// The ConnectorScope spec, pointed at the replay server.
    spec: fn(&str) -> Value,
    /// The provider's routes on a healthy day.
    routes: fn() -> Vec<Route>,
    /// The credential header the provider expects.
    credential: (&'static str, String),
    /// The first request every read makes (where the errors are served).
    first: (&'static str, &'static str),
    /// The gate's build run, when the connector reads the run it names.
    build_run: Option<(&'static str, &'static str)>,
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn secret_ref() -> Value {
    json!({"name": "provider-credentials", "key": "token"})
}

fn gitlab() -> Case {
    Case {
        provider: "gitlab",
        spec: |url| {
            json!({"connector": "gitlab", "secretRef": secret_ref(),
            "gitlab": {"url": url, "project": "payments/payment-api", "environment": "production"}})
        },
        routes: || {
            vec![
                Route::get(
                    "/api/v4/projects/payments%2Fpayment-api/pipelines",
                    fixture("gitlab", "pipelines"),
                )
                .with_query("sha", SHA),
                Route::get(
                    "/api/v4/projects/payments%2Fpayment-api/pipelines/4711/jobs",
                    fixture("gitlab", "jobs-page-2"),
                )
                .with_query("page", "2"),
                Route::get(
                    "/api/v4/projects/payments%2Fpayment-api/pipelines/4711/jobs",
                    fixture("gitlab", "jobs-page-1"),
                ),
                Route::get(
                    "/api/v4/projects/payments%2Fpayment-api/deployments",
                    fixture("gitlab", "deployments"),
                )
                .with_query("environment", "production"),
            ]
        },
        credential: ("private-token", TOKEN.into()),
        first: ("GET", "/api/v4/projects/payments%2Fpayment-api/pipelines"),
        build_run: None,
    }
}

fn github_actions() -> Case {
    Case {
        provider: "github-actions",
        spec: |url| {
            json!({"connector": "github-actions", "secretRef": secret_ref(),
            "githubActions": {"url": url, "owner": "payments", "repository": "payment-api", "workflow": "release.yml"}})
        },
        routes: || {
            vec![
                Route::get(
                    "/repos/payments/payment-api/actions/runs/30433642",
                    fixture("github-actions", "run"),
                ),
                Route::get(
                    "/repos/payments/payment-api/actions/runs/30433642/jobs",
                    fixture("github-actions", "jobs-page-1"),
                ),
                Route::get(
                    "/repositories/1296269/actions/runs/30433642/jobs",
                    fixture("github-actions", "jobs-page-2"),
                )
                .with_query("page", "2"),
                Route::get(
                    "/repos/payments/payment-api/actions/runs/30433642/artifacts",
                    fixture("github-actions", "artifacts"),
                ),
                Route::get(
                    &format!("/repos/payments/payment-api/attestations/{DIGEST}"),
                    fixture("github-actions", "attestations"),
                ),
            ]
        },
        credential: ("authorization", format!("Bearer {TOKEN}")),
        first: ("GET", "/repos/payments/payment-api/actions/runs/30433642"),
        build_run: Some(("github-actions", "30433642")),
    }
}

fn jenkins() -> Case {
    Case {
        provider: "jenkins",
        spec: |url| {
            json!({"connector": "jenkins", "secretRef": secret_ref(),
            "jenkins": {"url": url, "job": "payments/payment-api-release", "user": "release-passport",
                        "releaseParameter": "RELEASE", "digestParameter": "IMAGE", "parameters": ["RELEASE", "DEPLOY_TOKEN"]}})
        },
        routes: || {
            let path = "/job/payments/job/payment-api-release/api/json";
            vec![
                Route::get(path, fixture("jenkins", "builds-page-2")).with_query("tree", "{25,50}"),
                Route::get(path, fixture("jenkins", "builds-page-1")).with_query("tree", "{0,25}"),
            ]
        },
        credential: ("authorization", basic("release-passport", TOKEN)),
        first: ("GET", "/job/payments/job/payment-api-release/api/json"),
        build_run: None,
    }
}

fn sonarqube() -> Case {
    Case {
        provider: "sonarqube",
        spec: |url| {
            json!({"connector": "sonarqube", "secretRef": secret_ref(),
            "sonarqube": {"url": url, "projectKey": "payments:payment-api", "branch": "main"}})
        },
        routes: || {
            vec![
                Route::get(
                    "/api/qualitygates/project_status",
                    fixture("sonarqube", "project_status"),
                )
                .with_query("projectKey", "payments:payment-api")
                .with_query("branch", "main"),
                Route::get(
                    "/api/project_analyses/search",
                    fixture("sonarqube", "analyses"),
                )
                .with_query("project", "payments:payment-api"),
            ]
        },
        credential: ("authorization", format!("Bearer {TOKEN}")),
        first: ("GET", "/api/qualitygates/project_status"),
        build_run: None,
    }
}

const SNYK_ORG: &str = "b4b5c8e1-7c8f-4f5a-9a77-1d2f3e4a5b6c";
const SNYK_PROJECT: &str = "f9a3c2d1-5b6e-4c7d-8e9f-0a1b2c3d4e5f";

fn snyk() -> Case {
    Case {
        provider: "snyk",
        spec: |url| {
            json!({"connector": "snyk", "secretRef": secret_ref(),
            "snyk": {"url": format!("{url}/rest"), "orgId": SNYK_ORG, "projectId": SNYK_PROJECT}})
        },
        routes: || {
            let path = format!("/rest/orgs/{SNYK_ORG}/issues");
            vec![
                Route::get(&path, fixture("snyk", "issues-page-2"))
                    .with_query("starting_after", "v1."),
                Route::get(&path, fixture("snyk", "issues-page-1"))
                    .with_query("scan_item.id", SNYK_PROJECT)
                    .with_query("version", "2024-10-15"),
            ]
        },
        credential: ("authorization", format!("token {TOKEN}")),
        first: (
            "GET",
            "/rest/orgs/b4b5c8e1-7c8f-4f5a-9a77-1d2f3e4a5b6c/issues",
        ),
        build_run: None,
    }
}

fn datadog() -> Case {
    Case {
        provider: "datadog",
        spec: |url| {
            json!({"connector": "datadog", "secretRef": secret_ref(),
            "datadog": {"url": url, "monitorTags": ["service:payment-api", "env:production"],
                        "applicationKeyRef": {"name": "provider-credentials", "key": "app-key"},
                        "queries": [{"name": "error_rate", "query": "sum:trace.http.request.errors{service:payment-api,env:production}.as_rate()", "unit": "/s"}]}})
        },
        routes: || {
            vec![
                Route::get("/api/v1/monitor", fixture("datadog", "monitors-page-1"))
                    .with_query("page", "1"),
                Route::get("/api/v1/monitor", fixture("datadog", "monitors-page-0"))
                    .with_query("monitor_tags", "service:payment-api,env:production"),
                Route::get("/api/v1/query", fixture("datadog", "query"))
                    .with_query("query", "trace.http.request.errors"),
            ]
        },
        credential: ("dd-api-key", TOKEN.into()),
        first: ("GET", "/api/v1/monitor"),
        build_run: None,
    }
}

fn newrelic() -> Case {
    Case {
        provider: "newrelic",
        spec: |url| {
            json!({"connector": "newrelic", "secretRef": secret_ref(),
            "newrelic": {"url": format!("{url}/graphql"), "entityGuid": "MXxBUE18QVBQTElDQVRJT058MTIzNDU2Nzg5", "accountId": 1234567,
                         "queries": [{"name": "errors_since_deploy", "query": "SELECT count(*) FROM TransactionError WHERE appName = 'payment-api' SINCE 30 minutes ago"}]}})
        },
        routes: || {
            vec![Route {
                method: "POST",
                path: "/graphql".into(),
                query: Vec::new(),
                replies: vec![fixture("newrelic", "entity"), fixture("newrelic", "nrql")],
            }]
        },
        credential: ("api-key", TOKEN.into()),
        first: ("POST", "/graphql"),
        build_run: None,
    }
}

fn launchdarkly() -> Case {
    Case {
        provider: "launchdarkly",
        spec: |url| {
            json!({"connector": "launchdarkly", "secretRef": secret_ref(),
            "launchdarkly": {"url": url, "project": "default", "flag": "new-checkout", "environment": "production"}})
        },
        routes: || {
            vec![
                Route::get(
                    "/api/v2/flags/default/new-checkout",
                    fixture("launchdarkly", "flag"),
                )
                .with_query("env", "production"),
            ]
        },
        credential: ("authorization", TOKEN.into()),
        first: ("GET", "/api/v2/flags/default/new-checkout"),
        build_run: None,
    }
}

fn loki() -> Case {
    Case {
        provider: "loki",
        spec: |url| {
            json!({"connector": "loki", "secretRef": secret_ref(),
            "loki": {"url": url, "tenant": "payments",
                     "queries": [{"name": "error_lines_10m", "query": "sum(count_over_time({app=\"payment-api\"} |= \"error\" [10m]))"}]}})
        },
        routes: || {
            vec![
                Route::get("/loki/api/v1/query", fixture("loki", "query"))
                    .with_query("query", "count_over_time"),
            ]
        },
        credential: ("authorization", format!("Bearer {TOKEN}")),
        first: ("GET", "/loki/api/v1/query"),
        build_run: None,
    }
}

fn elasticsearch() -> Case {
    Case {
        provider: "elasticsearch",
        spec: |url| {
            json!({"connector": "elasticsearch", "secretRef": secret_ref(),
            "search": {"url": url, "index": "logs-payment-api-*",
                       "queries": [{"name": "error_logs_15m", "query": "{\"bool\": {\"filter\": [{\"term\": {\"level\": \"error\"}}, {\"range\": {\"@timestamp\": {\"gte\": \"now-15m\"}}}]}}"}]}})
        },
        routes: || {
            vec![Route::post(
                "/logs-payment-api-*/_count",
                fixture("elasticsearch", "count"),
            )]
        },
        credential: ("authorization", format!("ApiKey {TOKEN}")),
        first: ("POST", "/logs-payment-api-*/_count"),
        build_run: None,
    }
}

fn all_cases() -> Vec<Case> {
    vec![
        gitlab(),
        github_actions(),
        jenkins(),
        sonarqube(),
        snyk(),
        datadog(),
        newrelic(),
        launchdarkly(),
        loki(),
        elasticsearch(),
    ]
}

/// A namespace holding the providers' credentials in a real Secret.
async fn namespace_with_credentials() -> (kube::Client, String) {
    let client = support::client().await;
    let ns = support::namespace(&client, "providers").await;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "provider-credentials"},
        "stringData": {"token": TOKEN, "app-key": APP_KEY}
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("creating the Secret");
    (client, ns)
}

fn gate(build_run: Option<(&str, &str)>) -> ReleaseGateSpec {
    let mut artifact =
        json!({"image": format!("registry.example.com/payment-api@{DIGEST}"), "sourceSha": SHA});
    if let Some((provider, id)) = build_run {
        artifact["buildRun"] = json!({"provider": provider, "id": id});
    }
    serde_json::from_value(json!({
        "service": "payment-api", "release": "v2.18.4", "environment": "production",
        "policyRef": {"name": "payment-api-production"}, "artifact": artifact
    }))
    .expect("gate")
}

async fn collect(
    client: &kube::Client,
    ns: &str,
    case: &Case,
    url: &str,
) -> Result<EvidenceDocument, ConnectorError> {
    let connectors =
        Connectors::new(client.clone(), support::config().await, TIMEOUT).expect("connectors");
    let spec: ConnectorScopeSpec =
        serde_json::from_value((case.spec)(url)).expect("ConnectorScope spec");
    let gate = gate(case.build_run);
    let req = ScopeRequest {
        namespace: ns,
        name: "payment-api-evidence",
        spec: &spec,
        service: "payment-api",
        environment: "production",
        gate: Some(&gate),
        gate_name: "payment-api-production",
        release: "v2.18.4",
        previous_release: None,
        now: jiff::Timestamp::now(),
    };
    connectors
        .collect(&req)
        .await
        .map(|doc| doc.expect("a pulling connector produces evidence"))
}

async fn serve(case: &Case) -> Replay {
    let replay = Replay::start((case.routes)()).await;
    replay.require(
        case.credential.0,
        &case.credential.1,
        fixture(case.provider, "401"),
    );
    replay
}

fn facts(doc: &EvidenceDocument) -> BTreeMap<String, Value> {
    doc.facts
        .iter()
        .filter_map(|f| f.value.clone().map(|v| (f.name.clone(), v)))
        .collect()
}

fn assert_no_credential(text: &str) {
    assert!(
        !text.contains(TOKEN) && !text.contains(APP_KEY),
        "a credential leaked: {text}"
    );
}

/// What a healthy read of each provider must say (the fixtures' content).
fn expected(provider: &str) -> Vec<(&'static str, Value)> {
    match provider {
        "gitlab" => vec![
            ("pipeline_id", json!(4711)),
            ("pipeline_status", json!("success")),
            ("jobs_total", json!(5)),  // both pages
            ("jobs_failed", json!(0)), // lint may fail
            ("deploy_job", json!("deploy-production")),
            ("deploy_job_status", json!("success")),
            ("deployment_status", json!("success")),
            ("environment", json!("production")),
            ("source_sha_matches", json!(true)),
            ("agrees_with_release", json!(true)),
        ],
        "github-actions" => vec![
            ("run_id", json!(30433642)),
            ("conclusion", json!("success")),
            ("jobs_total", json!(3)), // both pages
            ("jobs_failed", json!(1)),
            ("failed_jobs", json!("e2e")),
            ("artifacts", json!(1)),
            ("image_attestations", json!(1)),
            ("source_sha_matches", json!(true)),
            ("artifact_digest_matches", json!(true)),
            ("agrees_with_release", json!(true)),
        ],
        "jenkins" => vec![
            ("build_number", json!(174)), // on the second page
            ("result", json!("SUCCESS")),
            ("artifacts", json!(2)),
            ("parameter_RELEASE", json!("v2.18.4")),
            ("source_sha_matches", json!(true)),
            ("artifact_digest_matches", json!(true)),
            ("agrees_with_release", json!(true)),
        ],
        "sonarqube" => vec![
            ("quality_gate", json!("ERROR")),
            ("quality_gate_passed", json!(false)),
            ("conditions_failed", json!(2)),
            (
                "failed_conditions",
                json!("new_coverage,new_security_hotspots_reviewed"),
            ),
            ("source_sha_matches", json!(true)),
        ],
        "snyk" => vec![
            ("critical", json!(1)), // the ignored one is not counted
            ("high", json!(2)),
            ("medium", json!(1)),
            ("low", json!(1)),
            ("open_issues", json!(5)),
            ("fixable", json!(3)),
            ("ignored", json!(1)),
        ],
        "datadog" => vec![
            ("monitors_total", json!(102)), // both pages
            ("monitors_alert", json!(2)),
            ("monitors_warn", json!(1)),
            ("monitors_no_data", json!(1)),
            (
                "alerting_monitors",
                json!("payment-api p99 latency,payment-api 5xx rate"),
            ),
            ("error_rate", json!("0.75/s")), // newest non-null point
        ],
        "newrelic" => vec![
            ("alert_severity", json!("CRITICAL")),
            ("open_violations", json!(1)),
            ("critical_violations", json!(1)),
            ("apm_error_rate", json!(0.027)),
            ("errors_since_deploy", json!(37)),
        ],
        "launchdarkly" => vec![
            ("flag_on", json!(true)),
            ("serving", json!("rollout")),
            ("released_variation", json!("enabled")),
            ("rollout_percent", json!("25%")),
            ("rollout_in_progress", json!(true)),
        ],
        "loki" => vec![("error_lines_10m", json!(37))],
        "elasticsearch" => vec![("error_logs_15m", json!(37))],
        other => panic!("no expectations for {other}"),
    }
}

#[tokio::test]
async fn every_provider_reads_its_documented_answers_across_pages_with_the_secret_credential() {
    let (client, ns) = namespace_with_credentials().await;
    for case in all_cases() {
        let replay = serve(&case).await;
        let doc = collect(&client, &ns, &case, &replay.url)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.provider));
        assert_eq!(doc.connector, case.provider);
        assert_eq!(doc.scope["service"], "payment-api");
        assert!(
            doc.scope["source"].starts_with(&replay.url),
            "{}: {:?}",
            case.provider,
            doc.scope
        );
        let f = facts(&doc);
        for (name, value) in expected(case.provider) {
            assert_eq!(
                f.get(name),
                Some(&value),
                "{}: fact {name} in {f:?}",
                case.provider
            );
        }
        assert_no_credential(&serde_json::to_string(&doc).expect("json"));
        // The credential travelled in the provider's own header on every request.
        for r in replay.requests() {
            assert_eq!(
                r.headers
                    .get(case.credential.0)
                    .and_then(|v| v.to_str().ok()),
                Some(case.credential.1.as_str()),
                "{}: {} {}",
                case.provider,
                r.method,
                r.path
            );
        }
    }
}

#[tokio::test]
async fn refusals_map_to_forbidden_with_the_providers_explanation_and_no_credential() {
    let (client, ns) = namespace_with_credentials().await;
    for case in all_cases() {
        for status in ["401", "403"] {
            let replay = serve(&case).await;
            replay.answer(
                case.first.0,
                case.first.1,
                vec![fixture(case.provider, status)],
            );
            let err = collect(&client, &ns, &case, &replay.url)
                .await
                .expect_err(&format!("{} {status}", case.provider));
            assert_eq!(
                err.health(),
                ConnectorHealth::Forbidden,
                "{} {status}: {err}",
                case.provider
            );
            assert!(
                err.to_string().contains(&format!("HTTP {status}")),
                "{} {status}: {err}",
                case.provider
            );
            assert_no_credential(&err.to_string());
        }
    }
}

#[tokio::test]
async fn a_wrong_credential_is_refused_by_the_provider_and_reported_as_forbidden() {
    let (client, ns) = namespace_with_credentials().await;
    for case in all_cases() {
        let replay = serve(&case).await;
        replay.require(
            case.credential.0,
            "something else",
            fixture(case.provider, "401"),
        );
        let err = collect(&client, &ns, &case, &replay.url)
            .await
            .expect_err(case.provider);
        assert_eq!(
            err.health(),
            ConnectorHealth::Forbidden,
            "{}: {err}",
            case.provider
        );
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_as_retry_after_asks() {
    let (client, ns) = namespace_with_credentials().await;
    for case in all_cases() {
        let replay = serve(&case).await;
        replay.answer_first(case.first.0, case.first.1, fixture(case.provider, "429"));
        let doc = collect(&client, &ns, &case, &replay.url)
            .await
            .unwrap_or_else(|e| panic!("{} after a 429: {e}", case.provider));
        assert_eq!(doc.connector, case.provider);
        let first: Vec<_> = replay
            .requests()
            .into_iter()
            .filter(|r| r.method == case.first.0 && r.path == case.first.1)
            .collect();
        assert!(
            first.len() >= 2,
            "{}: the request was not retried",
            case.provider
        );
        // The fixtures ask for one second (Retry-After: 1, or Datadog's X-RateLimit-Reset: 1).
        assert!(
            first[1].at.duration_since(first[0].at) >= Duration::from_millis(950),
            "{}: retried before the provider's Retry-After",
            case.provider
        );
    }
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_budget_is_reported_without_waiting() {
    let (client, ns) = namespace_with_credentials().await;
    for case in all_cases() {
        let replay = serve(&case).await;
        replay.answer(
            case.first.0,
            case.first.1,
            vec![support::replay::json(
                429,
                &[("Retry-After", "3600")],
                &json!({"message": "slow down"}),
            )],
        );
        let err = collect(&client, &ns, &case, &replay.url)
            .await
            .expect_err(case.provider);
        assert_eq!(
            err.health(),
            ConnectorHealth::Unreachable,
            "{}: {err}",
            case.provider
        );
        assert!(
            err.to_string().contains("retry after 3600s"),
            "{}: {err}",
            case.provider
        );
        assert_eq!(
            replay.requests().len(),
            1,
            "{}: it waited or retried",
            case.provider
        );
    }
}

#[tokio::test]
async fn a_provider_that_never_answers_is_unreachable_within_the_timeout() {
    let (client, ns) = namespace_with_credentials().await;
    for case in all_cases() {
        let replay = serve(&case).await;
        replay.answer(case.first.0, case.first.1, vec![Reply::Hang]);
        let err = collect(&client, &ns, &case, &replay.url)
            .await
            .expect_err(case.provider);
        assert_eq!(
            err.health(),
            ConnectorHealth::Unreachable,
            "{}: {err}",
            case.provider
        );
        assert_no_credential(&err.to_string());
    }
}

#[tokio::test]
async fn an_oversized_answer_is_refused_without_reading_it_whole() {
    let (client, ns) = namespace_with_credentials().await;
    for case in all_cases() {
        let replay = serve(&case).await;
        replay.answer(case.first.0, case.first.1, vec![Reply::Huge(5 << 20)]);
        let err = collect(&client, &ns, &case, &replay.url)
            .await
            .expect_err(case.provider);
        assert_eq!(
            err.health(),
            ConnectorHealth::Invalid,
            "{}: {err}",
            case.provider
        );
        assert!(
            err.to_string().contains("larger than"),
            "{}: {err}",
            case.provider
        );
    }
}

#[tokio::test]
async fn a_missing_secret_is_credential_required() {
    let client = support::client().await;
    let ns = support::namespace(&client, "providers-nosecret").await;
    for case in all_cases() {
        let replay = serve(&case).await;
        let err = collect(&client, &ns, &case, &replay.url)
            .await
            .expect_err(case.provider);
        assert_eq!(
            err.health(),
            ConnectorHealth::CredentialRequired,
            "{}: {err}",
            case.provider
        );
        assert!(
            replay.requests().is_empty(),
            "{}: called the provider without a credential",
            case.provider
        );
    }
}

#[tokio::test]
async fn pipeline_connectors_say_when_they_disagree_with_the_release() {
    let (client, ns) = namespace_with_credentials().await;
    // GitLab: the deployment to production is of another commit.
    let case = gitlab();
    let replay = serve(&case).await;
    replay.answer(
        "GET",
        "/api/v4/projects/payments%2Fpayment-api/deployments",
        vec![support::replay::json(200, &[], &json!([{"sha": "0000000aaaaaaa", "status": "success", "environment": {"name": "production"}}]))],
    );
    let f = facts(
        &collect(&client, &ns, &case, &replay.url)
            .await
            .expect("gitlab"),
    );
    assert_eq!(f["source_sha_matches"], json!(true));
    assert_eq!(f["deployment_matches_release"], json!(false));
    assert_eq!(f["agrees_with_release"], json!(false));

    // GitHub Actions: no attestation and no artifact with the image digest.
    let case = github_actions();
    let replay = serve(&case).await;
    replay.answer(
        "GET",
        &format!("/repos/payments/payment-api/attestations/{DIGEST}"),
        vec![support::replay::json(
            404,
            &[],
            &json!({"message": "Not Found"}),
        )],
    );
    let doc = collect(&client, &ns, &case, &replay.url)
        .await
        .expect("github");
    let f = facts(&doc);
    assert_eq!(f["image_attestations"], json!(0));
    assert_eq!(f["artifact_digest_matches"], json!(false));
    assert_eq!(f["agrees_with_release"], json!(false));
    let fact = doc
        .facts
        .iter()
        .find(|f| f.name == "artifact_digest_matches")
        .expect("fact");
    assert_eq!(fact.status.as_deref(), Some("failed"));
    assert!(
        fact.threshold
            .as_deref()
            .is_some_and(|t| t.contains(DIGEST)),
        "{fact:?}"
    );
}

#[tokio::test]
async fn log_connectors_keep_counts_and_refuse_log_lines() {
    let (client, ns) = namespace_with_credentials().await;
    let case = loki();
    let replay = serve(&case).await;
    replay.answer(
        "GET",
        "/loki/api/v1/query",
        vec![fixture("loki", "streams")],
    );
    let err = collect(&client, &ns, &case, &replay.url)
        .await
        .expect_err("a log query");
    assert_eq!(err.health(), ConnectorHealth::Invalid, "{err}");
    assert!(
        !err.to_string().contains("4111111111111111"),
        "a log line leaked: {err}"
    );
    // The tenant header is sent.
    let replay = serve(&case).await;
    collect(&client, &ns, &case, &replay.url)
        .await
        .expect("loki");
    assert!(
        replay.requests().iter().all(|r| r
            .headers
            .get("x-scope-orgid")
            .and_then(|v| v.to_str().ok())
            == Some("payments"))
    );
    // Bad LogQL: Loki's own explanation.
    replay.answer("GET", "/loki/api/v1/query", vec![fixture("loki", "400")]);
    let err = collect(&client, &ns, &case, &replay.url)
        .await
        .expect_err("bad LogQL");
    assert_eq!(err.health(), ConnectorHealth::Invalid);
    assert!(err.to_string().contains("parse error"), "{err}");

    // Elasticsearch: a missing index is the scope's fault; only _count is called.
    let case = elasticsearch();
    let replay = serve(&case).await;
    replay.answer(
        "POST",
        "/logs-payment-api-*/_count",
        vec![fixture("elasticsearch", "404")],
    );
    let err = collect(&client, &ns, &case, &replay.url)
        .await
        .expect_err("no index");
    assert_eq!(err.health(), ConnectorHealth::Invalid);
    assert!(err.to_string().contains("no such index"), "{err}");
    assert!(
        replay
            .requests()
            .iter()
            .all(|r| r.path.ends_with("/_count"))
    );
    let body: Value = serde_json::from_str(&replay.requests()[0].body).expect("json body");
    assert_eq!(
        body["query"]["bool"]["filter"][0],
        json!({"term": {"level": "error"}})
    );
}
