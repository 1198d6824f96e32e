//! `opsgenie`: open alerts of the scoped team, read from the Opsgenie
//! Alert API v2 (`GET /v2/teams/{name}?identifierType=name` to check the
//! team exists, then `GET /v2/alerts?query=status:open AND teams:"<team>"`,
//! `limit`/`offset` pages while `paging.next` is set), authenticated with
//! `Authorization: GenieKey <key>`. The facts are the shared incident facts
//! ([`super::incidents`]), so a Policy's incident rules and its
//! `incidentFreeze` read Opsgenie as they read PagerDuty.

use serde::Deserialize;
use serde_json::{Value, json};

use super::incidents::{Incident, fact, facts};
use super::saas::{self, MAX_PAGES, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};
use crate::api::{EvidenceDocument, Freshness};
use crate::passport::redact;

const DEFAULT_URL: &str = "https://api.opsgenie.com";
const PAGE: usize = 100;

const PROVIDER: Provider = Provider {
    name: "Opsgenie",
    error_message,
    effective_status: saas::as_sent,
};

/// `{"message": "...", "took": 0.0, "requestId": "..."}`
fn error_message(body: &Value) -> Option<String> {
    body.get("message")?.as_str().map(String::from)
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Alert>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    id: String,
    #[serde(default)]
    tiny_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    acknowledged: bool,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    created_at: Option<jiff::Timestamp>,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.opsgenie.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector opsgenie needs spec.opsgenie.team".into())
    })?;
    let team = scope.team.trim();
    if team.is_empty() || team.contains(['"', '\\']) {
        return Err(ConnectorError::Invalid(format!(
            "opsgenie.team {team:?} is not a team name"
        )));
    }
    let base = saas::base_url(scope.url.as_deref(), DEFAULT_URL)?;
    let token = saas::required_token(connectors, req, "Opsgenie").await?;
    let auth = saas::sensitive(&format!("GenieKey {token}"))?;
    let get = |url: String| {
        connectors
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth.clone())
    };
    let mut dates = Vec::new();
    let answer = connectors
        .call(
            req,
            &PROVIDER,
            &format!("team {team}"),
            get(format!("{base}/v2/teams/{}", saas::path_segment(team)))
                .query(&[("identifierType", "name")]),
        )
        .await?;
    dates.push(answer.date);

    let query = format!("status:open AND teams:\"{team}\"");
    let mut alerts = Vec::new();
    for page in 0..MAX_PAGES {
        let answer = connectors
            .call(
                req,
                &PROVIDER,
                "open alerts",
                get(format!("{base}/v2/alerts")).query(&[
                    ("query", query.clone()),
                    ("limit", PAGE.to_string()),
                    ("offset", (page * PAGE).to_string()),
                    ("sort", "createdAt".into()),
                    ("order", "desc".into()),
                ]),
            )
            .await?;
        dates.push(answer.date);
        let page: Page = serde_json::from_value(answer.body).map_err(|e| {
            ConnectorError::Invalid(format!(
                "Opsgenie alerts answer is not the documented shape: {e}"
            ))
        })?;
        let more = page.paging.and_then(|p| p.next).is_some() && page.data.len() == PAGE;
        alerts.extend(page.data);
        if !more {
            return Ok(document(
                req,
                &base,
                team,
                &alerts,
                saas::observed(&dates, req.now),
            ));
        }
    }
    Err(ConnectorError::Invalid(format!(
        "more than {} open alerts for team {team}: the scope is too broad",
        MAX_PAGES * PAGE
    )))
}

fn incident(alert: &Alert) -> Incident {
    let number = alert
        .tiny_id
        .as_deref()
        .map(|t| format!("#{t} "))
        .unwrap_or_default();
    let mut state = vec![];
    if let Some(p) = &alert.priority {
        state.push(p.clone());
    }
    state.push(alert.status.clone().unwrap_or_else(|| "open".into()));
    if alert.acknowledged {
        state.push("acknowledged".into());
    }
    Incident {
        id: alert.id.clone(),
        priority: alert.priority.clone(),
        high_urgency: matches!(alert.priority.as_deref(), Some("P1" | "P2")),
        since: alert.created_at,
        name: format!("Opsgenie alert {number}{} ({})", alert.id, state.join(", ")),
    }
}

fn document(
    req: &ScopeRequest<'_>,
    base: &str,
    team: &str,
    alerts: &[Alert],
    observed_at: jiff::Timestamp,
) -> EvidenceDocument {
    let incidents: Vec<Incident> = alerts.iter().map(incident).collect();
    let mut scope = req.evidence_scope();
    scope.insert("opsgenieTeam".into(), team.to_string());
    scope.insert("source".into(), redact::redact_str(base).into_owned());
    let mut facts = facts(&incidents);
    facts.push(fact(
        "unacknowledged_alerts",
        json!(alerts.iter().filter(|a| !a.acknowledged).count()),
    ));
    EvidenceDocument {
        connector: "opsgenie".into(),
        scope,
        freshness: Freshness {
            observed_at,
            max_age_seconds: Some(req.max_age_seconds()),
        },
        facts,
    }
}
