//! `snyk`: open issues of one Snyk project by severity.
//!
//! API (https://docs.snyk.io/snyk-api/reference/issues, REST version
//! 2024-10-15): `GET /orgs/{org_id}/issues?scan_item.type=project&scan_item.id=...`,
//! JSON:API pages linked by `links.next` (relative to the REST base);
//! `Authorization: token <API token>`; 429 with `Retry-After`.

use serde::Deserialize;
use serde_json::Value;

use crate::api::{EvidenceDocument, Fact};

use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

const DEFAULT_URL: &str = "https://api.snyk.io/rest";
/// The REST API version the connector was written against.
pub const API_VERSION: &str = "2024-10-15";

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<Issue>,
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Debug, Deserialize)]
struct Links {
    #[serde(default)]
    next: Option<String>,
}

/// One issue (JSON:API resource).
#[derive(Debug, Deserialize)]
pub struct Issue {
    pub attributes: Attributes,
}

/// What the connector reads of an issue.
#[derive(Debug, Deserialize)]
pub struct Attributes {
    #[serde(default)]
    pub effective_severity_level: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub ignored: bool,
    #[serde(default)]
    pub coordinates: Vec<Value>,
}

impl Attributes {
    fn fixable(&self) -> bool {
        self.coordinates.iter().any(|c| {
            [
                "is_fixable_snyk",
                "is_upgradeable",
                "is_patchable",
                "is_fixable_upstream",
            ]
            .iter()
            .any(|k| c.get(k) == Some(&Value::Bool(true)))
        })
    }
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req
        .spec
        .snyk
        .as_ref()
        .ok_or_else(|| ConnectorError::Invalid("connector snyk needs spec.snyk".into()))?;
    let token = rest::required_token(connectors, req, "snyk").await?;
    let base = scope.url.as_deref().unwrap_or(DEFAULT_URL);
    let provider = Provider::new(
        connectors,
        "Snyk",
        base,
        "spec.snyk.url",
        Auth::Scheme("token", token),
    )?
    .header("accept", "application/vnd.api+json")?;
    let what = format!("listing issues of Snyk project {}", scope.project_id);
    let mut url = provider.url(&["orgs", &scope.org_id, "issues"]);
    url.query_pairs_mut()
        .append_pair("version", API_VERSION)
        .append_pair("scan_item.type", "project")
        .append_pair("scan_item.id", &scope.project_id)
        .append_pair("status", "open")
        .append_pair("limit", "100");
    let base_path = rest::base_url(base, "spec.snyk.url")?
        .path()
        .trim_end_matches('/')
        .to_string();
    let mut issues = Vec::new();
    let mut finished = false;
    for _ in 0..rest::MAX_PAGES {
        let (page, _): (Page, _) = provider.get_json(url.clone(), &what).await?;
        issues.extend(page.data);
        match page.links.and_then(|l| l.next) {
            // `links.next` is relative to the REST base (`/orgs/...`).
            Some(next) if next.starts_with('/') && !next.starts_with(&format!("{base_path}/")) => {
                url = provider.follow(&format!("{base_path}{next}"), &what)?
            }
            Some(next) => url = provider.follow(&next, &what)?,
            None => {
                finished = true;
                break;
            }
        }
    }
    if !finished {
        return Err(rest::too_many_pages(provider.name, &what));
    }
    Ok(rest::document(
        req,
        "snyk",
        &provider.shown,
        &[
            ("org", scope.org_id.clone()),
            ("project", scope.project_id.clone()),
        ],
        facts(&issues),
        None,
    ))
}

/// Counts of open, not ignored issues by severity (pure).
pub fn facts(issues: &[Issue]) -> Vec<Fact> {
    let open: Vec<&Attributes> = issues
        .iter()
        .map(|i| &i.attributes)
        .filter(|a| a.status != "resolved")
        .collect();
    let counted: Vec<&&Attributes> = open.iter().filter(|a| !a.ignored).collect();
    let count = |level: &str| {
        counted
            .iter()
            .filter(|a| a.effective_severity_level == level)
            .count() as i64
    };
    vec![
        rest::fact("critical", count("critical")),
        rest::fact("high", count("high")),
        rest::fact("medium", count("medium")),
        rest::fact("low", count("low")),
        rest::fact("open_issues", counted.len() as i64),
        rest::fact(
            "fixable",
            counted.iter().filter(|a| a.fixable()).count() as i64,
        ),
        rest::fact("ignored", open.iter().filter(|a| a.ignored).count() as i64),
    ]
}
