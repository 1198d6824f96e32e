//! `pagerduty`: active incidents of the scoped services, read from the
//! PagerDuty REST API v2 (`GET /services/{id}`, `GET /incidents` with
//! `service_ids[]`, `statuses[]=triggered&statuses[]=acknowledged`,
//! classic `limit`/`offset`/`more` pagination), authenticated with
//! `Authorization: Token token=<key>`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::incidents::{Incident, facts};
use super::saas::{self, MAX_PAGES, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};
use crate::api::{EvidenceDocument, Freshness};
use crate::passport::redact;

const DEFAULT_URL: &str = "https://api.pagerduty.com";
const PAGE: usize = 100;

const PROVIDER: Provider = Provider {
    name: "PagerDuty",
    error_message,
    effective_status: saas::as_sent,
};

/// `{"error": {"message": "...", "code": 2006, "errors": ["..."]}}`
fn error_message(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let mut text = error.get("message")?.as_str()?.to_string();
    if let Some(code) = error.get("code").and_then(Value::as_i64) {
        text.push_str(&format!(" (code {code})"));
    }
    let details: Vec<&str> = error
        .get("errors")
        .and_then(Value::as_array)
        .map(|e| e.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !details.is_empty() {
        text.push_str(": ");
        text.push_str(&details.join("; "));
    }
    Some(text)
}

#[derive(Deserialize)]
struct Page {
    incidents: Vec<RawIncident>,
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize)]
struct RawIncident {
    id: String,
    #[serde(default)]
    incident_number: Option<u64>,
    status: String,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    priority: Option<Reference>,
    #[serde(default)]
    service: Option<Reference>,
    #[serde(default)]
    created_at: Option<jiff::Timestamp>,
    #[serde(default)]
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    summary: Option<String>,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.pagerduty.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector pagerduty needs spec.pagerduty.serviceIds".into())
    })?;
    if scope.service_ids.is_empty() {
        return Err(ConnectorError::Invalid(
            "spec.pagerduty.serviceIds names no service: the scope is never organisation-wide"
                .into(),
        ));
    }
    let base = saas::base_url(scope.url.as_deref(), DEFAULT_URL)?;
    let token = saas::required_token(connectors, req, "PagerDuty").await?;
    let auth = saas::sensitive(&format!("Token token={token}"))?;
    let get = |url: String| {
        connectors
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/vnd.pagerduty+json;version=2",
            )
    };
    let mut dates = Vec::new();

    // Each service must exist and be readable: a typo is Invalid, not "no incidents".
    for id in &scope.service_ids {
        let answer = connectors
            .call(
                req,
                &PROVIDER,
                &format!("service {id}"),
                get(format!("{base}/services/{}", saas::path_segment(id))),
            )
            .await?;
        dates.push(answer.date);
    }

    let mut incidents = Vec::new();
    for page in 0..MAX_PAGES {
        let mut query: Vec<(&str, String)> = scope
            .service_ids
            .iter()
            .map(|id| ("service_ids[]", id.clone()))
            .collect();
        query.extend([
            ("statuses[]", "triggered".to_string()),
            ("statuses[]", "acknowledged".to_string()),
            ("limit", PAGE.to_string()),
            ("offset", (page * PAGE).to_string()),
            ("total", "false".to_string()),
            ("time_zone", "UTC".to_string()),
        ]);
        let answer = connectors
            .call(
                req,
                &PROVIDER,
                "active incidents",
                get(format!("{base}/incidents")).query(&query),
            )
            .await?;
        dates.push(answer.date);
        let page: Page = serde_json::from_value(answer.body).map_err(|e| {
            ConnectorError::Invalid(format!(
                "PagerDuty incidents answer is not the documented shape: {e}"
            ))
        })?;
        incidents.extend(page.incidents.into_iter().map(incident));
        if !page.more {
            let observed_at = saas::observed(&dates, req.now);
            return Ok(document(
                req,
                &base,
                &scope.service_ids,
                &incidents,
                observed_at,
            ));
        }
    }
    Err(ConnectorError::Invalid(format!(
        "more than {} active incidents on the scoped services: narrow serviceIds",
        MAX_PAGES * PAGE
    )))
}

fn incident(raw: RawIncident) -> Incident {
    let priority = raw.priority.and_then(|p| p.summary.or(p.id));
    let number = raw
        .incident_number
        .map(|n| format!("#{n} "))
        .unwrap_or_default();
    let service = raw
        .service
        .and_then(|s| s.summary.or(s.id))
        .map(|s| format!(", service {s}"))
        .unwrap_or_default();
    let url = raw.html_url.map(|u| format!(" {u}")).unwrap_or_default();
    let state = priority
        .as_deref()
        .map(|p| format!("{p}, {}", raw.status))
        .unwrap_or_else(|| raw.status.clone());
    Incident {
        id: raw.id.clone(),
        priority,
        high_urgency: raw.urgency.as_deref() == Some("high"),
        since: raw.created_at,
        name: format!(
            "PagerDuty incident {number}{} ({state}{service}){url}",
            raw.id
        ),
    }
}

fn document(
    req: &ScopeRequest<'_>,
    base: &str,
    services: &[String],
    incidents: &[Incident],
    observed_at: jiff::Timestamp,
) -> EvidenceDocument {
    let mut scope = req.evidence_scope();
    scope.insert("pagerdutyServices".into(), services.join(","));
    scope.insert("source".into(), redact::redact_str(base).into_owned());
    let mut facts = facts(incidents);
    facts.push(super::incidents::fact(
        "active_high_urgency_incidents",
        json!(incidents.iter().filter(|i| i.high_urgency).count()),
    ));
    EvidenceDocument {
        connector: "pagerduty".into(),
        scope,
        freshness: Freshness {
            observed_at,
            max_age_seconds: Some(req.max_age_seconds()),
        },
        facts,
    }
}
