//! `statuspage`: a dependency's public status page in the Atlassian
//! Statuspage format, which many vendors publish (GitHub, Atlassian,
//! Twilio, ...): the status of the components the service depends on, the
//! unresolved incidents affecting them and maintenance in progress.
//!
//! API (https://developer.statuspage.io/, each page's `/api` documentation,
//! e.g. https://metastatuspage.com/api): `GET <page>/api/v2/summary.json`,
//! public, no credential. Component `status`: `operational`,
//! `degraded_performance`, `partial_outage`, `major_outage`,
//! `under_maintenance`; page `status.indicator`: `none`, `minor`, `major`,
//! `critical`; `incidents` are the unresolved ones; scheduled maintenance
//! `status`: `scheduled`, `in_progress`, `verifying`, `completed`.

use serde::Deserialize;

use crate::api::{EvidenceDocument, Fact, RadarSignal, StatuspageScope};

use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

/// Largest summary read: big vendors' pages are well under this.
const MAX_BODY_BYTES: usize = 2 << 20;

/// `GET /api/v2/summary.json`.
#[derive(Debug, Deserialize)]
pub struct Summary {
    pub page: Page,
    #[serde(default)]
    pub status: Option<PageStatus>,
    #[serde(default)]
    pub components: Vec<Component>,
    #[serde(default)]
    pub incidents: Vec<Incident>,
    #[serde(default)]
    pub scheduled_maintenances: Vec<Incident>,
}

/// The page itself.
#[derive(Debug, Deserialize)]
pub struct Page {
    pub name: String,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// The page's roll-up.
#[derive(Debug, Deserialize)]
pub struct PageStatus {
    pub indicator: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// One component.
#[derive(Debug, Deserialize)]
pub struct Component {
    pub id: String,
    pub name: String,
    pub status: String,
    /// A group of components (its status is its members').
    #[serde(default)]
    pub group: bool,
}

/// An unresolved incident or a scheduled maintenance.
#[derive(Debug, Deserialize)]
pub struct Incident {
    pub id: String,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub impact: Option<String>,
    #[serde(default)]
    pub shortlink: Option<String>,
    /// Affected components, when the page lists them.
    #[serde(default)]
    pub components: Option<Vec<ComponentRef>>,
}

/// A component named by an incident.
#[derive(Debug, Deserialize)]
pub struct ComponentRef {
    pub id: String,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.statuspage.as_ref().ok_or_else(|| {
        ConnectorError::Invalid(
            "connector statuspage needs spec.statuspage (url and dependency)".into(),
        )
    })?;
    let provider = Provider::new(
        connectors,
        "Statuspage",
        &scope.url,
        "spec.statuspage.url",
        Auth::None,
    )?
    .max_body(MAX_BODY_BYTES);
    let url = provider.url(&["api", "v2", "summary.json"]);
    let what = format!("reading the status page of {}", scope.dependency);
    let (summary, headers): (Summary, _) = provider.get_json(url, &what).await?;
    let observed = super::saas::date_of(&headers).map(|d| d.min(req.now));
    let facts = facts(scope, &summary)?;
    Ok(rest::document(
        req,
        "statuspage",
        &provider.shown,
        &[
            ("dependency", scope.dependency.clone()),
            ("page", summary.page.name.clone()),
        ],
        facts,
        observed,
    ))
}

/// The components the scope names, in its order; all (but groups) when it
/// names none. A name or id the page does not list is an error: the scope
/// would otherwise pass on a component nobody reads.
fn scoped<'a>(
    scope: &StatuspageScope,
    summary: &'a Summary,
) -> Result<Vec<&'a Component>, ConnectorError> {
    if scope.components.is_empty() {
        return Ok(summary.components.iter().filter(|c| !c.group).collect());
    }
    scope
        .components
        .iter()
        .map(|want| {
            summary
                .components
                .iter()
                .find(|c| c.id == *want || c.name.eq_ignore_ascii_case(want))
                .ok_or_else(|| {
                    let listed: Vec<&str> = summary
                        .components
                        .iter()
                        .take(20)
                        .map(|c| c.name.as_str())
                        .collect();
                    ConnectorError::Invalid(format!(
                        "component {want:?} is not on the status page of {} (it lists: {})",
                        scope.dependency,
                        listed.join(", ")
                    ))
                })
        })
        .collect()
}

/// An incident or maintenance touches the scoped components: it names one
/// of them, or names none (then it may be about anything on the page).
fn affects(incident: &Incident, components: &[&Component], whole_page: bool) -> bool {
    match &incident.components {
        _ if whole_page => true,
        None => true,
        Some(list) if list.is_empty() => true,
        Some(list) => list.iter().any(|r| components.iter().any(|c| c.id == r.id)),
    }
}

/// A component name as part of a fact name: `API Requests` → `api_requests`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

fn impact_rank(impact: &str) -> u8 {
    match impact {
        "critical" => 4,
        "major" => 3,
        "minor" => 2,
        "maintenance" => 1,
        _ => 0,
    }
}

/// The dependency's facts (pure).
pub fn facts(scope: &StatuspageScope, summary: &Summary) -> Result<Vec<Fact>, ConnectorError> {
    let components = scoped(scope, summary)?;
    let whole_page = scope.components.is_empty();
    let mut facts = Vec::new();
    if let Some(status) = &summary.status {
        facts.push(rest::fact("indicator", status.indicator.clone()));
        if let Some(d) = &status.description {
            facts.push(rest::fact("page_status", d.clone()));
        }
    }
    if let Some(at) = &summary.page.updated_at {
        facts.push(rest::fact("page_updated_at", at.clone()));
    }
    let mut down = Vec::new();
    for c in &components {
        let s = slug(&c.name);
        facts.push(rest::fact(
            &format!("component_{s}_status"),
            c.status.clone(),
        ));
        facts.push(rest::fact(
            &format!("component_{s}_operational"),
            c.status == "operational",
        ));
        if c.status != "operational" {
            down.push(c.name.as_str());
        }
    }
    facts.push(rest::fact("components_total", components.len() as u64));
    facts.push(rest::fact("components_not_operational", down.len() as u64));
    facts.push(rest::fact("not_operational_components", down.join(",")));

    let open: Vec<&Incident> = summary
        .incidents
        .iter()
        .filter(|i| i.status != "resolved" && i.status != "postmortem")
        .filter(|i| affects(i, &components, whole_page))
        .collect();
    let worst = open
        .iter()
        .filter_map(|i| i.impact.as_deref())
        .max_by_key(|i| impact_rank(i))
        .unwrap_or("none");
    facts.push(rest::fact("incidents_open", open.len() as u64));
    facts.push(rest::fact(
        "open_incidents",
        open.iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    ));
    facts.push(rest::fact("incident_impact", worst));

    let maintenance: Vec<&Incident> = summary
        .scheduled_maintenances
        .iter()
        .filter(|m| matches!(m.status.as_str(), "in_progress" | "verifying"))
        .filter(|m| affects(m, &components, whole_page))
        .collect();
    facts.push(rest::fact(
        "maintenance_in_progress",
        !maintenance.is_empty(),
    ));
    facts.push(rest::fact(
        "maintenances_in_progress",
        maintenance
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    ));
    facts.push(rest::fact(
        "dependency_operational",
        down.is_empty() && open.is_empty(),
    ));
    Ok(facts)
}

/// The Radar rows of a status page read: each component, each open
/// incident and each maintenance in progress. The page is the provider's
/// own word, so every row is certain (100%).
pub fn signals(doc: &EvidenceDocument) -> Vec<RadarSignal> {
    let text = |name: &str| {
        doc.facts
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value.as_ref()?.as_str().map(str::to_string))
    };
    let mut rows: Vec<RadarSignal> = doc
        .facts
        .iter()
        .filter_map(|f| {
            let name = f.name.strip_prefix("component_")?.strip_suffix("_status")?;
            let status = f.value.as_ref()?.as_str()?;
            Some(RadarSignal {
                name: name.to_string(),
                state: if status == "operational" {
                    "pass"
                } else {
                    "fail"
                }
                .into(),
                detail: status.to_string(),
                confidence: 100,
            })
        })
        .collect();
    let listed = |name: &str| {
        text(name)
            .map(|s| {
                s.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let impact = text("incident_impact").unwrap_or_else(|| "none".into());
    for incident in listed("open_incidents") {
        rows.push(RadarSignal {
            name: format!("incident: {incident}"),
            state: "fail".into(),
            detail: format!("unresolved (page impact {impact})"),
            confidence: 100,
        });
    }
    for m in listed("maintenances_in_progress") {
        rows.push(RadarSignal {
            name: format!("maintenance: {m}"),
            state: "warn".into(),
            detail: "in progress".into(),
            confidence: 100,
        });
    }
    rows.truncate(50);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The documented summary example (https://metastatuspage.com/api),
    /// reduced to the fields read, with incident component lists as pages
    /// publish them today.
    fn summary() -> Summary {
        serde_json::from_value(json!({
            "page": {"id": "y2j98763l56x", "name": "Atlassian Statuspage", "url": "http://status.atlassian.com", "updated_at": "2014-05-14T14:22:39.441-06:00"},
            "components": [
                {"id": "b13yz5g2cw10", "name": "API", "status": "partial_outage", "group": false},
                {"id": "9397cnvk62zn", "name": "Management Portal", "status": "major_outage", "group": false},
                {"id": "x8kqpj6w3tn4", "name": "Email Notifications", "status": "operational", "group": false}
            ],
            "incidents": [
                {"id": "cp306tmzcl0y", "name": "Unplanned Database Outage", "status": "identified", "impact": "critical",
                 "shortlink": "http://stspg.dev:5000/Q0E", "components": [{"id": "9397cnvk62zn", "name": "Management Portal"}]}
            ],
            "scheduled_maintenances": [
                {"id": "w1zdr745wmfy", "name": "Planned Database Upgrade", "status": "scheduled", "impact": "none",
                 "components": [{"id": "b13yz5g2cw10"}]}
            ],
            "status": {"description": "Partial System Outage", "indicator": "major"}
        }))
        .expect("summary")
    }

    fn scope(components: &[&str]) -> StatuspageScope {
        StatuspageScope {
            url: "https://metastatuspage.com".into(),
            dependency: "statuspage".into(),
            components: components.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn value(facts: &[Fact], name: &str) -> Option<Value> {
        facts.iter().find(|f| f.name == name)?.value.clone()
    }

    #[test]
    fn a_scoped_component_counts_only_its_own_incidents() {
        let f = facts(&scope(&["API", "x8kqpj6w3tn4"]), &summary()).expect("facts");
        assert_eq!(value(&f, "indicator"), Some(json!("major")));
        assert_eq!(
            value(&f, "component_api_status"),
            Some(json!("partial_outage"))
        );
        assert_eq!(value(&f, "component_api_operational"), Some(json!(false)));
        assert_eq!(
            value(&f, "component_email_notifications_operational"),
            Some(json!(true))
        );
        assert_eq!(value(&f, "components_not_operational"), Some(json!(1)));
        // The database outage names the Management Portal only.
        assert_eq!(value(&f, "incidents_open"), Some(json!(0)));
        assert_eq!(value(&f, "maintenance_in_progress"), Some(json!(false)));
        assert_eq!(value(&f, "dependency_operational"), Some(json!(false)));
    }

    #[test]
    fn the_whole_page_counts_every_incident_and_maintenance_in_progress() {
        let mut s = summary();
        s.scheduled_maintenances[0].status = "in_progress".into();
        let f = facts(&scope(&[]), &s).expect("facts");
        assert_eq!(value(&f, "components_total"), Some(json!(3)));
        assert_eq!(value(&f, "incidents_open"), Some(json!(1)));
        assert_eq!(
            value(&f, "open_incidents"),
            Some(json!("Unplanned Database Outage"))
        );
        assert_eq!(value(&f, "incident_impact"), Some(json!("critical")));
        assert_eq!(value(&f, "maintenance_in_progress"), Some(json!(true)));
        let doc = EvidenceDocument {
            connector: "statuspage".into(),
            scope: Default::default(),
            freshness: crate::api::Freshness {
                observed_at: jiff::Timestamp::UNIX_EPOCH,
                max_age_seconds: None,
            },
            facts: f,
        };
        let rows = signals(&doc);
        let names: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.state.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("api", "fail"),
                ("management_portal", "fail"),
                ("email_notifications", "pass"),
                ("incident: Unplanned Database Outage", "fail"),
                ("maintenance: Planned Database Upgrade", "warn"),
            ]
        );
    }

    #[test]
    fn a_component_the_page_does_not_list_is_invalid() {
        let err = facts(&scope(&["Billing"]), &summary()).expect_err("unknown component");
        assert!(matches!(err, ConnectorError::Invalid(_)));
        assert!(err.to_string().contains("Billing"), "{err}");
        assert_eq!(slug("API Requests (EU)"), "api_requests_eu");
    }
}
