//! `gitlab`: the GitLab CI pipeline of the release's commit in one project
//! (status, jobs, deploy job) and the project's latest deployment to the
//! scope's environment, compared with the gate's artifact.
//!
//! API (https://docs.gitlab.com/api/pipelines/, /api/jobs/,
//! /api/deployments/): `PRIVATE-TOKEN` header; lists paginate with
//! `Link` / `X-Next-Page`; 429 carries `Retry-After`.

use serde::Deserialize;

use crate::api::{EvidenceDocument, Fact};

use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

const DEFAULT_URL: &str = "https://gitlab.com";
const PAGE_SIZE: &str = "100";

/// A pipeline, as `GET /projects/:id/pipelines[/:pipeline_id]` answers.
#[derive(Debug, Deserialize)]
pub struct Pipeline {
    pub id: i64,
    #[serde(default)]
    pub sha: String,
    #[serde(default, rename = "ref")]
    pub ref_name: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub web_url: Option<String>,
}

/// A job of a pipeline.
#[derive(Debug, Deserialize)]
pub struct Job {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub allow_failure: bool,
}

/// A deployment, as `GET /projects/:id/deployments` answers.
#[derive(Debug, Deserialize)]
pub struct Deployment {
    #[serde(default)]
    pub sha: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub environment: Option<Environment>,
}

#[derive(Debug, Deserialize)]
pub struct Environment {
    #[serde(default)]
    pub name: String,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req
        .spec
        .gitlab
        .as_ref()
        .ok_or_else(|| ConnectorError::Invalid("connector gitlab needs spec.gitlab".into()))?;
    let token = rest::required_token(connectors, req, "gitlab").await?;
    let provider = Provider::new(
        connectors,
        "GitLab",
        scope.url.as_deref().unwrap_or(DEFAULT_URL),
        "spec.gitlab.url",
        Auth::Header("private-token", token),
    )?;
    let project = scope.project.as_str();
    let pipeline = find_pipeline(&provider, req, project).await?;
    let jobs = pipeline_jobs(&provider, project, pipeline.id).await?;
    let deployment = match &scope.environment {
        Some(env) => latest_deployment(&provider, project, env).await?,
        None => None,
    };
    let facts = facts(
        req,
        &pipeline,
        &jobs,
        deployment.as_ref(),
        scope.deploy_job.as_deref(),
    );
    Ok(rest::document(
        req,
        "gitlab",
        &provider.shown,
        &[
            ("project", project.to_string()),
            ("pipeline", pipeline.id.to_string()),
        ],
        facts,
        None,
    ))
}

/// The pipeline the gate names (`artifact.buildRun.id` of provider
/// `gitlab-ci`), else the newest pipeline of the release's commit.
async fn find_pipeline(
    provider: &Provider<'_>,
    req: &ScopeRequest<'_>,
    project: &str,
) -> Result<Pipeline, ConnectorError> {
    let run_id = req
        .build_run_id("gitlab-ci")
        .or_else(|| req.build_run_id("gitlab"))
        .filter(|id| id.chars().all(|c| c.is_ascii_digit()));
    if let Some(id) = run_id {
        let url = provider.url(&["api", "v4", "projects", project, "pipelines", id]);
        let what = format!("reading pipeline {id} of GitLab project {project}");
        return provider.get_json(url, &what).await.map(|(p, _)| p);
    }
    let sha = req.source_sha().ok_or_else(|| {
        ConnectorError::Invalid(
            "the gitlab connector reads the pipeline of the release's commit: the ReleaseGate names no artifact.sourceSha (or a gitlab-ci artifact.buildRun.id)".into(),
        )
    })?;
    let mut url = provider.url(&["api", "v4", "projects", project, "pipelines"]);
    url.query_pairs_mut()
        .append_pair("sha", sha)
        .append_pair("order_by", "id")
        .append_pair("sort", "desc")
        .append_pair("per_page", "1");
    let what = format!("listing pipelines of commit {sha} in GitLab project {project}");
    let (pipelines, _): (Vec<Pipeline>, _) = provider.get_json(url, &what).await?;
    pipelines.into_iter().next().ok_or_else(|| {
        ConnectorError::Invalid(format!(
            "GitLab project {project} has no pipeline for commit {sha} (is artifact.sourceSha the commit the pipeline ran on?)"
        ))
    })
}

/// Every job of the pipeline, page by page.
async fn pipeline_jobs(
    provider: &Provider<'_>,
    project: &str,
    pipeline: i64,
) -> Result<Vec<Job>, ConnectorError> {
    let what = format!("listing jobs of pipeline {pipeline} in GitLab project {project}");
    let mut url = provider.url(&[
        "api",
        "v4",
        "projects",
        project,
        "pipelines",
        &pipeline.to_string(),
        "jobs",
    ]);
    url.query_pairs_mut().append_pair("per_page", PAGE_SIZE);
    let mut jobs = Vec::new();
    for _ in 0..rest::MAX_PAGES {
        let (page, headers): (Vec<Job>, _) = provider.get_json(url.clone(), &what).await?;
        jobs.extend(page);
        let next_page = headers
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        match (rest::next_link(&headers), next_page) {
            (Some(link), _) => url = provider.follow(&link, &what)?,
            (None, Some(page)) => {
                let kept: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != "page")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                url.query_pairs_mut()
                    .clear()
                    .extend_pairs(kept)
                    .append_pair("page", &page);
            }
            (None, None) => return Ok(jobs),
        }
    }
    Err(rest::too_many_pages(provider.name, &what))
}

async fn latest_deployment(
    provider: &Provider<'_>,
    project: &str,
    environment: &str,
) -> Result<Option<Deployment>, ConnectorError> {
    let mut url = provider.url(&["api", "v4", "projects", project, "deployments"]);
    url.query_pairs_mut()
        .append_pair("environment", environment)
        .append_pair("order_by", "id")
        .append_pair("sort", "desc")
        .append_pair("per_page", "1");
    let what = format!("reading the latest {environment} deployment of GitLab project {project}");
    let (deployments, _): (Vec<Deployment>, _) = provider.get_json(url, &what).await?;
    Ok(deployments.into_iter().next())
}

/// The facts of a pipeline, its jobs and the latest deployment (pure).
pub fn facts(
    req: &ScopeRequest<'_>,
    pipeline: &Pipeline,
    jobs: &[Job],
    deployment: Option<&Deployment>,
    deploy_job: Option<&str>,
) -> Vec<Fact> {
    let failed: Vec<&str> = jobs
        .iter()
        .filter(|j| j.status == "failed" && !j.allow_failure)
        .map(|j| j.name.as_str())
        .collect();
    let mut facts = vec![
        rest::fact("pipeline_id", pipeline.id),
        rest::fact("pipeline_status", pipeline.status.clone()),
        rest::fact("pipeline_sha", pipeline.sha.clone()),
        rest::fact("jobs_total", jobs.len() as i64),
        rest::fact("jobs_failed", failed.len() as i64),
        rest::fact("failed_jobs", failed.join(",")),
    ];
    if let Some(r) = &pipeline.ref_name {
        facts.push(rest::fact("pipeline_ref", r.clone()));
    }
    if let Some(s) = &pipeline.source {
        facts.push(rest::fact("pipeline_source", s.clone()));
    }
    if let Some(url) = &pipeline.web_url {
        facts.push(rest::fact("pipeline_url", url.clone()));
    }
    if let Some(sha) = req.source_sha() {
        facts.push(rest::agreement("source_sha_matches", &pipeline.sha, sha));
    }
    let deploy = jobs.iter().rfind(|j| match deploy_job {
        Some(name) => j.name == name,
        None => j.stage == "deploy",
    });
    if let Some(job) = deploy {
        facts.push(rest::fact("deploy_job", job.name.clone()));
        facts.push(rest::fact("deploy_job_status", job.status.clone()));
    }
    if let Some(d) = deployment {
        facts.push(rest::fact("deployment_status", d.status.clone()));
        facts.push(rest::fact("deployment_sha", d.sha.clone()));
        if let Some(env) = &d.environment {
            facts.push(rest::fact("environment", env.name.clone()));
        }
        if let Some(sha) = req.source_sha() {
            facts.push(rest::agreement("deployment_matches_release", &d.sha, sha));
        }
    }
    rest::push_agreement_summary(&mut facts);
    facts
}
