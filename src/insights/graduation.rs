//! The shadow → enforce graduation report: for each gate in shadow mode,
//! the decisions enforce mode would have denied, and whether the gate is
//! ready to enforce.

use std::borrow::Cow;
use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::api::{Decision, Mode, Passport, ReleaseGate};

use super::{failing, gate_key, passport_gate_key};

/// Passports (newest first) the verdict looks at.
pub const GRADUATION_WINDOW: usize = 10;
/// Fewer passports than this are not enough evidence to enforce.
pub const GRADUATION_MIN_PASSPORTS: usize = 3;

/// A decision enforce mode would have denied.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WouldDeny {
    pub passport: String,
    pub generated_at: Timestamp,
    pub release: String,
    pub image: String,
    pub decision: Decision,
    /// Why the webhook would deny, in one sentence.
    pub why: String,
    /// Rules that failed, or required rules whose evidence was stale or missing.
    pub failing_checks: Vec<String>,
    pub next_actions: Vec<String>,
    /// A later passport allowed the same image (the denial would have been temporary).
    pub resolved: bool,
}

/// The graduation verdict of one shadow gate.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GateGraduation {
    pub namespace: String,
    pub gate: String,
    pub service: String,
    pub environment: String,
    /// Kind of the guarded workload, when the gate names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_kind: Option<String>,
    /// Passports issued in shadow mode (still retained).
    pub passports: usize,
    /// Of which enforce mode would have denied.
    pub would_deny_count: usize,
    pub ready_to_enforce: bool,
    pub reason: String,
    /// Newest first.
    pub would_deny: Vec<WouldDeny>,
}

/// Graduation verdicts of every shadow gate, sorted by namespace and name.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GraduationReport {
    /// Passports the verdict looks at, newest first.
    pub window: usize,
    /// Fewest passports for a gate to be ready.
    pub min_passports: usize,
    pub gates: Vec<GateGraduation>,
}

/// Why enforce mode would deny a decision for a target of kind
/// `target_kind`, if it would: any decision but ALLOW, except
/// ALLOW_WITH_CANARY on an Argo `Rollout` (the webhook also checks the
/// Rollout's strategy, which the gate does not record).
pub fn would_deny(decision: Decision, target_kind: Option<&str>) -> Option<String> {
    match decision {
        Decision::Allow => None,
        Decision::AllowWithCanary if target_kind == Some("Rollout") => None,
        Decision::AllowWithCanary => Some(format!(
            "ALLOW_WITH_CANARY needs a progressive rollout (an Argo Rollout with a canary or blue-green strategy); the target is {}",
            target_kind.map_or("not declared".to_string(), |k| format!("a {k}"))
        )),
        d => Some(format!("decision {d} does not allow promotion")),
    }
}

/// For each gate in shadow mode: the shadow-mode passports enforce mode
/// would have denied (decision not ALLOW, or ALLOW_WITH_CANARY on a target
/// that is not an Argo Rollout), and a verdict. A gate is ready to enforce
/// when it has at least [`GRADUATION_MIN_PASSPORTS`] shadow passports, its
/// latest would be admitted, and none of the last [`GRADUATION_WINDOW`]
/// would have been denied without a later passport allowing the same image.
pub fn graduation(gates: &[&ReleaseGate], passports: &[&Passport]) -> GraduationReport {
    let mut out = Vec::new();
    let mut by_gate: HashMap<(&str, Cow<'_, str>), Vec<&Passport>> = HashMap::new();
    for p in passports.iter().filter(|p| p.spec.mode == Mode::Shadow) {
        by_gate.entry(passport_gate_key(p)).or_default().push(p);
    }
    for gate in gates.iter().filter(|g| g.spec.mode == Mode::Shadow) {
        let key = gate_key(gate);
        let target_kind = gate.spec.target.as_ref().map(|t| t.kind.clone());
        let mut own: Vec<&Passport> = by_gate
            .remove(&(key.0, Cow::Borrowed(key.1)))
            .unwrap_or_default();
        // Newest first.
        own.sort_by_key(|p| std::cmp::Reverse(p.spec.generated_at));
        let mut denied = Vec::new();
        for (i, p) in own.iter().enumerate() {
            let s = &p.spec;
            let Some(why) = would_deny(s.decision, target_kind.as_deref()) else {
                continue;
            };
            let resolved = own[..i].iter().any(|later| {
                later.spec.artifact.digest == s.artifact.digest
                    && would_deny(later.spec.decision, target_kind.as_deref()).is_none()
            });
            denied.push((
                i,
                WouldDeny {
                    passport: p.metadata.name.clone().unwrap_or_default(),
                    generated_at: s.generated_at,
                    release: s.release.clone(),
                    image: s.artifact.image.clone(),
                    decision: s.decision,
                    why,
                    failing_checks: s
                        .policy_results
                        .iter()
                        .filter(|r| failing(r))
                        .map(|r| r.id.clone())
                        .collect(),
                    next_actions: s.next_actions.clone(),
                    resolved,
                },
            ));
        }
        let recent_unresolved: Vec<&WouldDeny> = denied
            .iter()
            .filter(|(i, d)| *i < GRADUATION_WINDOW && !d.resolved)
            .map(|(_, d)| d)
            .collect();
        let latest_denied = denied.first().filter(|(i, _)| *i == 0).map(|(_, d)| d);
        let (ready, reason) = if own.len() < GRADUATION_MIN_PASSPORTS {
            (
                false,
                format!(
                    "only {} shadow passport(s) so far; at least {GRADUATION_MIN_PASSPORTS} are needed to judge",
                    own.len()
                ),
            )
        } else if let Some(d) = latest_denied {
            (
                false,
                format!(
                    "enforce mode would deny the latest passport {} ({} {}): {}",
                    d.passport, d.release, d.decision, d.why
                ),
            )
        } else if !recent_unresolved.is_empty() {
            let d = recent_unresolved[0];
            (
                false,
                format!(
                    "{} of the last {} passports would have been denied and never allowed later (latest: {} {} {})",
                    recent_unresolved.len(),
                    own.len().min(GRADUATION_WINDOW),
                    d.passport,
                    d.release,
                    d.decision
                ),
            )
        } else {
            let temporary = denied
                .iter()
                .filter(|(i, _)| *i < GRADUATION_WINDOW)
                .count();
            let note = if temporary > 0 {
                format!(
                    "; {temporary} earlier decision(s) would have held a release until its evidence was fixed"
                )
            } else {
                String::new()
            };
            (
                true,
                format!(
                    "enforce mode would admit the latest passport, and none of the last {} would have been denied for good{note}",
                    own.len().min(GRADUATION_WINDOW)
                ),
            )
        };
        out.push(GateGraduation {
            namespace: key.0.to_string(),
            gate: key.1.to_string(),
            service: gate.spec.service.clone(),
            environment: gate.spec.environment.clone(),
            target_kind,
            passports: own.len(),
            would_deny_count: denied.len(),
            ready_to_enforce: ready,
            reason,
            would_deny: denied.into_iter().map(|(_, d)| d).collect(),
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.gate).cmp(&(&b.namespace, &b.gate)));
    GraduationReport {
        window: GRADUATION_WINDOW,
        min_passports: GRADUATION_MIN_PASSPORTS,
        gates: out,
    }
}
