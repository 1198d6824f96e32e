//! The facts every incident connector (PagerDuty, Opsgenie) publishes,
//! under the same names, so that a Policy's incident rules and its
//! `incidentFreeze` read any of them:
//!
//! | fact | value |
//! |---|---|
//! | `active_incidents` | open (unresolved) incidents in scope |
//! | `active_sev1_incidents` | of those, at priority 1 (`P1`, `SEV-1`, ...) |
//! | `active_p1_or_higher_incidents` … `active_p5_or_higher_incidents` | at priority N or more severe |
//! | `open_incident_ids` | their ids, comma-separated (at most 50) |
//! | `most_severe_incident` | the most severe one, named: provider, number, id, priority, state, link (present only when one is open) |

use serde_json::{Value, json};

use crate::api::Fact;

/// Lowest priority the `active_pN_or_higher_incidents` facts cover.
pub const LOWEST_PRIORITY: u32 = 5;

/// One open incident, as the facts need it. Titles are never kept: they
/// are free text that may hold private details.
#[derive(Clone, Debug)]
pub struct Incident {
    pub id: String,
    /// Priority as the provider names it (`P1`, `SEV-2`), if set.
    pub priority: Option<String>,
    pub high_urgency: bool,
    pub since: Option<jiff::Timestamp>,
    /// How a person finds it: provider, number, id, priority, state, link.
    pub name: String,
}

impl Incident {
    /// The priority's number: `P1` → 1, `SEV-2` → 2, `Sev 3` → 3.
    pub fn rank(&self) -> Option<u32> {
        let p = self.priority.as_deref()?;
        let digits: String = p
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }
}

pub fn fact(name: &str, value: Value) -> Fact {
    Fact {
        name: name.into(),
        status: None,
        value: Some(value),
        threshold: None,
        observed_at: None,
    }
}

/// The shared incident facts.
pub fn facts(incidents: &[Incident]) -> Vec<Fact> {
    let at_or_above = |n: u32| {
        incidents
            .iter()
            .filter(|i| i.rank().is_some_and(|r| r <= n))
            .count()
    };
    let mut out = vec![
        fact("active_incidents", json!(incidents.len())),
        fact("active_sev1_incidents", json!(at_or_above(1))),
    ];
    for n in 1..=LOWEST_PRIORITY {
        out.push(fact(
            &format!("active_p{n}_or_higher_incidents"),
            json!(at_or_above(n)),
        ));
    }
    let ids: Vec<&str> = incidents.iter().take(50).map(|i| i.id.as_str()).collect();
    out.push(fact("open_incident_ids", json!(ids.join(","))));
    if let Some(worst) = most_severe(incidents) {
        out.push(fact("most_severe_incident", json!(worst.name)));
    }
    out
}

/// Lowest priority number first, then high urgency, then the oldest.
fn most_severe(incidents: &[Incident]) -> Option<&Incident> {
    incidents.iter().min_by_key(|i| {
        (
            i.rank().unwrap_or(u32::MAX),
            !i.high_urgency,
            i.since.unwrap_or(jiff::Timestamp::MAX),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(id: &str, priority: Option<&str>) -> Incident {
        Incident {
            id: id.into(),
            priority: priority.map(Into::into),
            high_urgency: false,
            since: None,
            name: format!("incident {id}"),
        }
    }

    #[test]
    fn counts_by_priority_and_names_the_worst() {
        let incidents = [
            incident("A", Some("P3")),
            incident("B", Some("SEV-1")),
            incident("C", None),
            incident("D", Some("Sev 2")),
        ];
        let facts = facts(&incidents);
        let get = |n: &str| {
            facts
                .iter()
                .find(|f| f.name == n)
                .and_then(|f| f.value.clone())
                .unwrap_or_else(|| panic!("{n}"))
        };
        assert_eq!(get("active_incidents"), json!(4));
        assert_eq!(get("active_sev1_incidents"), json!(1));
        assert_eq!(get("active_p2_or_higher_incidents"), json!(2));
        assert_eq!(get("active_p5_or_higher_incidents"), json!(3));
        assert_eq!(get("open_incident_ids"), json!("A,B,C,D"));
        assert_eq!(get("most_severe_incident"), json!("incident B"));
    }

    #[test]
    fn no_incident_no_name() {
        let facts = facts(&[]);
        assert!(facts.iter().all(|f| f.name != "most_severe_incident"));
    }
}
