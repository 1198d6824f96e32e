//! `servicenow`: the change request of a release, read from the ServiceNow
//! Table API (`GET /api/now/table/change_request` with `sysparm_query`,
//! `sysparm_display_value=all`, `sysparm_limit`/`sysparm_offset` pages
//! counted by `X-Total-Count`): its state, approval and planned window,
//! and whether now is inside the approved change window. Basic auth with
//! `user` and the Secret's password, else the Secret's value as an OAuth
//! bearer token.

use base64::Engine as _;
use serde_json::{Value, json};

use super::incidents::fact;
use super::saas::{self, MAX_PAGES, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};
use crate::api::{EvidenceDocument, Freshness};
use crate::passport::redact;

const PAGE: usize = 50;
const FIELDS: &str = "sys_id,number,state,approval,start_date,end_date,sys_updated_on";

const PROVIDER: Provider = Provider {
    name: "ServiceNow",
    error_message,
    effective_status: saas::as_sent,
};

/// `{"error": {"message": "...", "detail": "..."}, "status": "failure"}`
fn error_message(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let message = error.get("message")?.as_str()?;
    Some(match error.get("detail").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => format!("{message}: {d}"),
        _ => message.to_string(),
    })
}

/// A field of a `sysparm_display_value=all` record: (value, display value).
fn field<'a>(record: &'a Value, name: &str) -> (Option<&'a str>, Option<&'a str>) {
    let f = record.get(name);
    let value = f
        .and_then(|f| f.get("value").or(Some(f)))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let display = f
        .and_then(|f| f.get("display_value"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    (value, display)
}

/// ServiceNow's internal date-time values are UTC `2026-05-03 09:00:00`.
fn glide_time(text: &str) -> Option<jiff::Timestamp> {
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", text)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// A gate value inside an encoded query: `^` would start a new condition.
fn encoded_query_value(value: &str) -> String {
    value.replace('^', "")
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.servicenow.as_ref().ok_or_else(|| {
        ConnectorError::Invalid(
            "connector servicenow needs spec.servicenow (url, number or query)".into(),
        )
    })?;
    let selector = match (&scope.number, &scope.query) {
        (Some(number), _) => {
            let number = req.fill(number, encoded_query_value);
            if !number.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ConnectorError::Invalid(format!(
                    "servicenow.number {number:?} is not a change number"
                )));
            }
            format!("number={number}")
        }
        (None, Some(query)) => req.fill(query, encoded_query_value),
        (None, None) => {
            return Err(ConnectorError::Invalid(
                "servicenow needs number or query".into(),
            ));
        }
    };
    let base = saas::base_url(Some(&scope.url), "")?;
    let secret = saas::required_token(connectors, req, "ServiceNow").await?;
    let auth = match &scope.user {
        Some(user) => {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
            redact::mask_secret(&basic);
            saas::sensitive(&format!("Basic {basic}"))?
        }
        None => saas::sensitive(&format!("Bearer {secret}"))?,
    };
    let sysparm_query = format!("{selector}^ORDERBYDESCsys_updated_on");
    let mut dates = Vec::new();
    let mut records: Vec<Value> = Vec::new();
    let mut total = 0usize;
    for page in 0..MAX_PAGES {
        let request = connectors
            .http
            .get(format!("{base}/api/now/table/change_request"))
            .header(reqwest::header::AUTHORIZATION, auth.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .query(&[
                ("sysparm_query", sysparm_query.clone()),
                ("sysparm_fields", FIELDS.into()),
                ("sysparm_display_value", "all".into()),
                ("sysparm_exclude_reference_link", "true".into()),
                ("sysparm_limit", PAGE.to_string()),
                ("sysparm_offset", (page * PAGE).to_string()),
            ]);
        let answer = connectors
            .call(req, &PROVIDER, "change requests", request)
            .await?;
        dates.push(answer.date);
        total = answer
            .headers
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let result = answer
            .body
            .get("result")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| {
                ConnectorError::Invalid(
                    "ServiceNow answer has no result list: not the Table API".into(),
                )
            })?;
        let got = result.len();
        records.extend(result);
        if got < PAGE || records.len() >= total {
            let observed_at = saas::observed(&dates, req.now);
            return Ok(document(
                req,
                &base,
                &records,
                total.max(records.len()),
                observed_at,
            ));
        }
    }
    Err(ConnectorError::Invalid(format!(
        "{total} change requests match: narrow servicenow.query"
    )))
}

fn document(
    req: &ScopeRequest<'_>,
    base: &str,
    records: &[Value],
    total: usize,
    observed_at: jiff::Timestamp,
) -> EvidenceDocument {
    let mut facts = vec![
        fact("change_requests", json!(total)),
        fact("change_linked", json!(!records.is_empty())),
    ];
    let mut approved = false;
    if let Some(change) = records.first() {
        let (number, _) = field(change, "number");
        let (state, state_label) = field(change, "state");
        let (approval, _) = field(change, "approval");
        approved = approval == Some("approved");
        facts.push(fact("change_number", json!(number.unwrap_or_default())));
        facts.push(fact(
            "change_state",
            json!(state_label.or(state).unwrap_or_default()),
        ));
        facts.push(fact(
            "change_approval",
            json!(approval.unwrap_or("not requested")),
        ));
        facts.push(fact("change_approved", json!(approved)));
        let start = field(change, "start_date").0.and_then(glide_time);
        let end = field(change, "end_date").0.and_then(glide_time);
        if let Some(s) = start {
            facts.push(fact("change_window_start", json!(s)));
        }
        if let Some(e) = end {
            facts.push(fact("change_window_end", json!(e)));
        }
        let inside = matches!((start, end), (Some(s), Some(e)) if s <= req.now && req.now <= e);
        facts.push(fact("inside_change_window", json!(inside)));
        facts.push(fact(
            "inside_approved_change_window",
            json!(inside && approved),
        ));
    }
    facts.push(fact(
        "change_approval_linked",
        json!(!records.is_empty() && approved),
    ));
    let mut scope = req.evidence_scope();
    scope.insert("source".into(), redact::redact_str(base).into_owned());
    EvidenceDocument {
        connector: "servicenow".into(),
        scope,
        freshness: Freshness {
            observed_at,
            max_age_seconds: Some(req.max_age_seconds()),
        },
        facts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glide_times_are_utc() {
        assert_eq!(
            glide_time("2026-05-03 09:00:00"),
            Some("2026-05-03T09:00:00Z".parse().unwrap())
        );
        assert_eq!(glide_time(""), None);
    }

    #[test]
    fn gate_values_cannot_add_conditions() {
        assert_eq!(encoded_query_value("v1^ORactive=true"), "v1ORactive=true");
    }
}
