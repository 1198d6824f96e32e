//! `github-actions`: the GitHub Actions run the gate names (its
//! `artifact.buildRun.id` of provider `github-actions`, else the newest run
//! of the release's commit), with its jobs, its artifacts and the
//! repository's attestations for the release's image digest, compared with
//! the gate's artifact. Beside this pull, CI can still push the same facts
//! through `ingest`.
//!
//! API (https://docs.github.com/en/rest/actions/workflow-runs,
//! /actions/workflow-jobs, /actions/artifacts, /users/attestations):
//! `Authorization: Bearer`, `X-GitHub-Api-Version`; lists paginate with
//! `Link`; rate limits answer 403 or 429 with `Retry-After` or
//! `X-RateLimit-Reset`.

use serde::Deserialize;

use crate::api::{EvidenceDocument, Fact, GitHubActionsScope};

use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

const DEFAULT_URL: &str = "https://api.github.com";
const API_VERSION: &str = "2022-11-28";

/// A workflow run.
#[derive(Debug, Deserialize)]
pub struct Run {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub head_sha: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Runs {
    #[serde(default)]
    workflow_runs: Vec<Run>,
}

/// A job of a run.
#[derive(Debug, Deserialize)]
pub struct Job {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub conclusion: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Jobs {
    #[serde(default)]
    jobs: Vec<Job>,
}

/// An artifact a run uploaded.
#[derive(Debug, Deserialize)]
pub struct Artifact {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub digest: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Artifacts {
    #[serde(default)]
    artifacts: Vec<Artifact>,
}

#[derive(Debug, Deserialize)]
struct Attestations {
    #[serde(default)]
    attestations: Vec<serde_json::Value>,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.github_actions.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector github-actions needs spec.githubActions".into())
    })?;
    let auth = match connectors.secret_token(req).await? {
        Some(token) => Auth::Bearer(token),
        None => Auth::None,
    };
    let provider = Provider::new(
        connectors,
        "GitHub",
        scope.url.as_deref().unwrap_or(DEFAULT_URL),
        "spec.githubActions.url",
        auth,
    )?
    .header("accept", "application/vnd.github+json")?
    .header("x-github-api-version", API_VERSION)?;
    let repo = format!("{}/{}", scope.owner, scope.repository);
    let run = find_run(&provider, req, scope).await?;
    let run_id = run.id.to_string();
    let jobs: Vec<Job> = list(&provider, scope, &run_id, "jobs", |p: Jobs| p.jobs).await?;
    let artifacts: Vec<Artifact> = list(&provider, scope, &run_id, "artifacts", |p: Artifacts| {
        p.artifacts
    })
    .await?;
    let attestations = match req.image_digest() {
        Some(digest) => Some(attestation_count(&provider, scope, digest).await?),
        None => None,
    };
    Ok(rest::document(
        req,
        "github-actions",
        &provider.shown,
        &[("repository", repo), ("run", run_id)],
        facts(req, &run, &jobs, &artifacts, attestations),
        None,
    ))
}

fn repo_segments<'s>(scope: &'s GitHubActionsScope, rest: &[&'s str]) -> Vec<&'s str> {
    let mut segments = vec!["repos", scope.owner.as_str(), scope.repository.as_str()];
    segments.extend_from_slice(rest);
    segments
}

async fn find_run(
    provider: &Provider<'_>,
    req: &ScopeRequest<'_>,
    scope: &GitHubActionsScope,
) -> Result<Run, ConnectorError> {
    let repo = format!("{}/{}", scope.owner, scope.repository);
    if let Some(id) = req
        .build_run_id("github-actions")
        .filter(|id| id.chars().all(|c| c.is_ascii_digit()))
    {
        let url = provider.url(&repo_segments(scope, &["actions", "runs", id]));
        let what = format!("reading run {id} of {repo}");
        let (run, _): (Run, _) = provider.get_json(url, &what).await?;
        if let (Some(workflow), Some(path)) = (&scope.workflow, &run.path)
            && !path.ends_with(workflow.as_str())
        {
            return Err(ConnectorError::Invalid(format!(
                "run {id} of {repo} belongs to workflow {path}, not {workflow}"
            )));
        }
        return Ok(run);
    }
    let sha = req.source_sha().ok_or_else(|| {
        ConnectorError::Invalid(
            "the github-actions connector reads the run the gate names: set artifact.buildRun (provider github-actions, id) or artifact.sourceSha".into(),
        )
    })?;
    let mut url = match &scope.workflow {
        Some(wf) => provider.url(&repo_segments(scope, &["actions", "workflows", wf, "runs"])),
        None => provider.url(&repo_segments(scope, &["actions", "runs"])),
    };
    url.query_pairs_mut()
        .append_pair("head_sha", sha)
        .append_pair("per_page", "1");
    let what = format!("listing runs of commit {sha} in {repo}");
    let (runs, _): (Runs, _) = provider.get_json(url, &what).await?;
    runs.workflow_runs.into_iter().next().ok_or_else(|| {
        ConnectorError::Invalid(format!("{repo} has no workflow run for commit {sha}"))
    })
}

/// Every item of a run's `jobs` or `artifacts` list, page by page.
async fn list<P: serde::de::DeserializeOwned, T>(
    provider: &Provider<'_>,
    scope: &GitHubActionsScope,
    run_id: &str,
    what_list: &str,
    items: impl Fn(P) -> Vec<T>,
) -> Result<Vec<T>, ConnectorError> {
    let what = format!(
        "listing {what_list} of run {run_id} in {}/{}",
        scope.owner, scope.repository
    );
    let mut url = provider.url(&repo_segments(
        scope,
        &["actions", "runs", run_id, what_list],
    ));
    url.query_pairs_mut().append_pair("per_page", "100");
    let mut all = Vec::new();
    for _ in 0..rest::MAX_PAGES {
        let (page, headers): (P, _) = provider.get_json(url.clone(), &what).await?;
        all.extend(items(page));
        match rest::next_link(&headers) {
            Some(link) => url = provider.follow(&link, &what)?,
            None => return Ok(all),
        }
    }
    Err(rest::too_many_pages(provider.name, &what))
}

/// Attestations the repository holds for the image digest (0 when GitHub
/// answers 404: none).
async fn attestation_count(
    provider: &Provider<'_>,
    scope: &GitHubActionsScope,
    digest: &str,
) -> Result<i64, ConnectorError> {
    let mut url = provider.url(&repo_segments(scope, &["attestations", digest]));
    url.query_pairs_mut().append_pair("per_page", "100");
    let what = format!(
        "listing attestations of {digest} in {}/{}",
        scope.owner, scope.repository
    );
    Ok(provider
        .get_json_opt::<Attestations>(url, &what)
        .await?
        .map(|a| a.attestations.len() as i64)
        .unwrap_or(0))
}

/// The facts of a run (pure).
pub fn facts(
    req: &ScopeRequest<'_>,
    run: &Run,
    jobs: &[Job],
    artifacts: &[Artifact],
    attestations: Option<i64>,
) -> Vec<Fact> {
    let failed: Vec<&str> = jobs
        .iter()
        .filter(|j| {
            matches!(
                j.conclusion.as_deref(),
                Some("failure" | "timed_out" | "cancelled" | "startup_failure")
            )
        })
        .map(|j| j.name.as_str())
        .collect();
    let mut facts = vec![
        rest::fact("run_id", run.id),
        rest::fact("status", run.status.clone().unwrap_or_default()),
        // A run in progress has no conclusion yet.
        rest::fact(
            "conclusion",
            run.conclusion.clone().unwrap_or_else(|| "pending".into()),
        ),
        rest::fact("head_sha", run.head_sha.clone()),
        rest::fact("jobs_total", jobs.len() as i64),
        rest::fact("jobs_failed", failed.len() as i64),
        rest::fact("failed_jobs", failed.join(",")),
        rest::fact("artifacts", artifacts.len() as i64),
        rest::fact(
            "artifact_names",
            artifacts
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    if let Some(name) = &run.name {
        facts.push(rest::fact("workflow", name.clone()));
    }
    if let Some(url) = &run.html_url {
        facts.push(rest::fact("run_url", url.clone()));
    }
    if let Some(sha) = req.source_sha() {
        facts.push(rest::agreement("source_sha_matches", &run.head_sha, sha));
    }
    if let (Some(count), Some(digest)) = (attestations, req.image_digest()) {
        facts.push(rest::fact("image_attestations", count));
        // The image digest agrees when the repository attested it, or a run
        // artifact carries it.
        let observed = if count > 0 {
            digest.to_string()
        } else {
            artifacts
                .iter()
                .filter_map(|a| a.digest.as_deref())
                .find(|d| rest::same_revision(d, digest))
                .unwrap_or("no attestation or artifact with this digest")
                .to_string()
        };
        facts.push(rest::agreement(
            "artifact_digest_matches",
            &observed,
            digest,
        ));
    }
    rest::push_agreement_summary(&mut facts);
    facts
}
