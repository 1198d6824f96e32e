//! `elasticsearch` / `opensearch`: allowlisted named **count** queries on
//! one index pattern. Only `_count` is called, so documents (log lines)
//! are never read: a fact is a number.
//!
//! API (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-count,
//! https://docs.opensearch.org/latest/api-reference/search-apis/count/):
//! `POST /{index}/_count` with `{"query": ...}` answers
//! `{"count": N, "_shards": {...}}`; errors carry `error.reason`; an
//! overloaded node answers 429.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{EvidenceDocument, SearchAuthScheme};

use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

/// `_count`'s answer.
#[derive(Debug, Deserialize)]
pub struct CountAnswer {
    pub count: i64,
    #[serde(default, rename = "_shards")]
    pub shards: Option<Shards>,
}

#[derive(Debug, Deserialize)]
pub struct Shards {
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub failed: i64,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let connector = req.spec.connector.as_str();
    let scope = req.spec.search.as_ref().ok_or_else(|| {
        ConnectorError::Invalid(format!("connector {connector} needs spec.search"))
    })?;
    if scope.queries.is_empty() {
        return Err(ConnectorError::Invalid(
            "spec.search.queries is empty: name at least one query".into(),
        ));
    }
    let auth = match (
        connectors.secret_token(req).await?,
        scope.auth_scheme.unwrap_or_default(),
    ) {
        (None, _) => Auth::None,
        (Some(token), SearchAuthScheme::ApiKey) => Auth::Scheme("ApiKey", token),
        (Some(token), SearchAuthScheme::Bearer) => Auth::Bearer(token),
        (Some(token), SearchAuthScheme::Basic) => {
            let (user, password) = token.split_once(':').ok_or_else(|| {
                ConnectorError::Invalid(
                    "authScheme Basic: the Secret key in secretRef must hold user:password".into(),
                )
            })?;
            Auth::Basic(user.to_string(), password.to_string())
        }
    };
    let name = if connector == "opensearch" {
        "OpenSearch"
    } else {
        "Elasticsearch"
    };
    let provider = Provider::new(connectors, name, &scope.url, "spec.search.url", auth)?;
    let mut facts = Vec::new();
    for named in &scope.queries {
        let query: Value = serde_json::from_str(&named.query).map_err(|e| {
            ConnectorError::Invalid(format!(
                "spec.search.queries[{}].query is not JSON (a query DSL clause such as {{\"term\": {{\"level\": \"error\"}}}}): {e}",
                named.name
            ))
        })?;
        if !query.is_object() {
            return Err(ConnectorError::Invalid(format!(
                "spec.search.queries[{}].query must be a JSON object (a query DSL clause)",
                named.name
            )));
        }
        let url = provider.url(&[&scope.index, "_count"]);
        let what = format!("count query {} on {name} index {}", named.name, scope.index);
        let answer = provider
            .post_json(url, &json!({"query": query}), &what)
            .await?;
        let count: CountAnswer = answer.json(name, &what)?;
        if let Some(shards) = &count.shards
            && shards.failed > 0
        {
            return Err(ConnectorError::Unreachable(format!(
                "{what}: {} of {} shards failed, the count would be partial",
                shards.failed, shards.total
            )));
        }
        facts.push(rest::fact(&named.name, count.count));
    }
    Ok(rest::document(
        req,
        connector,
        &provider.shown,
        &[
            ("index", scope.index.clone()),
            (
                "queries",
                scope
                    .queries
                    .iter()
                    .map(|q| q.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ],
        facts,
        None,
    ))
}
