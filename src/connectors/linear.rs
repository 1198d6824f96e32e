//! `linear`: the state of a release's Linear issues, read from the Linear
//! GraphQL API (`POST /graphql`): one issue by identifier, or the issues of a
//! team carrying the release's label (`issues(filter:, first:, after:)`
//! pages by `pageInfo.endCursor`, with the team checked in the same query).
//! Personal API keys (`lin_api_...`) are sent as `Authorization: <key>`,
//! OAuth tokens as Bearer. Linear reports failures as GraphQL errors whose
//! `extensions.type` ("authentication error", "forbidden", "ratelimited",
//! "invalid input") decides the health, whatever the HTTP status.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::incidents::fact;
use super::saas::{self, MAX_PAGES, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};
use crate::api::{EvidenceDocument, Freshness};
use crate::passport::redact;

const DEFAULT_URL: &str = "https://api.linear.app/graphql";
const PAGE: usize = 50;

const PROVIDER: Provider = Provider {
    name: "Linear",
    error_message,
    effective_status,
};

/// `{"errors": [{"message": "...", "extensions": {"type": "...", "userPresentableMessage": "..."}}]}`
fn error_message(body: &Value) -> Option<String> {
    let first = body.get("errors")?.as_array()?.first()?;
    first
        .pointer("/extensions/userPresentableMessage")
        .or_else(|| first.get("message"))
        .and_then(Value::as_str)
        .map(String::from)
}

fn effective_status(status: StatusCode, body: &Value) -> StatusCode {
    let kind = body
        .pointer("/errors/0/extensions/type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "authentication error" => StatusCode::UNAUTHORIZED,
        "forbidden" | "feature not accessible" => StatusCode::FORBIDDEN,
        "ratelimited" => StatusCode::TOO_MANY_REQUESTS,
        "invalid input" | "user error" if status.is_success() => StatusCode::BAD_REQUEST,
        "internal error" | "lock timeout" => StatusCode::INTERNAL_SERVER_ERROR,
        _ if status.is_success() => StatusCode::BAD_REQUEST,
        _ => status,
    }
}

const ISSUE_QUERY: &str = "query ReleaseIssue($id: String!) { issue(id: $id) { identifier updatedAt state { name type } } }";

const LABEL_QUERY: &str = "query ReleaseIssues($team: String!, $filter: IssueFilter, $after: String) { \
teams(filter: { key: { eq: $team } }) { nodes { id key } } \
issues(filter: $filter, first: 50, after: $after, orderBy: updatedAt) { \
nodes { identifier updatedAt state { name type } } pageInfo { hasNextPage endCursor } } }";

struct Client<'a> {
    connectors: &'a Connectors,
    req: &'a ScopeRequest<'a>,
    url: String,
    auth: reqwest::header::HeaderValue,
    dates: Vec<Option<jiff::Timestamp>>,
}

impl Client<'_> {
    /// One GraphQL request; GraphQL errors in a 200 fail like HTTP errors.
    async fn query(
        &mut self,
        what: &str,
        query: &str,
        variables: Value,
    ) -> Result<Value, ConnectorError> {
        let request = self
            .connectors
            .http
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .json(&json!({"query": query, "variables": variables}));
        let answer = self
            .connectors
            .call(self.req, &PROVIDER, what, request)
            .await?;
        self.dates.push(answer.date);
        if answer
            .body
            .get("errors")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
        {
            let status = effective_status(StatusCode::OK, &answer.body);
            let detail = saas::clean_detail(&error_message(&answer.body).unwrap_or_default());
            return Err(self.connectors.failure(
                self.req,
                &PROVIDER,
                what,
                status,
                &answer.headers,
                &detail,
            ));
        }
        answer
            .body
            .get("data")
            .cloned()
            .ok_or_else(|| ConnectorError::Invalid(format!("Linear answered {what} without data")))
    }
}

/// (identifier, state name, state type, updatedAt) of an issue node.
fn issue_of(node: &Value) -> Option<(String, String, String, Option<jiff::Timestamp>)> {
    Some((
        node.get("identifier")?.as_str()?.to_string(),
        node.pointer("/state/name")?.as_str()?.to_string(),
        node.pointer("/state/type")?.as_str()?.to_string(),
        node.get("updatedAt")
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok()),
    ))
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.linear.as_ref().ok_or_else(|| {
        ConnectorError::Invalid(
            "connector linear needs spec.linear (issue, or team and label)".into(),
        )
    })?;
    let url = saas::base_url(scope.url.as_deref(), DEFAULT_URL)?;
    let token = saas::required_token(connectors, req, "Linear").await?;
    let auth = if token.starts_with("lin_api_") {
        saas::sensitive(&token)?
    } else {
        saas::sensitive(&format!("Bearer {token}"))?
    };
    let mut client = Client {
        connectors,
        req,
        url: url.clone(),
        auth,
        dates: Vec::new(),
    };
    let mut issues = Vec::new();
    if let Some(id) = &scope.issue {
        let id = req.fill(id, str::to_string);
        let data = client
            .query(&format!("issue {id}"), ISSUE_QUERY, json!({"id": id}))
            .await?;
        let node = data.get("issue").filter(|n| !n.is_null()).ok_or_else(|| {
            ConnectorError::Invalid(format!("Linear: issue {id} not found; check the scope"))
        })?;
        issues.push(issue_of(node).ok_or_else(|| {
            ConnectorError::Invalid("Linear issue answer is not the documented shape".into())
        })?);
    } else {
        let (Some(team), Some(label)) = (&scope.team, &scope.label) else {
            return Err(ConnectorError::Invalid(
                "linear needs issue, or team and label".into(),
            ));
        };
        let label = req.fill(label, str::to_string);
        let filter = json!({"team": {"key": {"eq": team}}, "labels": {"name": {"eq": label}}});
        let mut after: Option<String> = None;
        let mut done = false;
        for _ in 0..MAX_PAGES {
            let data = client
                .query(
                    &format!("issues of team {team} labelled {label}"),
                    LABEL_QUERY,
                    json!({"team": team, "filter": filter, "after": after}),
                )
                .await?;
            let teams = data.pointer("/teams/nodes").and_then(Value::as_array);
            if teams.is_none_or(|t| t.is_empty()) {
                return Err(ConnectorError::Invalid(format!(
                    "Linear: team {team} not found; check the scope"
                )));
            }
            let page = data.get("issues").ok_or_else(|| {
                ConnectorError::Invalid("Linear issues answer is not the documented shape".into())
            })?;
            for node in page
                .get("nodes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                issues.extend(issue_of(node));
            }
            after = page
                .pointer("/pageInfo/endCursor")
                .and_then(Value::as_str)
                .map(String::from);
            let more = page
                .pointer("/pageInfo/hasNextPage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !more || after.is_none() {
                done = true;
                break;
            }
        }
        if !done {
            return Err(ConnectorError::Invalid(format!(
                "more than {} issues carry label {label}: narrow the scope",
                MAX_PAGES * PAGE
            )));
        }
    }
    Ok(document(
        req,
        &url,
        &issues,
        saas::observed(&client.dates, req.now),
    ))
}

fn document(
    req: &ScopeRequest<'_>,
    url: &str,
    issues: &[(String, String, String, Option<jiff::Timestamp>)],
    observed_at: jiff::Timestamp,
) -> EvidenceDocument {
    let done = issues
        .iter()
        .filter(|(_, _, kind, _)| matches!(kind.as_str(), "completed" | "canceled"))
        .count();
    let states: Vec<String> = issues
        .iter()
        .take(20)
        .map(|(id, state, _, _)| format!("{id}: {state}"))
        .collect();
    let mut facts = vec![
        fact("release_issues", json!(issues.len())),
        fact("release_issues_done", json!(done)),
        fact("release_issues_open", json!(issues.len() - done)),
        fact(
            "release_issues_all_done",
            json!(!issues.is_empty() && done == issues.len()),
        ),
        fact("release_issue_states", json!(states.join(", "))),
    ];
    if let [(_, state, kind, _)] = issues {
        facts.push(fact("issue_state", json!(state)));
        facts.push(fact("issue_state_type", json!(kind)));
    }
    let mut scope = req.evidence_scope();
    scope.insert("source".into(), redact::redact_str(url).into_owned());
    EvidenceDocument {
        connector: "linear".into(),
        scope,
        freshness: Freshness {
            observed_at,
            max_age_seconds: Some(req.max_age_seconds()),
        },
        facts,
    }
}
