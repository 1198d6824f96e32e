//! `jenkins`: the build of one Jenkins job that belongs to the release
//! (result, artifacts, allowlisted parameters), compared with the gate's
//! artifact.
//!
//! API (https://www.jenkins.io/doc/book/using/remote-access-api/): the
//! job's `api/json` with a `tree` filter and a `{from,to}` range for
//! paging through builds; HTTP basic authentication with a user and an API
//! token. The build is the one the gate names (`artifact.buildRun.id` of
//! provider `jenkins`), else the newest whose release parameter equals the
//! gate's release or whose Git revision is the release's commit.

use serde::Deserialize;
use serde_json::Value;

use crate::api::{EvidenceDocument, Fact, JenkinsScope};

use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

/// Builds asked for per request.
const PAGE_SIZE: usize = 25;

const BUILD_TREE: &str = "number,url,result,building,actions[parameters[name,value],lastBuiltRevision[SHA1]],artifacts[fileName,relativePath]";

#[derive(Debug, Deserialize)]
struct JobPage {
    #[serde(default)]
    builds: Vec<Build>,
}

/// A build, as the job's `api/json` answers with [`BUILD_TREE`].
#[derive(Debug, Deserialize, Default)]
pub struct Build {
    pub number: i64,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub building: bool,
    #[serde(default)]
    pub actions: Vec<Value>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    #[serde(default)]
    pub file_name: String,
}

impl Build {
    /// A build parameter's value (`ParametersAction`), as text.
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.actions
            .iter()
            .filter_map(|a| a.get("parameters").and_then(Value::as_array))
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|p| p.get("value"))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    }

    /// The Git revision built (`BuildData.lastBuiltRevision.SHA1`).
    pub fn revision(&self) -> Option<&str> {
        self.actions
            .iter()
            .find_map(|a| a.get("lastBuiltRevision")?.get("SHA1")?.as_str())
    }
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope =
        req.spec.jenkins.as_ref().ok_or_else(|| {
            ConnectorError::Invalid("connector jenkins needs spec.jenkins".into())
        })?;
    let token = rest::required_token(connectors, req, "jenkins").await?;
    let user = scope.user.clone().ok_or_else(|| {
        ConnectorError::Invalid(
            "connector jenkins authenticates with a user and an API token: set spec.jenkins.user to the user the token in secretRef belongs to".into(),
        )
    })?;
    let provider = Provider::new(
        connectors,
        "Jenkins",
        &scope.url,
        "spec.jenkins.url",
        Auth::Basic(user, token),
    )?;
    let build = find_build(&provider, req, scope).await?;
    Ok(rest::document(
        req,
        "jenkins",
        &provider.shown,
        &[
            ("job", scope.job.clone()),
            ("build", build.number.to_string()),
        ],
        facts(req, scope, &build),
        None,
    ))
}

/// `job/a/job/b/api/json`, every folder of the job path as a `job` segment.
fn job_segments(job: &str) -> Vec<&str> {
    job.split('/')
        .filter(|s| !s.is_empty())
        .flat_map(|s| ["job", s])
        .collect()
}

/// Which build belongs to the release.
enum Wanted<'a> {
    Number(i64),
    Release(&'a str, &'a str),
    Revision(&'a str),
}

impl Wanted<'_> {
    fn matches(&self, build: &Build) -> bool {
        match self {
            Wanted::Number(n) => build.number == *n,
            Wanted::Release(param, release) => build.parameter(param).as_deref() == Some(*release),
            Wanted::Revision(sha) => build
                .revision()
                .is_some_and(|r| rest::same_revision(r, sha)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Wanted::Number(n) => format!("build #{n}"),
            Wanted::Release(param, release) => format!("a build with parameter {param}={release}"),
            Wanted::Revision(sha) => format!("a build of commit {sha}"),
        }
    }
}

async fn find_build(
    provider: &Provider<'_>,
    req: &ScopeRequest<'_>,
    scope: &JenkinsScope,
) -> Result<Build, ConnectorError> {
    let wanted = if let Some(n) = req.build_run_id("jenkins").and_then(|id| id.parse().ok()) {
        Wanted::Number(n)
    } else if let (Some(param), Some(release)) = (&scope.release_parameter, req.release()) {
        Wanted::Release(param, release)
    } else if let Some(sha) = req.source_sha() {
        Wanted::Revision(sha)
    } else {
        return Err(ConnectorError::Invalid(
            "the jenkins connector needs a way to find the release's build: a jenkins artifact.buildRun.id, spec.jenkins.releaseParameter, or artifact.sourceSha".into(),
        ));
    };
    let mut segments = job_segments(&scope.job);
    segments.extend(["api", "json"]);
    let what = format!(
        "looking for {} of Jenkins job {}",
        wanted.describe(),
        scope.job
    );
    for page in 0..rest::MAX_PAGES {
        let (from, to) = (page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
        let mut url = provider.url(&segments);
        url.query_pairs_mut()
            .append_pair("tree", &format!("builds[{BUILD_TREE}]{{{from},{to}}}"));
        let (job, _): (JobPage, _) = provider.get_json(url, &what).await?;
        let last_page = job.builds.len() < PAGE_SIZE;
        if let Some(build) = job.builds.into_iter().find(|b| wanted.matches(b)) {
            return Ok(build);
        }
        if last_page {
            return Err(ConnectorError::Invalid(format!(
                "Jenkins job {} has no {}",
                scope.job,
                wanted.describe()
            )));
        }
    }
    Err(rest::too_many_pages(provider.name, &what))
}

/// The facts of the release's build (pure).
pub fn facts(req: &ScopeRequest<'_>, scope: &JenkinsScope, build: &Build) -> Vec<Fact> {
    let result = match (&build.result, build.building) {
        (_, true) | (None, _) => "IN_PROGRESS".to_string(),
        (Some(r), false) => r.clone(),
    };
    let names: Vec<&str> = build
        .artifacts
        .iter()
        .map(|a| a.file_name.as_str())
        .collect();
    let mut facts = vec![
        rest::fact("build_number", build.number),
        rest::fact("result", result),
        rest::fact("building", build.building),
        rest::fact("artifacts", names.len() as i64),
        rest::fact("artifact_names", names.join(",")),
    ];
    if let Some(url) = &build.url {
        facts.push(rest::fact("build_url", url.clone()));
    }
    for name in &scope.parameters {
        if let Some(value) = build.parameter(name) {
            facts.push(rest::fact(&format!("parameter_{name}"), value));
        }
    }
    if let Some(revision) = build.revision() {
        facts.push(rest::fact("source_sha", revision.to_string()));
        if let Some(sha) = req.source_sha() {
            facts.push(rest::agreement("source_sha_matches", revision, sha));
        }
    }
    if let (Some(param), Some(digest)) = (&scope.digest_parameter, req.image_digest()) {
        let observed = build.parameter(param).unwrap_or_default();
        let observed = observed.rsplit('@').next().unwrap_or_default().to_string();
        facts.push(rest::agreement(
            "artifact_digest_matches",
            &observed,
            digest,
        ));
    }
    rest::push_agreement_summary(&mut facts);
    facts
}
