//! The evidence an evaluation reads, with where each fact came from (pure).
//!
//! Evidence is either **pulled** (read by the operator through a
//! ConnectorScope) or **pushed** (written into the gate's `spec.evidence`,
//! by CI, under the identity the apiserver stamped). Pushed evidence never
//! counts under the name of a connector the operator pulls, and no evidence
//! counts when it claims to have been observed in the future: both are
//! refused, named in the trace and the passport, and ignored.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use jiff::{SignedDuration, Timestamp};

use crate::api::{EvidenceDocument, Fact, Provenance};

/// How far in the future an observation may be (clocks of CI runners and
/// sources drift); beyond it the evidence is refused.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// Where a fact came from.
pub(crate) struct Observation<'a> {
    pub fact: &'a Fact,
    pub observed_at: Timestamp,
    pub doc_max_age: Option<i64>,
    pub provenance: Provenance,
}

/// One evidence document and what the evaluation made of it.
pub(crate) struct Document<'a> {
    pub doc: &'a EvidenceDocument,
    pub provenance: Provenance,
    /// Why it is ignored, when it is.
    pub refused: Option<String>,
}

/// Facts by connector, then by name.
type ByConnector<'a> = HashMap<&'a str, HashMap<&'a str, Observation<'a>>>;

/// Every fact, by connector and name: the newest observation per provenance.
#[derive(Default)]
pub(crate) struct FactIndex<'a> {
    pulled: ByConnector<'a>,
    pushed: ByConnector<'a>,
    /// Connectors that brought any accepted evidence.
    pub connectors: HashSet<&'a str>,
}

impl<'a> FactIndex<'a> {
    /// The newest observation of `connector/fact`, from `provenance` only when given.
    pub fn get(
        &self,
        connector: &str,
        fact: &str,
        provenance: Option<Provenance>,
    ) -> Option<&Observation<'a>> {
        let pulled = self.pulled.get(connector).and_then(|m| m.get(fact));
        let pushed = self.pushed.get(connector).and_then(|m| m.get(fact));
        match provenance {
            Some(Provenance::Pulled) => pulled,
            Some(Provenance::Pushed) => pushed,
            Some(Provenance::Gate) => None,
            None => match (pulled, pushed) {
                (Some(a), Some(b)) => Some(if b.observed_at > a.observed_at { b } else { a }),
                (a, b) => a.or(b),
            },
        }
    }

    /// The newest observation of every fact, whatever its provenance, as
    /// `(connector, fact, observation)`.
    pub fn newest(&self) -> impl Iterator<Item = (&'a str, &'a str, &Observation<'a>)> {
        fn flat<'m, 'a>(map: &'m ByConnector<'a>) -> Vec<(&'a str, &'a str, &'m Observation<'a>)> {
            map.iter()
                .flat_map(|(c, facts)| facts.iter().map(move |(f, o)| (*c, *f, o)))
                .collect()
        }
        let mut all = flat(&self.pulled);
        for (c, f, o) in flat(&self.pushed) {
            match all.iter().position(|(c2, f2, _)| *c2 == c && *f2 == f) {
                Some(i) if all[i].2.observed_at < o.observed_at => all[i] = (c, f, o),
                Some(_) => {}
                None => all.push((c, f, o)),
            }
        }
        all.into_iter()
    }
}

/// Connector names pushed evidence may not use (computed once).
fn reserved_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(crate::api::pulled_connector_names)
}

/// Classifies the documents (pushed first, then pulled) and indexes the
/// facts of those that are accepted.
pub(crate) fn index<'a>(
    pushed: &'a [EvidenceDocument],
    pulled: &'a [EvidenceDocument],
    now: Timestamp,
) -> (Vec<Document<'a>>, FactIndex<'a>) {
    let limit = now
        .checked_add(SignedDuration::from_secs(CLOCK_SKEW_SECONDS))
        .unwrap_or(Timestamp::MAX);
    let documents: Vec<Document<'a>> = pushed
        .iter()
        .map(|d| (d, Provenance::Pushed))
        .chain(pulled.iter().map(|d| (d, Provenance::Pulled)))
        .map(|(doc, provenance)| Document {
            doc,
            provenance,
            refused: refusal(doc, provenance, limit),
        })
        .collect();
    let mut facts = FactIndex::default();
    for d in documents.iter().filter(|d| d.refused.is_none()) {
        facts.connectors.insert(d.doc.connector.as_str());
        let map = match d.provenance {
            Provenance::Pushed => &mut facts.pushed,
            _ => &mut facts.pulled,
        };
        for fact in &d.doc.facts {
            let obs = Observation {
                fact,
                observed_at: fact.observed_at.unwrap_or(d.doc.freshness.observed_at),
                doc_max_age: d.doc.freshness.max_age_seconds,
                provenance: d.provenance,
            };
            let facts = map.entry(d.doc.connector.as_str()).or_default();
            match facts.get(fact.name.as_str()) {
                Some(prev) if obs.observed_at < prev.observed_at => {}
                _ => {
                    facts.insert(fact.name.as_str(), obs);
                }
            }
        }
    }
    (documents, facts)
}

fn refusal(doc: &EvidenceDocument, provenance: Provenance, limit: Timestamp) -> Option<String> {
    if provenance == Provenance::Pushed && reserved_names().contains(&doc.connector) {
        return Some(format!(
            "pushed evidence uses the name of connector {}, which the operator pulls; ignored (push it as ingest or under a name of your own)",
            doc.connector
        ));
    }
    let future = std::iter::once(doc.freshness.observed_at)
        .chain(doc.facts.iter().filter_map(|f| f.observed_at))
        .find(|t| *t > limit)?;
    Some(format!(
        "{provenance} {} evidence claims to be observed at {future}, in the future beyond the {CLOCK_SKEW_SECONDS}s clock-skew allowance; ignored",
        doc.connector
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(connector: &str, observed: &str, facts: &[(&str, i64)]) -> EvidenceDocument {
        serde_json::from_value(serde_json::json!({
            "connector": connector,
            "freshness": {"observedAt": observed},
            "facts": facts.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
        }))
        .expect("evidence")
    }

    #[test]
    fn pushed_evidence_under_a_pulled_name_or_from_the_future_is_refused() {
        let now: Timestamp = "2026-05-17T06:00:00Z".parse().expect("ts");
        let pushed = vec![
            doc("prometheus", "2026-05-17T05:59:00Z", &[("error_rate", 0)]),
            doc("ingest", "2026-05-17T07:00:00Z", &[("scan", 0)]),
            doc("ingest", "2026-05-17T06:00:30Z", &[("tests", 1)]),
        ];
        let pulled = vec![doc(
            "prometheus",
            "2026-05-17T05:58:00Z",
            &[("error_rate", 3)],
        )];
        let (docs, facts) = index(&pushed, &pulled, now);
        let refused: Vec<bool> = docs.iter().map(|d| d.refused.is_some()).collect();
        assert_eq!(refused, vec![true, true, false, false]);
        assert!(
            docs[0]
                .refused
                .as_deref()
                .unwrap_or("")
                .contains("operator pulls")
        );
        assert!(
            docs[1]
                .refused
                .as_deref()
                .unwrap_or("")
                .contains("in the future")
        );
        // Within the clock-skew allowance: accepted.
        assert!(facts.get("ingest", "tests", None).is_some());
        let rate = facts
            .get("prometheus", "error_rate", None)
            .expect("pulled fact");
        assert_eq!(rate.provenance, Provenance::Pulled);
        assert_eq!(rate.fact.value, Some(serde_json::json!(3)));
        assert!(
            facts
                .get("ingest", "tests", Some(Provenance::Pulled))
                .is_none()
        );
    }
}
