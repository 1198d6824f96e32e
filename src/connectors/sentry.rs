//! `sentry`: the health of a release in one Sentry project and environment,
//! read from the Sentry web API with a bearer auth token:
//! `GET /api/0/projects/{org}/{project}/` (the scope exists; its numeric id),
//! `GET /api/0/projects/{org}/{project}/issues/?query=is:unresolved
//! firstRelease:"<release>"` (new issues since the release, `Link` cursor
//! pages) and `GET /api/0/organizations/{org}/sessions/` grouped by release
//! for this release and the previous one (crash-free sessions and users, and
//! an error spike against the previous release).

use serde_json::{Value, json};

use super::incidents::fact;
use super::saas::{self, MAX_PAGES, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};
use crate::api::{EvidenceDocument, Fact, Freshness};
use crate::passport::redact;

const DEFAULT_URL: &str = "https://sentry.io";
const PAGE: usize = 100;
/// Below this crash rate a release is never a spike (0.1%).
const SPIKE_FLOOR: f64 = 0.001;

const PROVIDER: Provider = Provider {
    name: "Sentry",
    error_message,
    effective_status: saas::as_sent,
};

/// `{"detail": "..."}`
fn error_message(body: &Value) -> Option<String> {
    body.get("detail")?.as_str().map(String::from)
}

/// A rate as a percentage: `0.99125` → `99.125%`.
fn percent(rate: f64) -> String {
    let text = format!("{:.3}", rate * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// A release value inside a double-quoted Sentry search term.
fn quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Per-release session totals.
#[derive(Clone, Copy, Debug, Default)]
struct Health {
    sessions: f64,
    crash_free_sessions: Option<f64>,
    crash_free_users: Option<f64>,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.sentry.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector sentry needs spec.sentry (organization, project)".into())
    })?;
    let base = saas::base_url(scope.url.as_deref(), DEFAULT_URL)?;
    let token = saas::required_token(connectors, req, "Sentry").await?;
    let auth = saas::sensitive(&format!("Bearer {token}"))?;
    let org = saas::path_segment(&scope.organization);
    let project = saas::path_segment(&scope.project);
    let environment = scope
        .environment
        .clone()
        .unwrap_or_else(|| req.environment.to_string());
    let period = scope.stats_period.clone().unwrap_or_else(|| "24h".into());
    let get = |url: &str| {
        connectors
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth.clone())
    };
    let mut dates = Vec::new();

    // 1. The project: it exists, and its id scopes the sessions query.
    let answer = connectors
        .call(
            req,
            &PROVIDER,
            &format!("project {}/{}", scope.organization, scope.project),
            get(&format!("{base}/api/0/projects/{org}/{project}/")),
        )
        .await?;
    dates.push(answer.date);
    let project_id = answer
        .body
        .get("id")
        .and_then(|v| {
            v.as_str()
                .map(String::from)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
        .ok_or_else(|| ConnectorError::Invalid("Sentry project answer has no id".into()))?;

    // 2. Unresolved issues first seen in this release.
    let mut new_issues = 0usize;
    let mut next = Some(
        reqwest::Url::parse_with_params(
            &format!("{base}/api/0/projects/{org}/{project}/issues/"),
            &[
                (
                    "query",
                    format!("is:unresolved firstRelease:\"{}\"", quoted(req.release)),
                ),
                ("environment", environment.clone()),
                ("statsPeriod", period.clone()),
                ("limit", PAGE.to_string()),
            ],
        )
        .map_err(|e| ConnectorError::Invalid(e.to_string()))?,
    );
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(ConnectorError::Invalid(format!(
                "more than {} new issues in release {}: the project is too noisy for this scope",
                MAX_PAGES * PAGE,
                req.release
            )));
        }
        let answer = connectors
            .call(
                req,
                &PROVIDER,
                "new issues of the release",
                get(url.as_str()),
            )
            .await?;
        dates.push(answer.date);
        new_issues +=
            answer.body.as_array().map(Vec::len).ok_or_else(|| {
                ConnectorError::Invalid("Sentry issues answer is not a list".into())
            })?;
        if let Some(link) = saas::link_next(&answer.headers) {
            next = Some(saas::same_origin(&base, &link)?);
        }
    }

    // 3. Session health of this release and the previous one.
    let mut releases = vec![req.release];
    releases.extend(req.previous_release.filter(|p| *p != req.release));
    let query = releases
        .iter()
        .map(|r| format!("release:\"{}\"", quoted(r)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let answer = connectors
        .call(
            req,
            &PROVIDER,
            "release health",
            get(&format!("{base}/api/0/organizations/{org}/sessions/")).query(&[
                ("project", project_id.as_str()),
                ("environment", environment.as_str()),
                ("statsPeriod", period.as_str()),
                ("interval", "1d"),
                ("field", "sum(session)"),
                ("field", "crash_free_rate(session)"),
                ("field", "crash_free_rate(user)"),
                ("groupBy", "release"),
                ("query", query.as_str()),
            ]),
        )
        .await?;
    dates.push(answer.date);
    // The end of the sessions window is Sentry's own timestamp of the data.
    dates.push(
        answer
            .body
            .get("end")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.min(req.now)),
    );
    let groups = answer
        .body
        .get("groups")
        .and_then(Value::as_array)
        .ok_or_else(|| ConnectorError::Invalid("Sentry sessions answer has no groups".into()))?;
    let health_of = |release: &str| -> Option<Health> {
        let group = groups
            .iter()
            .find(|g| g.pointer("/by/release").and_then(Value::as_str) == Some(release))?;
        let totals = group.get("totals")?;
        Some(Health {
            sessions: totals
                .get("sum(session)")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            crash_free_sessions: totals
                .get("crash_free_rate(session)")
                .and_then(Value::as_f64),
            crash_free_users: totals.get("crash_free_rate(user)").and_then(Value::as_f64),
        })
    };
    let current = health_of(req.release).unwrap_or_default();
    let previous = req
        .previous_release
        .and_then(|p| health_of(p).map(|h| (p, h)));
    let facts = facts(
        new_issues,
        current,
        previous,
        f64::from(scope.spike_factor.unwrap_or(2)),
    );
    let mut evidence_scope = req.evidence_scope();
    evidence_scope.insert(
        "sentryProject".into(),
        format!("{}/{}", scope.organization, scope.project),
    );
    evidence_scope.insert("sentryEnvironment".into(), environment);
    evidence_scope.insert("source".into(), redact::redact_str(&base).into_owned());
    Ok(EvidenceDocument {
        connector: "sentry".into(),
        scope: evidence_scope,
        freshness: Freshness {
            observed_at: saas::observed(&dates, req.now),
            max_age_seconds: Some(req.max_age_seconds()),
        },
        facts,
    })
}

fn facts(
    new_issues: usize,
    current: Health,
    previous: Option<(&str, Health)>,
    spike_factor: f64,
) -> Vec<Fact> {
    let mut out = vec![
        fact("new_issues", json!(new_issues)),
        fact("sessions", json!(current.sessions.round() as u64)),
    ];
    if let Some(r) = current.crash_free_sessions {
        out.push(fact("crash_free_sessions", json!(percent(r))));
    }
    if let Some(r) = current.crash_free_users {
        out.push(fact("crash_free_users", json!(percent(r))));
    }
    let crash_rate = current.crash_free_sessions.map(|r| 1.0 - r);
    if let Some((release, prev)) = previous {
        out.push(fact("previous_release", json!(release)));
        if let Some(r) = prev.crash_free_sessions {
            out.push(fact("previous_crash_free_sessions", json!(percent(r))));
        }
        if let (Some(now), Some(before)) = (crash_rate, prev.crash_free_sessions.map(|r| 1.0 - r)) {
            let ratio = now / before.max(SPIKE_FLOOR);
            out.push(fact(
                "crash_rate_vs_previous",
                json!((ratio * 100.0).round() / 100.0),
            ));
            out.push(fact(
                "error_spike",
                json!(now >= SPIKE_FLOOR && ratio >= spike_factor),
            ));
        }
    }
    if !out.iter().any(|f| f.name == "error_spike") {
        // Without a previous release to compare with, no spike can be shown.
        out.push(fact("error_spike", json!(false)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_like_sentry_shows_them() {
        assert_eq!(percent(0.99125), "99.125%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.5), "50%");
    }

    #[test]
    fn a_spike_is_a_crash_rate_well_above_the_previous_release() {
        let h = |cfs: f64| Health {
            sessions: 1000.0,
            crash_free_sessions: Some(cfs),
            crash_free_users: None,
        };
        let spike = |now: f64, before: f64| {
            facts(0, h(now), Some(("v1", h(before))), 2.0)
                .into_iter()
                .find(|f| f.name == "error_spike")
                .and_then(|f| f.value)
        };
        assert_eq!(spike(0.97, 0.995), Some(json!(true)));
        assert_eq!(spike(0.994, 0.995), Some(json!(false)));
        // Tiny rates are noise, not a spike.
        assert_eq!(spike(0.9995, 0.99999), Some(json!(false)));
    }
}
