//! `sonarqube`: the quality gate of one SonarQube project (its branch or
//! pull request) and whether the analysis behind it is of the release's
//! commit.
//!
//! API (https://next.sonarqube.com/sonarqube/web_api/api/qualitygates,
//! /api/project_analyses): `GET api/qualitygates/project_status`,
//! `GET api/project_analyses/search` (newest first, one item is enough);
//! `Authorization: Bearer` with a user or project analysis token.

use serde::Deserialize;

use crate::api::{EvidenceDocument, Fact, SonarQubeScope};

use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusAnswer {
    project_status: ProjectStatus,
}

/// `projectStatus` of `api/qualitygates/project_status`.
#[derive(Debug, Deserialize)]
pub struct ProjectStatus {
    pub status: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// One quality gate condition.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub status: String,
    pub metric_key: String,
}

#[derive(Debug, Deserialize)]
struct Analyses {
    #[serde(default)]
    analyses: Vec<Analysis>,
}

/// One analysis of `api/project_analyses/search`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub project_version: Option<String>,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.sonarqube.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector sonarqube needs spec.sonarqube".into())
    })?;
    let token = rest::required_token(connectors, req, "sonarqube").await?;
    let provider = Provider::new(
        connectors,
        "SonarQube",
        &scope.url,
        "spec.sonarqube.url",
        Auth::Bearer(token),
    )?;
    let key = scope.project_key.as_str();

    let mut url = provider.url(&["api", "qualitygates", "project_status"]);
    url.query_pairs_mut().append_pair("projectKey", key);
    branch_params(&mut url, scope);
    let what = format!("reading the quality gate of SonarQube project {key}");
    let (status, _): (StatusAnswer, _) = provider.get_json(url, &what).await?;

    let mut url = provider.url(&["api", "project_analyses", "search"]);
    url.query_pairs_mut()
        .append_pair("project", key)
        .append_pair("ps", "1");
    branch_params(&mut url, scope);
    let what = format!("reading the latest analysis of SonarQube project {key}");
    let (analyses, _): (Analyses, _) = provider.get_json(url, &what).await?;

    let mut extra = vec![("project", key.to_string())];
    if let Some(b) = &scope.branch {
        extra.push(("branch", b.clone()));
    }
    if let Some(pr) = &scope.pull_request {
        extra.push(("pullRequest", pr.clone()));
    }
    Ok(rest::document(
        req,
        "sonarqube",
        &provider.shown,
        &extra,
        facts(req, &status.project_status, analyses.analyses.first()),
        None,
    ))
}

fn branch_params(url: &mut reqwest::Url, scope: &SonarQubeScope) {
    if let Some(pr) = &scope.pull_request {
        url.query_pairs_mut().append_pair("pullRequest", pr);
    } else if let Some(branch) = &scope.branch {
        url.query_pairs_mut().append_pair("branch", branch);
    }
}

/// The quality gate facts (pure).
pub fn facts(
    req: &ScopeRequest<'_>,
    status: &ProjectStatus,
    analysis: Option<&Analysis>,
) -> Vec<Fact> {
    let failed: Vec<&str> = status
        .conditions
        .iter()
        .filter(|c| c.status == "ERROR")
        .map(|c| c.metric_key.as_str())
        .collect();
    let mut facts = vec![
        rest::fact("quality_gate", status.status.clone()),
        rest::fact("quality_gate_passed", status.status == "OK"),
        rest::fact("conditions_failed", failed.len() as i64),
        rest::fact("failed_conditions", failed.join(",")),
    ];
    if let Some(a) = analysis {
        if let Some(date) = &a.date {
            facts.push(rest::fact("analysis_date", date.clone()));
        }
        if let Some(v) = &a.project_version {
            facts.push(rest::fact("project_version", v.clone()));
        }
        if let Some(revision) = &a.revision {
            facts.push(rest::fact("analysis_revision", revision.clone()));
            if let Some(sha) = req.source_sha() {
                facts.push(rest::agreement("source_sha_matches", revision, sha));
            }
        }
    }
    rest::push_agreement_summary(&mut facts);
    facts
}
