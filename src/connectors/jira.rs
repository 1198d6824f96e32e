//! `jira`: the change ticket linked to a release, its status and approval,
//! read from Jira Cloud (REST API v3: `GET /rest/api/3/issue/{key}`, the
//! enhanced JQL search `GET /rest/api/3/search/jql` with `nextPageToken`)
//! or Jira Data Center (REST API v2: `/rest/api/2/issue/{key}`,
//! `/rest/api/2/search` with `startAt`/`total`), and, with
//! `serviceManagement`, its Jira Service Management approvals
//! (`GET /rest/servicedeskapi/request/{key}/approval`, `start`/`isLastPage`).
//! Cloud API tokens go as Basic `user:token`, Data Center personal access
//! tokens as Bearer. The search is always limited to the scope's project.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::incidents::fact;
use super::saas::{self, MAX_PAGES, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};
use crate::api::{EvidenceDocument, Fact, Freshness, JiraDeployment, JiraScope};
use crate::passport::redact;

const PAGE: usize = 50;
const FIELDS: &str = "status,updated,fixVersions";

const PROVIDER: Provider = Provider {
    name: "Jira",
    error_message,
    effective_status: saas::as_sent,
};

/// `{"errorMessages": ["..."], "errors": {"field": "..."}}`; JSM adds `{"errorMessage": "..."}`.
fn error_message(body: &Value) -> Option<String> {
    let mut parts: Vec<String> = body
        .get("errorMessages")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if let Some(errors) = body.get("errors").and_then(Value::as_object) {
        parts.extend(
            errors
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}: {v}"))),
        );
    }
    if let Some(m) = body.get("errorMessage").and_then(Value::as_str) {
        parts.push(m.to_string());
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[derive(Deserialize)]
struct Issue {
    key: String,
    #[serde(default)]
    fields: IssueFields,
}

#[derive(Deserialize, Default)]
struct IssueFields {
    #[serde(default)]
    status: Option<Named>,
    #[serde(default)]
    updated: Option<String>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

/// Jira's timestamps: `2026-05-03T09:10:00.000+0000`.
fn jira_time(text: &str) -> Option<jiff::Timestamp> {
    jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", text)
        .and_then(|t| t.to_timestamp())
        .ok()
        .or_else(|| text.parse().ok())
}

/// A value inside a double-quoted JQL string.
fn jql_quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

struct Client<'a> {
    connectors: &'a Connectors,
    req: &'a ScopeRequest<'a>,
    base: String,
    api: &'static str,
    auth: reqwest::header::HeaderValue,
    dates: Vec<Option<jiff::Timestamp>>,
}

impl Client<'_> {
    async fn get(
        &mut self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<saas::Answer, ConnectorError> {
        let request = self
            .connectors
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let answer = self
            .connectors
            .call(self.req, &PROVIDER, what, request)
            .await?;
        self.dates.push(answer.date);
        Ok(answer)
    }

    /// The tickets the scope selects, newest first.
    async fn tickets(&mut self, scope: &JiraScope) -> Result<Vec<Issue>, ConnectorError> {
        if let Some(key) = &scope.issue_key {
            let key = self.req.fill(key, str::to_string);
            let valid = key.split_once('-').is_some_and(|(p, n)| {
                p == scope.project && n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty()
            });
            if !valid {
                return Err(ConnectorError::Invalid(format!(
                    "jira.issueKey {key:?} is not an issue of project {}",
                    scope.project
                )));
            }
            let answer = self
                .get(
                    &format!("issue {key}"),
                    &format!("/rest/api/{}/issue/{key}", self.api),
                    &[("fields", FIELDS.into())],
                )
                .await?;
            return Ok(vec![parse(answer.body, "issue")?]);
        }
        let selector = match (&scope.jql, &scope.fix_version) {
            (Some(jql), _) => format!("({})", self.req.fill(jql, jql_quoted)),
            (None, fix) => format!(
                "fixVersion = \"{}\"",
                self.req
                    .fill(fix.as_deref().unwrap_or("{release}"), jql_quoted)
            ),
        };
        let jql = format!(
            "project = \"{}\" AND {selector} ORDER BY updated DESC",
            scope.project
        );
        self.search(&jql).await
    }

    async fn search(&mut self, jql: &str) -> Result<Vec<Issue>, ConnectorError> {
        let cloud = self.api == "3";
        let mut issues = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("jql", jql.to_string()),
                ("fields", FIELDS.to_string()),
                ("maxResults", PAGE.to_string()),
            ];
            let path = if cloud {
                if let Some(t) = &token {
                    query.push(("nextPageToken", t.clone()));
                }
                "/rest/api/3/search/jql"
            } else {
                query.push(("startAt", issues.len().to_string()));
                "/rest/api/2/search"
            };
            let body = self
                .get("the change ticket search", path, &query)
                .await?
                .body;
            let page: Vec<Issue> =
                parse(body.get("issues").cloned().unwrap_or(Value::Null), "search")?;
            let got = page.len();
            issues.extend(page);
            let done = if cloud {
                token = body
                    .get("nextPageToken")
                    .and_then(Value::as_str)
                    .map(String::from);
                body.get("isLast")
                    .and_then(Value::as_bool)
                    .unwrap_or(token.is_none())
                    || token.is_none()
            } else {
                let total = body.get("total").and_then(Value::as_u64).unwrap_or(0) as usize;
                got == 0 || issues.len() >= total
            };
            if done {
                return Ok(issues);
            }
        }
        Err(ConnectorError::Invalid(format!(
            "more than {} change tickets match: narrow jira.jql",
            MAX_PAGES * PAGE
        )))
    }

    /// Jira Service Management approvals of a request: (final decisions,
    /// approvers who approved).
    async fn approvals(&mut self, key: &str) -> Result<(Vec<String>, Vec<String>), ConnectorError> {
        let mut decisions = Vec::new();
        let mut approvers = Vec::new();
        let mut start = 0usize;
        for _ in 0..MAX_PAGES {
            let body = self
                .get(
                    &format!("the approvals of {key}"),
                    &format!("/rest/servicedeskapi/request/{key}/approval"),
                    &[("start", start.to_string()), ("limit", PAGE.to_string())],
                )
                .await?
                .body;
            let values = body
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    ConnectorError::Invalid(
                        "Jira Service Management approvals answer has no values".into(),
                    )
                })?;
            for approval in values {
                decisions.push(
                    approval
                        .get("finalDecision")
                        .and_then(Value::as_str)
                        .unwrap_or("pending")
                        .to_string(),
                );
                for a in approval
                    .get("approvers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if a.get("approverDecision").and_then(Value::as_str) == Some("approved")
                        && let Some(name) =
                            a.pointer("/approver/displayName").and_then(Value::as_str)
                    {
                        approvers.push(name.to_string());
                    }
                }
            }
            start += values.len();
            if body
                .get("isLastPage")
                .and_then(Value::as_bool)
                .unwrap_or(true)
                || values.is_empty()
            {
                return Ok((decisions, approvers));
            }
        }
        Err(ConnectorError::Invalid(format!(
            "more than {} approvals on {key}",
            MAX_PAGES * PAGE
        )))
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, ConnectorError> {
    serde_json::from_value(value).map_err(|e| {
        ConnectorError::Invalid(format!(
            "Jira {what} answer is not the documented shape: {e}"
        ))
    })
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.jira.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector jira needs spec.jira (url, project)".into())
    })?;
    let base = saas::base_url(Some(&scope.url), "")?;
    let token = saas::required_token(connectors, req, "Jira").await?;
    let auth = match &scope.user {
        Some(user) => {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
            redact::mask_secret(&basic);
            saas::sensitive(&format!("Basic {basic}"))?
        }
        None => saas::sensitive(&format!("Bearer {token}"))?,
    };
    let api = match scope.deployment.unwrap_or(JiraDeployment::Cloud) {
        JiraDeployment::Cloud => "3",
        JiraDeployment::DataCenter => "2",
    };
    let mut client = Client {
        connectors,
        req,
        base: base.clone(),
        api,
        auth,
        dates: Vec::new(),
    };
    let tickets = client.tickets(scope).await?;
    let mut facts = vec![
        fact("change_tickets", json!(tickets.len())),
        fact("change_linked", json!(!tickets.is_empty())),
    ];
    let mut approved = false;
    if let Some(ticket) = tickets.first() {
        let status = ticket
            .fields
            .status
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        facts.push(fact("change_key", json!(ticket.key)));
        facts.push(fact("change_status", json!(status)));
        if let Some(updated) = ticket.fields.updated.as_deref().and_then(jira_time) {
            facts.push(fact("change_updated_at", json!(updated)));
        }
        if scope.service_management {
            let (decisions, approvers) = client.approvals(&ticket.key).await?;
            approved = !decisions.is_empty() && decisions.iter().all(|d| d == "approved");
            let state = if approved {
                "approved"
            } else if decisions.iter().any(|d| d == "declined") {
                "declined"
            } else if decisions.is_empty() {
                "none"
            } else {
                "pending"
            };
            facts.push(fact("change_approval_state", json!(state)));
            facts.push(fact("change_approvers", json!(approvers.join(", "))));
        } else {
            let approved_statuses: Vec<&str> = if scope.approved_statuses.is_empty() {
                vec!["Approved"]
            } else {
                scope.approved_statuses.iter().map(String::as_str).collect()
            };
            approved = approved_statuses
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&status));
        }
        facts.push(fact("change_approved", json!(approved)));
    }
    facts.push(fact(
        "change_approval_linked",
        json!(!tickets.is_empty() && approved),
    ));
    Ok(document(
        req,
        &base,
        scope,
        facts,
        saas::observed(&client.dates, req.now),
    ))
}

fn document(
    req: &ScopeRequest<'_>,
    base: &str,
    scope: &JiraScope,
    facts: Vec<Fact>,
    observed_at: jiff::Timestamp,
) -> EvidenceDocument {
    let mut evidence_scope = req.evidence_scope();
    evidence_scope.insert("jiraProject".into(), scope.project.clone());
    evidence_scope.insert("source".into(), redact::redact_str(base).into_owned());
    EvidenceDocument {
        connector: "jira".into(),
        scope: evidence_scope,
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
    fn jira_timestamps() {
        assert_eq!(
            jira_time("2026-05-03T09:10:00.000+0000"),
            Some("2026-05-03T09:10:00Z".parse().unwrap())
        );
        assert_eq!(
            jira_time("2026-05-03T11:10:00.000+0200"),
            Some("2026-05-03T09:10:00Z".parse().unwrap())
        );
    }

    #[test]
    fn jql_values_cannot_close_their_quotes() {
        assert_eq!(
            jql_quoted(r#"v1" OR project = "X"#),
            r#"v1\" OR project = \"X"#
        );
    }
}
