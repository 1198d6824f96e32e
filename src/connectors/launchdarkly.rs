//! `launchdarkly`: one flag's state in one environment: on/off, archived,
//! what the default rule serves and the released variation's share of it
//! (a percentage or guarded rollout moves that share stage by stage).
//!
//! API (https://launchdarkly.com/docs/api/feature-flags/get-feature-flag):
//! `GET /api/v2/flags/{projectKey}/{featureFlagKey}?env={environmentKey}`
//! with the access token in `Authorization`; rollout weights are in
//! thousandths of a percent; 429 carries `Retry-After` and
//! `X-Ratelimit-Reset` (Unix milliseconds).

use serde_json::Value;

use crate::api::{EvidenceDocument, Fact, LaunchDarklyScope};

use super::prometheus::fact_value;
use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

const DEFAULT_URL: &str = "https://app.launchdarkly.com";

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.launchdarkly.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector launchdarkly needs spec.launchdarkly".into())
    })?;
    let token = rest::required_token(connectors, req, "launchdarkly").await?;
    let provider = Provider::new(
        connectors,
        "LaunchDarkly",
        scope.url.as_deref().unwrap_or(DEFAULT_URL),
        "spec.launchdarkly.url",
        Auth::Scheme("", token),
    )?;
    let mut url = provider.url(&["api", "v2", "flags", &scope.project, &scope.flag]);
    url.query_pairs_mut().append_pair("env", &scope.environment);
    let what = format!(
        "reading LaunchDarkly flag {} of project {}",
        scope.flag, scope.project
    );
    let (flag, _): (Value, _) = provider.get_json(url, &what).await?;
    let facts = facts(scope, &flag)?;
    Ok(rest::document(
        req,
        "launchdarkly",
        &provider.shown,
        &[
            ("project", scope.project.clone()),
            ("flag", scope.flag.clone()),
            ("flagEnvironment", scope.environment.clone()),
        ],
        facts,
        None,
    ))
}

/// A variation's display name: its `name`, else its value.
fn variation_label(variation: &Value) -> String {
    match (
        variation.get("name").and_then(Value::as_str),
        variation.get("value"),
    ) {
        (Some(name), _) if !name.is_empty() => name.to_string(),
        (_, Some(Value::String(s))) => s.clone(),
        (_, Some(other)) => other.to_string(),
        _ => String::new(),
    }
}

/// The flag's facts in the scope's environment (pure).
pub fn facts(scope: &LaunchDarklyScope, flag: &Value) -> Result<Vec<Fact>, ConnectorError> {
    let env = flag
        .get("environments")
        .and_then(|e| e.get(&scope.environment))
        .ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "LaunchDarkly flag {} has no environment {}",
                scope.flag, scope.environment
            ))
        })?;
    let variations = flag
        .get("variations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let labels: Vec<String> = variations.iter().map(variation_label).collect();
    let released = match &scope.variation {
        Some(wanted) => labels.iter().position(|l| l == wanted).ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "LaunchDarkly flag {} has no variation {wanted} (it has {})",
                scope.flag,
                labels.join(", ")
            ))
        })?,
        None => flag
            .pointer("/defaults/onVariation")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize,
    };
    let on = env.get("on").and_then(Value::as_bool).unwrap_or(false);
    let archived = flag
        .get("archived")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || env
            .get("archived")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let fallthrough = env.get("fallthrough").cloned().unwrap_or(Value::Null);
    let weights: Vec<(usize, f64)> = fallthrough
        .pointer("/rollout/variations")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    let index = v.get("variation")?.as_u64()? as usize;
                    let weight = v.get("weight")?.as_f64()? / 1000.0;
                    Some((index, weight))
                })
                .collect()
        })
        .unwrap_or_default();
    let (serving, percent) = if !on {
        let off = env
            .get("offVariation")
            .and_then(Value::as_u64)
            .map(|i| i as usize);
        (
            off.and_then(|i| labels.get(i).cloned())
                .unwrap_or_else(|| "off".into()),
            if off == Some(released) { 100.0 } else { 0.0 },
        )
    } else if weights.is_empty() {
        let index = fallthrough
            .get("variation")
            .and_then(Value::as_u64)
            .map(|i| i as usize);
        (
            index
                .and_then(|i| labels.get(i).cloned())
                .unwrap_or_default(),
            if index == Some(released) { 100.0 } else { 0.0 },
        )
    } else {
        (
            "rollout".into(),
            weights
                .iter()
                .filter(|(i, _)| *i == released)
                .map(|(_, w)| w)
                .sum(),
        )
    };
    let mut facts = vec![
        rest::fact("flag_on", on),
        rest::fact("archived", archived),
        rest::fact("serving", serving),
        rest::fact(
            "released_variation",
            labels.get(released).cloned().unwrap_or_default(),
        ),
        rest::fact("rollout_percent", fact_value(percent, Some("%"))),
        rest::fact(
            "rollout_in_progress",
            on && percent > 0.0 && percent < 100.0,
        ),
    ];
    if let Some(v) = env.get("version").and_then(Value::as_i64) {
        facts.push(rest::fact("environment_version", v));
    }
    if let Some(ms) = env.get("lastModified").and_then(Value::as_i64)
        && let Ok(at) = jiff::Timestamp::from_millisecond(ms)
    {
        facts.push(rest::fact("last_modified", at.to_string()));
    }
    Ok(facts)
}
