//! The investigation of a decision: for a passport that does not allow
//! promotion, a ranked explanation built from the evidence itself — which
//! checks fail and since when, what changed since the gate's last ALLOW
//! (artifact, policy, evidence, approvals, rollback), the signals that
//! correlate (an incident opened, an error rise after a sync, a stale
//! connector) and the next actions.
//!
//! Deterministic: the same passports give the same investigation. It reads
//! only passports (already redacted), so whatever it says may be shown or
//! summarised without leaking a credential. It never changes a decision.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::Serialize;

use crate::api::{Decision, PassportSpec, PolicyResult, ResultState};

/// The investigation of one passport.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Investigation {
    pub decision: Decision,
    /// Why the release does not pass, most important first.
    pub findings: Vec<Finding>,
    /// Signals that correlate with the findings.
    pub signals: Vec<Signal>,
    /// What changed since the gate's last ALLOW (or ALLOW_WITH_CANARY);
    /// `None` when the gate never allowed a release.
    pub since_last_allow: Option<Comparison>,
    /// The passport's own next actions, in its order.
    pub next_actions: Vec<String>,
}

/// One check that keeps the release from passing.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub rule_id: String,
    pub label: String,
    pub state: ResultState,
    /// The decision this check asks for.
    pub on_fail: Decision,
    pub observed: Option<String>,
    pub threshold: Option<String>,
    pub source: Option<String>,
    /// The first passport of the current unbroken run of passports in which
    /// this check did not pass.
    pub failing_since: Timestamp,
    /// How many consecutive passports (this one included) it did not pass in.
    pub failing_passports: usize,
    /// Its observed value in the last ALLOW, when it differs.
    pub at_last_allow: Option<String>,
    /// One sentence, for people.
    pub explanation: String,
}

/// A signal that correlates with the findings.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Signal {
    /// A metric check failing on evidence observed after a GitOps sync.
    #[serde(rename_all = "camelCase")]
    RiseAfterSync {
        rule_id: String,
        observed: String,
        before: Option<String>,
        sync_connector: String,
        synced_at: Timestamp,
        observed_at: Timestamp,
    },
    /// An incident check failing: an incident is open.
    #[serde(rename_all = "camelCase")]
    IncidentOpen { rule_id: String, observed: String },
    /// Evidence older than its maximum age.
    #[serde(rename_all = "camelCase")]
    StaleConnector {
        connector: String,
        observed_at: Timestamp,
        max_age_seconds: Option<i64>,
    },
}

/// What differs between the last ALLOW and this passport.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// When the last ALLOW was issued.
    pub allowed_at: Timestamp,
    pub allowed_release: String,
    pub changes: Vec<Change>,
}

/// One difference, as `what: before → after`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub what: String,
    pub before: String,
    pub after: String,
}

/// Connectors whose evidence is a GitOps sync or rollout.
const SYNC_CONNECTORS: &[&str] = &["argocd", "flux", "argo-rollouts", "flagger"];
/// Connectors whose facts are runtime metrics.
const METRIC_CONNECTORS: &[&str] = &["prometheus", "datadog", "newrelic", "loki", "opensearch"];

/// Investigates `current`, given the older passports of the same gate
/// (`history`, in any order; passports at or after `current` are ignored).
pub fn investigate(current: &PassportSpec, history: &[&PassportSpec]) -> Investigation {
    let mut older: Vec<&PassportSpec> = history
        .iter()
        .copied()
        .filter(|p| p.generated_at < current.generated_at)
        .collect();
    older.sort_by_key(|p| Reverse(p.generated_at));
    let last_allow = older
        .iter()
        .copied()
        .find(|p| p.decision.allows_promotion());
    let mut findings: Vec<Finding> = current
        .policy_results
        .iter()
        .filter(|r| super::failing(r))
        .map(|r| finding(current, r, &older, last_allow))
        .collect();
    findings.sort_by_key(|f| (Reverse(severity(f.on_fail)), state_rank(f.state)));
    Investigation {
        decision: current.decision,
        signals: signals(current, &findings),
        since_last_allow: last_allow.map(|allow| compare(allow, current)),
        findings,
        next_actions: current.next_actions.clone(),
    }
}

/// How strongly a decision holds a release back.
fn severity(d: Decision) -> u8 {
    match d {
        Decision::Block => 5,
        Decision::RollbackRecommended => 4,
        Decision::Hold => 3,
        Decision::RequireApproval => 2,
        Decision::AllowWithCanary => 1,
        Decision::Allow => 0,
    }
}

fn state_rank(s: ResultState) -> u8 {
    match s {
        ResultState::Fail => 0,
        ResultState::Stale => 1,
        ResultState::Missing => 2,
        ResultState::Waived | ResultState::Pass => 3,
    }
}

fn result<'a>(p: &'a PassportSpec, id: &str) -> Option<&'a PolicyResult> {
    p.policy_results.iter().find(|r| r.id == id)
}

fn finding(
    current: &PassportSpec,
    r: &PolicyResult,
    older: &[&PassportSpec],
    last_allow: Option<&PassportSpec>,
) -> Finding {
    let mut failing_since = current.generated_at;
    let mut failing_passports = 1;
    for p in older {
        match result(p, &r.id) {
            Some(old) if super::failing(old) => {
                failing_since = p.generated_at;
                failing_passports += 1;
            }
            _ => break,
        }
    }
    let at_last_allow = last_allow
        .and_then(|a| result(a, &r.id))
        .and_then(|a| a.observed.clone())
        .filter(|before| Some(before) != r.observed.as_ref());
    Finding {
        explanation: explain(current, r, at_last_allow.as_deref()),
        rule_id: r.id.clone(),
        label: r.label.clone(),
        state: r.state,
        on_fail: r.on_fail,
        observed: r.observed.clone(),
        threshold: r.threshold.clone(),
        source: r.source.clone(),
        failing_since,
        failing_passports,
        at_last_allow,
    }
}

/// The fact a result reads (`connector/fact` → `fact`).
fn fact(r: &PolicyResult) -> &str {
    r.source
        .as_deref()
        .and_then(|s| s.split_once('/').map(|(_, f)| f))
        .unwrap_or_default()
}

fn connector(r: &PolicyResult) -> &str {
    r.source
        .as_deref()
        .map(|s| s.split_once('/').map_or(s, |(c, _)| c))
        .unwrap_or_default()
}

fn explain(current: &PassportSpec, r: &PolicyResult, before: Option<&str>) -> String {
    let observed = r.observed.as_deref().unwrap_or("nothing");
    let required = r
        .threshold
        .as_deref()
        .map(|t| format!(", required {t}"))
        .unwrap_or_default();
    match r.state {
        ResultState::Missing => {
            return format!("No {} evidence for {}.", source_name(r), r.label);
        }
        ResultState::Stale => {
            return format!(
                "{}: the {} evidence is older than its maximum age.",
                r.label,
                source_name(r)
            );
        }
        _ => {}
    }
    if fact(r) == "rollback_ready" {
        let target = current
            .rollback
            .as_ref()
            .map(|rb| format!(" for {}", rb.release))
            .unwrap_or_default();
        return format!("Rollback evidence is missing: no rollback image is attached{target}.");
    }
    match (
        before.and_then(number),
        r.observed.as_deref().and_then(number),
    ) {
        (Some(b), Some(a)) if a > b => format!(
            "{} rose from {} at the last ALLOW to {observed}{required}.",
            r.label,
            before.unwrap_or_default()
        ),
        (Some(b), Some(a)) if a < b => format!(
            "{} fell from {} at the last ALLOW to {observed}{required}.",
            r.label,
            before.unwrap_or_default()
        ),
        _ => format!("{}: observed {observed}{required}.", r.label),
    }
}

fn source_name(r: &PolicyResult) -> &str {
    r.source.as_deref().unwrap_or(r.id.as_str())
}

/// The leading number of an observed value (`2.7%` → 2.7, `240ms` → 240).
fn number(text: &str) -> Option<f64> {
    let t = text.trim();
    let end = t
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && *c == '-')))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse().ok()
}

fn signals(current: &PassportSpec, findings: &[Finding]) -> Vec<Signal> {
    let mut out = Vec::new();
    let sync = current
        .evidence
        .iter()
        .filter(|e| SYNC_CONNECTORS.contains(&e.connector.as_str()))
        .max_by_key(|e| e.observed_at);
    for f in findings.iter().filter(|f| f.state == ResultState::Fail) {
        let Some(r) = result(current, &f.rule_id) else {
            continue;
        };
        let observed = r.observed.clone().unwrap_or_default();
        if fact(r).contains("incident") {
            out.push(Signal::IncidentOpen {
                rule_id: f.rule_id.clone(),
                observed,
            });
            continue;
        }
        if let (Some(sync), Some(observed_at)) = (sync, r.observed_at)
            && METRIC_CONNECTORS.contains(&connector(r))
            && sync.observed_at <= observed_at
        {
            out.push(Signal::RiseAfterSync {
                rule_id: f.rule_id.clone(),
                observed,
                before: f.at_last_allow.clone(),
                sync_connector: sync.connector.clone(),
                synced_at: sync.observed_at,
                observed_at,
            });
        }
    }
    out.extend(
        current
            .evidence
            .iter()
            .filter(|e| e.status == "stale")
            .map(|e| Signal::StaleConnector {
                connector: e.connector.clone(),
                observed_at: e.observed_at,
                max_age_seconds: e.max_age_seconds,
            }),
    );
    out
}

fn compare(allow: &PassportSpec, current: &PassportSpec) -> Comparison {
    let mut changes = Vec::new();
    let mut push = |what: &str, before: &str, after: &str| {
        if before != after {
            changes.push(Change {
                what: what.to_string(),
                before: before.to_string(),
                after: after.to_string(),
            });
        }
    };
    push("release", &allow.release, &current.release);
    push(
        "artifact digest",
        &allow.artifact.digest,
        &current.artifact.digest,
    );
    push("policy hash", &allow.policy.hash, &current.policy.hash);
    for r in &current.policy_results {
        let before = result(allow, &r.id);
        push(
            &format!("check {}", r.id),
            &before.map_or_else(|| "absent".to_string(), describe),
            &describe(r),
        );
    }
    let connectors = |p: &PassportSpec| -> BTreeSet<String> {
        p.evidence.iter().map(|e| e.connector.clone()).collect()
    };
    push(
        "evidence connectors",
        &list(connectors(allow)),
        &list(connectors(current)),
    );
    let approvers = |p: &PassportSpec| -> BTreeSet<String> {
        p.approvals
            .iter()
            .filter(|a| a.counted)
            .map(|a| a.actor.clone())
            .collect()
    };
    push(
        "counted approvals",
        &list(approvers(allow)),
        &list(approvers(current)),
    );
    let rollback = |p: &PassportSpec| match &p.rollback {
        Some(r) if r.ready => format!("{} ready", r.release),
        Some(r) => format!("{} not ready", r.release),
        None => "none".to_string(),
    };
    push("rollback", &rollback(allow), &rollback(current));
    Comparison {
        allowed_at: allow.generated_at,
        allowed_release: allow.release.clone(),
        changes,
    }
}

fn describe(r: &PolicyResult) -> String {
    let state = match r.state {
        ResultState::Pass => "pass",
        ResultState::Fail => "fail",
        ResultState::Stale => "stale",
        ResultState::Missing => "missing",
        ResultState::Waived => "waived",
    };
    match &r.observed {
        Some(o) => format!("{state} ({o})"),
        None => state.to_string(),
    }
}

fn list(items: BTreeSet<String>) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.into_iter().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Passport;

    /// The seed's HOLD passport (examples/passport.yaml).
    fn seed() -> PassportSpec {
        let text = include_str!("../../examples/passport.yaml");
        let p: Passport = serde_saphyr::from_str(text).expect("examples/passport.yaml");
        p.spec
    }

    /// An ALLOW of the previous release an hour earlier: error rate 1.1%,
    /// rollback attached, change linked, another digest and policy.
    fn last_allow(seed: &PassportSpec) -> PassportSpec {
        let mut p = seed.clone();
        p.decision = Decision::Allow;
        p.release = "v2.18.3".into();
        p.artifact.digest = "sha256:1111".into();
        p.policy.hash = "sha256:0000".into();
        p.generated_at = seed.generated_at - jiff::SignedDuration::from_hours(1);
        p.rollback = Some(crate::api::RollbackRecord {
            ready: true,
            ..seed.rollback.clone().expect("seed rollback")
        });
        for r in &mut p.policy_results {
            r.state = ResultState::Pass;
            match r.id.as_str() {
                "error-rate" => r.observed = Some("1.1%".into()),
                "rollback-image" | "change-approval" => r.observed = Some("true".into()),
                _ => {}
            }
        }
        p
    }

    #[test]
    fn the_seed_hold_names_the_error_rise_the_missing_rollback_and_the_unlinked_change() {
        let seed = seed();
        let allow = last_allow(&seed);
        let inv = investigate(&seed, &[&allow]);
        assert_eq!(inv.decision, Decision::Hold);
        let ids: Vec<&str> = inv.findings.iter().map(|f| f.rule_id.as_str()).collect();
        // HOLD checks before the approval one.
        assert_eq!(ids, ["error-rate", "rollback-image", "change-approval"]);
        assert_eq!(
            inv.findings[0].explanation,
            "Prometheus error rate above 2% rose from 1.1% at the last ALLOW to 2.7%, required < 2%."
        );
        assert_eq!(
            inv.findings[1].explanation,
            "Rollback evidence is missing: no rollback image is attached for v2.17.9."
        );
        assert_eq!(
            inv.findings[2].explanation,
            "Jira change approval not linked: observed false, required = true."
        );
        assert!(inv.findings.iter().all(|f| f.failing_passports == 1));
        assert!(matches!(
            &inv.signals[..],
            [Signal::RiseAfterSync { rule_id, sync_connector, before: Some(before), .. }]
                if rule_id == "error-rate" && sync_connector == "argocd" && before == "1.1%"
        ));
        let since = inv.since_last_allow.expect("a last ALLOW");
        assert_eq!(since.allowed_release, "v2.18.3");
        let what: Vec<&str> = since.changes.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "release",
                "artifact digest",
                "policy hash",
                "check error-rate",
                "check rollback-image",
                "check change-approval",
                "rollback"
            ]
        );
        assert_eq!(inv.next_actions, seed.next_actions);
    }

    #[test]
    fn failing_since_counts_the_unbroken_run_of_failing_passports() {
        let seed = seed();
        let allow = last_allow(&seed);
        let mut hold1 = seed.clone();
        hold1.generated_at = seed.generated_at - jiff::SignedDuration::from_mins(20);
        let mut hold2 = seed.clone();
        hold2.generated_at = seed.generated_at - jiff::SignedDuration::from_mins(10);
        // A passport after the current one is no history of it.
        let mut later = allow.clone();
        later.generated_at = seed.generated_at + jiff::SignedDuration::from_mins(10);
        let inv = investigate(&seed, &[&hold2, &later, &allow, &hold1]);
        let error = &inv.findings[0];
        assert_eq!(error.failing_passports, 3);
        assert_eq!(error.failing_since, hold1.generated_at);
        assert_eq!(
            inv.since_last_allow.expect("allow").allowed_at,
            allow.generated_at
        );
    }

    #[test]
    fn without_an_earlier_allow_there_is_nothing_to_compare() {
        let seed = seed();
        let inv = investigate(&seed, &[]);
        assert!(inv.since_last_allow.is_none());
        assert_eq!(
            inv.findings[0].explanation,
            "Prometheus error rate above 2%: observed 2.7%, required < 2%."
        );
    }

    #[test]
    fn incidents_and_stale_connectors_are_signals() {
        let mut p = seed();
        for r in &mut p.policy_results {
            if r.id == "no-active-sev1" {
                r.state = ResultState::Fail;
                r.observed = Some("1".into());
            }
        }
        p.evidence[2].status = "stale".into();
        let inv = investigate(&p, &[]);
        assert_eq!(inv.findings[0].rule_id, "no-active-sev1", "BLOCK first");
        assert!(inv.signals.contains(&Signal::IncidentOpen {
            rule_id: "no-active-sev1".into(),
            observed: "1".into()
        }));
        assert!(inv.signals.iter().any(
            |s| matches!(s, Signal::StaleConnector { connector, .. } if connector == "prometheus")
        ));
    }

    #[test]
    fn numbers_are_read_from_observed_values() {
        assert_eq!(number("2.7%"), Some(2.7));
        assert_eq!(number("240ms"), Some(240.0));
        assert_eq!(number("-3"), Some(-3.0));
        assert_eq!(number("Synced"), None);
    }
}
