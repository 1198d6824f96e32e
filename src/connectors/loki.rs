//! `loki`: allowlisted named LogQL **metric** queries (counts such as
//! error bursts), each answering one sample. Log lines are never read: a
//! log query (answering `streams`) is refused, so no line can reach a
//! passport.
//!
//! API (https://grafana.com/docs/loki/latest/reference/loki-http-api/#query-logs-at-a-single-point-in-time):
//! `GET /loki/api/v1/query` answers the Prometheus result envelope; the
//! tenant goes in `X-Scope-OrgID`; bad LogQL answers HTTP 400 with a
//! plain-text explanation.

use crate::api::{EvidenceDocument, NamedQuery};

use super::prometheus::{Sample, fact_value, parse_query_response};
use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req
        .spec
        .loki
        .as_ref()
        .ok_or_else(|| ConnectorError::Invalid("connector loki needs spec.loki".into()))?;
    if scope.queries.is_empty() {
        return Err(ConnectorError::Invalid(
            "spec.loki.queries is empty: name at least one query".into(),
        ));
    }
    let auth = match connectors.secret_token(req).await? {
        Some(token) => Auth::Bearer(token),
        None => Auth::None,
    };
    let mut provider = Provider::new(connectors, "Loki", &scope.url, "spec.loki.url", auth)?;
    if let Some(tenant) = &scope.tenant {
        provider = provider.header("x-scope-orgid", tenant)?;
    }
    let mut samples: Vec<(&NamedQuery, Sample)> = Vec::new();
    for named in &scope.queries {
        let mut url = provider.url(&["loki", "api", "v1", "query"]);
        url.query_pairs_mut()
            .append_pair("query", &named.query)
            .append_pair("time", &req.now.as_nanosecond().to_string());
        let what = format!("query {} on Loki", named.name);
        let answer = provider.get(url, &what).await?;
        samples.push((named, parse_query_response(&named.name, 200, &answer.body)?));
    }
    let observed_at = samples.iter().map(|(_, s)| s.at).min();
    let facts = samples
        .iter()
        .map(|(q, s)| {
            let mut f = rest::fact(&q.name, fact_value(s.value, q.unit.as_deref()));
            f.observed_at = Some(s.at);
            f
        })
        .collect();
    let mut extra = vec![(
        "queries",
        scope
            .queries
            .iter()
            .map(|q| q.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    )];
    if let Some(t) = &scope.tenant {
        extra.push(("tenant", t.clone()));
    }
    Ok(rest::document(
        req,
        "loki",
        &provider.shown,
        &extra,
        facts,
        observed_at,
    ))
}
