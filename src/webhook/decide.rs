//! The admission decision, as a pure function of what the webhook knows: the
//! old and new workload, the gate named by its label, the gate's current
//! Passport, a way to verify passports, and the time. No I/O.
//!
//! Branches, in order:
//! 1. pod template images unchanged (scale, label, annotation edits) → admit;
//! 2. the gate named by the label does not exist → deny (the mode is unknown,
//!    so the label is taken at its word);
//! 3. the gate's current Passport must exist, verify (signature and known key
//!    id), have been issued for this gate, be fresh, cover every new image
//!    digest (containers and initContainers, pinned by digest) and decide
//!    ALLOW (or ALLOW_WITH_CANARY for a Rollout with a canary or blue-green
//!    strategy) → admit;
//! 4. otherwise, when every new image is a release this gate **proved**
//!    (`status.provenReleases`: it held an ALLOW Passport of the gate and
//!    ran, and its rollback window has not passed) → admit with a warning and
//!    a `RollbackAdmitted` Event, whatever the passport says: an incident
//!    rollback is never blocked. A declared `spec.rollback.image` the gate
//!    never proved is an ordinary promotion;
//! 5. otherwise, in enforce mode (the gate's, or the minimum the operator
//!    applied: `status.mode`) deny; in shadow mode admit with warnings that
//!    say what enforce would do.
//!
//! **Fresh** means: the Passport is the one named by the gate's
//! `status.passportName`; the gate's `status.observedGeneration` equals its
//! `metadata.generation` (the controller has evaluated the current spec); the
//! generation recorded (and signed) in the Passport's `gate` reference equals
//! it too; and, when the gate's status announces its next evaluation, that
//! time plus [`EVALUATION_GRACE`] has not passed (the controller is keeping
//! the decision up to date).

use std::sync::Arc;

use serde_json::Value;

use crate::api::{Decision, Mode, PassportSpec, ProvenRelease, ReleaseGate, ResultState};
use crate::passport::{VerifyError, VerifyingKeySet};

/// How long after `status.nextEvaluationAt` a decision still counts as fresh.
pub const EVALUATION_GRACE: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

/// The workload kinds the webhook understands.
pub const KINDS: [&str; 4] = ["Deployment", "StatefulSet", "DaemonSet", "Rollout"];

/// The object under review: what a decision needs of it.
#[derive(Clone, Copy, Debug)]
pub struct Review<'a> {
    /// `Deployment`, `StatefulSet`, `DaemonSet` or `Rollout`.
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// Pod template images of the old object; `None` on CREATE.
    pub old: Option<&'a [Image<'a>]>,
    /// Pod template images of the new object.
    pub new: &'a [Image<'a>],
    /// The new object is an Argo Rollout with a canary or blue-green strategy.
    pub progressive: bool,
    /// The authenticated user of the request (`userInfo.username`), for Events.
    pub user: Option<&'a str>,
}

/// A Passport as stored: its name and the raw JSON of its `spec`.
#[derive(Clone, Copy, Debug)]
pub struct StoredPassport<'a> {
    pub name: &'a str,
    pub spec: &'a Value,
    /// The stored object it comes from, when it comes from the cache (the
    /// cache memoises verification per object).
    pub object: Option<&'a Arc<super::cache::StoredObject>>,
}

/// Why a passport cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PassportProblem {
    /// The signature check failed.
    Signature(VerifyError),
    /// It verifies but is not a passport document this version understands.
    Malformed(String),
}

/// Verifies a stored passport and parses it.
pub trait PassportVerifier {
    fn check(&self, passport: &StoredPassport<'_>) -> Result<Arc<PassportSpec>, PassportProblem>;
}

impl PassportVerifier for VerifyingKeySet {
    fn check(&self, passport: &StoredPassport<'_>) -> Result<Arc<PassportSpec>, PassportProblem> {
        check_passport(passport.spec, self)
    }
}

/// Verifies the stored passport's envelope and returns the document decoded
/// from the verified payload (what the cache memoises). The readable copy
/// stored beside the envelope is never read.
pub fn check_passport(
    spec: &Value,
    keys: &VerifyingKeySet,
) -> Result<Arc<PassportSpec>, PassportProblem> {
    crate::passport::verify_value(spec, keys)
        .map(|verified| Arc::new(verified.passport))
        .map_err(PassportProblem::Signature)
}

/// What the webhook answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    AdmitWithWarning(Vec<String>),
    Deny(String),
}

/// Machine-readable reason, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Pod template images did not change.
    Unchanged,
    /// The passport allows the change.
    Allowed,
    /// Shadow mode: admitted although enforce mode would deny.
    Shadow,
    /// Every new image is the declared rollback image.
    Rollback,
    /// The gate named by the label does not exist.
    NoGate,
    /// The gate has no current passport.
    NoPassport,
    /// The passport does not verify.
    BadSignature,
    /// The passport was issued for another gate.
    ForeignPassport,
    /// The passport does not describe the gate's current spec.
    Stale,
    /// A new image is not pinned by digest.
    NotPinned,
    /// A new image digest is not the passport's artifact digest.
    NotCovered,
    /// The passport's decision does not allow promotion.
    Decision,
    /// Pushed evidence on a ReleaseGate claims to be observed in the future.
    FutureEvidence,
    /// The request cannot be read.
    Malformed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unchanged => "unchanged",
            Reason::Allowed => "allowed",
            Reason::Shadow => "shadow",
            Reason::Rollback => "rollback",
            Reason::NoGate => "no_gate",
            Reason::NoPassport => "no_passport",
            Reason::BadSignature => "bad_signature",
            Reason::ForeignPassport => "foreign_passport",
            Reason::Stale => "stale",
            Reason::NotPinned => "not_pinned",
            Reason::NotCovered => "not_covered",
            Reason::Decision => "decision",
            Reason::FutureEvidence => "future_evidence",
            Reason::Malformed => "malformed",
        }
    }
}

/// An Event to record on the gate (after answering).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateEvent {
    /// `AdmissionDenied`, `RollbackAdmitted` or `EvidenceRefused`.
    pub reason: &'static str,
    pub note: String,
    /// Warning (true) or Normal Event.
    pub warning: bool,
    /// The authenticated user of the request.
    pub actor: Option<String>,
}

/// The decision with what the server records about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub reason: Reason,
    /// Mode of the gate, when there is one.
    pub mode: Option<Mode>,
    /// Event for the gate, when one should be recorded.
    pub event: Option<GateEvent>,
}

impl Outcome {
    pub(crate) fn new(verdict: Verdict, reason: Reason, mode: Option<Mode>) -> Self {
        Self {
            verdict,
            reason,
            mode,
            event: None,
        }
    }

    pub fn allowed(&self) -> bool {
        !matches!(self.verdict, Verdict::Deny(_))
    }
}

/// One container image of a pod template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Image<'a> {
    pub container: &'a str,
    pub image: &'a str,
}

/// `sha256:<64 lowercase hex>` of an image pinned by digest.
pub fn image_digest(image: &str) -> Option<&str> {
    let (name, digest) = image.rsplit_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    (!name.is_empty()
        && hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(digest)
}

/// Images in `new` that `old` does not run (all of them on CREATE), each
/// once. Pod templates run a handful of containers: linear scans.
pub fn new_images<'a>(old: Option<&[Image<'_>]>, new: &[Image<'a>]) -> Vec<Image<'a>> {
    let before = old.unwrap_or_default();
    let mut changed: Vec<Image<'a>> = Vec::new();
    for i in new {
        if !before.iter().any(|b| b.image == i.image) && !changed.iter().any(|c| c.image == i.image)
        {
            changed.push(*i);
        }
    }
    changed
}

/// Whether the pod template images differ (as lists, in order).
pub fn images_changed(old: Option<&[Image<'_>]>, new: &[Image<'_>]) -> bool {
    match old {
        None => true,
        Some(old) => old != new,
    }
}

/// Decides one admission request.
pub fn decide(
    review: &Review<'_>,
    gate_name: &str,
    gate: Option<&ReleaseGate>,
    passport: Option<StoredPassport<'_>>,
    verifier: &dyn PassportVerifier,
    now: jiff::Timestamp,
) -> Outcome {
    if !images_changed(review.old, review.new) {
        return Outcome::new(Verdict::Admit, Reason::Unchanged, gate.map(|g| g.spec.mode));
    }
    let what = || format!("{} {}/{}", review.kind, review.namespace, review.name);
    let Some(gate) = gate else {
        return Outcome::new(
            Verdict::Deny(format!(
                "Release Passport: {} is labelled {}={gate_name} but ReleaseGate {}/{gate_name} does not exist. \
                 Create the ReleaseGate (kubectl apply -f releasegate.yaml -n {}) and wait for its Passport, \
                 or remove the label to take the workload out of the gate.",
                what(),
                crate::api::GATE_LABEL,
                review.namespace,
                review.namespace
            )),
            Reason::NoGate,
            None,
        );
    };
    // The gate's mode, or enforce when the operator applied a platform minimum.
    let mode = gate.spec.mode.at_least(
        gate.status
            .as_ref()
            .and_then(|s| s.mode)
            .unwrap_or(Mode::Shadow),
    );
    let gate_id = || format!("ReleaseGate {}/{gate_name}", review.namespace);
    let changed = new_images(review.old, review.new);
    let actor = review.user.map(str::to_string);

    let findings = evaluate(review, gate_name, gate, passport, verifier, now, &changed);
    let mut findings = match findings {
        Ok(decision) => {
            let verdict = match mode {
                Mode::Shadow => Verdict::AdmitWithWarning(vec![format!(
                    "Release Passport (shadow): {} passport decision {decision}; enforce mode would admit this change",
                    gate_id()
                )]),
                Mode::Enforce => Verdict::Admit,
            };
            return Outcome::new(verdict, Reason::Allowed, Some(mode));
        }
        Err(findings) => findings,
    };

    // The incident rollback path: a release this gate proved is never blocked.
    if let Some(proven) = proven_rollback(gate, &changed, now) {
        let note = format!(
            "Rollback of {} to proven release {} ({}) admitted under the current decision: the gate never blocks an incident rollback to a release it proved",
            what(),
            proven.release,
            proven.digest
        );
        let mut outcome = Outcome::new(
            Verdict::AdmitWithWarning(vec![format!(
                "Release Passport: rollback of {} to release {} ({}), which {} proved, admitted although {}; an Event was recorded on the gate",
                what(),
                proven.release,
                proven.digest,
                gate_id(),
                findings.summary
            )]),
            Reason::Rollback,
            Some(mode),
        );
        outcome.event = Some(GateEvent {
            reason: "RollbackAdmitted",
            note,
            warning: true,
            actor,
        });
        return outcome;
    }
    if let Some(detail) = unproven_rollback(gate, &changed) {
        findings.details.insert(0, detail);
    }

    match mode {
        Mode::Shadow => {
            let mut warnings = vec![format!(
                "Release Passport (shadow): {}: enforce mode would deny this change ({})",
                gate_id(),
                findings.summary
            )];
            warnings.extend(
                findings
                    .details
                    .iter()
                    .map(|d| format!("Release Passport (shadow): {d}")),
            );
            Outcome::new(
                Verdict::AdmitWithWarning(warnings),
                Reason::Shadow,
                Some(mode),
            )
        }
        Mode::Enforce => {
            let message = format!(
                "Release Passport denied {} ({}, enforce mode): {}. {}",
                what(),
                gate_id(),
                findings.summary,
                findings.details.join(" ")
            );
            let mut outcome = Outcome::new(
                Verdict::Deny(message.trim_end().to_string()),
                findings.reason,
                Some(mode),
            );
            outcome.event = Some(GateEvent {
                reason: "AdmissionDenied",
                note: format!("Change of {} denied: {}", what(), findings.summary),
                warning: true,
                actor,
            });
            outcome
        }
    }
}

/// The proven release every new image goes back to, when they all go back
/// to one the gate proved and its rollback window has not passed.
fn proven_rollback<'g>(
    gate: &'g ReleaseGate,
    changed: &[Image<'_>],
    now: jiff::Timestamp,
) -> Option<&'g ProvenRelease> {
    let proven = &gate.status.as_ref()?.proven_releases;
    let mut target = None;
    for image in changed {
        let digest = image_digest(image.image)?;
        let p = proven
            .iter()
            .find(|p| p.digest == digest && p.rollback_until.is_none_or(|until| now < until))?;
        target = Some(p);
    }
    target
}

/// When a new image is the gate's declared rollback image but not a release
/// the gate proved: the sentence that says why it is gated like any promotion.
fn unproven_rollback(gate: &ReleaseGate, changed: &[Image<'_>]) -> Option<String> {
    let declared = gate.spec.rollback.as_ref()?;
    let digest = image_digest(declared.image.as_deref()?)?;
    changed
        .iter()
        .any(|i| image_digest(i.image) == Some(digest))
        .then(|| {
            format!(
                "{} is the gate's declared rollback image (release {}), but this gate never proved it (it never held an ALLOW Passport of the gate and ran), so it is a promotion like any other: only releases in the gate's status.provenReleases are admitted as rollbacks.",
                digest, declared.release
            )
        })
}

/// Why enforce mode would deny: the first reason, a one-line summary and the
/// details (failing checks, next actions) as sentences.
struct Findings {
    reason: Reason,
    summary: String,
    details: Vec<String>,
}

fn evaluate(
    review: &Review<'_>,
    gate_name: &str,
    gate: &ReleaseGate,
    passport: Option<StoredPassport<'_>>,
    verifier: &dyn PassportVerifier,
    now: jiff::Timestamp,
    changed: &[Image<'_>],
) -> Result<Decision, Findings> {
    let ns = review.namespace;
    let status = gate.status.as_ref();
    let current = status.and_then(|s| s.passport_name.as_deref());
    let wait = || {
        format!(
            "Wait for the controller to evaluate the gate (kubectl get releasegate {gate_name} -n {ns}), then retry."
        )
    };
    let Some(passport) = passport.filter(|p| Some(p.name) == current) else {
        return Err(Findings {
            reason: Reason::NoPassport,
            summary: match current {
                Some(name) => format!("its current Passport {name} does not exist"),
                None => "the gate has no Passport yet".to_string(),
            },
            details: vec![wait()],
        });
    };
    let pname = passport.name;
    let spec = match verifier.check(&passport) {
        Ok(spec) => spec,
        Err(problem) => {
            let why = match &problem {
                PassportProblem::Signature(e) => format!("{} ({e})", e.check()),
                PassportProblem::Malformed(e) => format!("Malformed ({e})"),
            };
            return Err(Findings {
                reason: Reason::BadSignature,
                summary: format!("Passport {pname} does not verify: {why}"),
                details: vec![format!(
                    "Its signed content was changed or it was signed by a key the operator does not trust, so it admits nothing. \
                     Delete it (kubectl delete passport {pname} -n {ns}) and let the controller re-evaluate the gate."
                )],
            });
        }
    };
    // Issued for this gate.
    match &spec.gate {
        Some(g) if g.name == gate_name && g.namespace == ns => {}
        other => {
            return Err(Findings {
                reason: Reason::ForeignPassport,
                summary: format!(
                    "Passport {pname} was issued for {}, not for this gate",
                    other
                        .as_ref()
                        .map(|g| format!("ReleaseGate {}/{}", g.namespace, g.name))
                        .unwrap_or_else(|| "no gate".to_string())
                ),
                details: vec![wait()],
            });
        }
    }
    // Fresh.
    let generation = gate.metadata.generation;
    let observed = status.and_then(|s| s.observed_generation);
    let signed_generation = spec.gate.as_ref().and_then(|g| g.generation);
    let overdue = status
        .and_then(|s| s.next_evaluation_at)
        .and_then(|next| next.checked_add(EVALUATION_GRACE).ok())
        .is_some_and(|deadline| now > deadline);
    if observed != generation || signed_generation != generation || overdue {
        let why = if overdue {
            "the gate's evaluation is overdue (is the controller running?)".to_string()
        } else {
            format!(
                "it describes generation {} of the gate, the current spec is generation {}",
                signed_generation.or(observed).unwrap_or_default(),
                generation.unwrap_or_default()
            )
        };
        return Err(Findings {
            reason: Reason::Stale,
            summary: format!("Passport {pname} is not current: {why}"),
            details: vec![wait()],
        });
    }

    let mut problems: Vec<(Reason, String)> = Vec::new();
    let covered = spec.artifact.digest.as_str();
    for image in changed {
        match image_digest(image.image) {
            None => problems.push((
                Reason::NotPinned,
                format!(
                    "image {:?} (container {}) is not pinned by digest; enforce mode admits only image@sha256:<digest> covered by the passport",
                    image.image, image.container
                ),
            )),
            Some(d) if d != covered => problems.push((
                Reason::NotCovered,
                format!(
                    "image {:?} (container {}) is not covered by Passport {pname}, which covers {covered}",
                    image.image, image.container
                ),
            )),
            Some(_) => {}
        }
    }
    let decision = spec.decision;
    let allowed = decision == Decision::Allow
        || (decision == Decision::AllowWithCanary && review.progressive);
    if !allowed {
        let why = if decision == Decision::AllowWithCanary {
            format!(
                "Passport {pname} decided {decision}, which needs a progressive rollout (an Argo Rollout with a canary or blue-green strategy)"
            )
        } else {
            format!("Passport {pname} decided {decision}")
        };
        problems.push((Reason::Decision, why));
    }
    if problems.is_empty() {
        return Ok(decision);
    }

    let mut details = Vec::new();
    let failing: Vec<String> = spec
        .policy_results
        .iter()
        // What the engine counts as failing: a failed rule, or a required
        // rule without fresh evidence (optional missing evidence only lowers
        // confidence).
        .filter(|r| match r.state {
            ResultState::Fail => true,
            ResultState::Stale | ResultState::Missing => r.required,
            ResultState::Pass | ResultState::Waived => false,
        })
        .map(|r| {
            let state = match r.state {
                ResultState::Fail => "fail",
                ResultState::Stale => "stale",
                _ => "missing",
            };
            let mut s = format!("{} ({state}", r.id);
            if let Some(o) = &r.observed {
                s.push_str(&format!(", observed {o}"));
            }
            if let Some(t) = &r.threshold {
                s.push_str(&format!(", threshold {t}"));
            }
            s.push(')');
            s
        })
        .collect();
    if !failing.is_empty() {
        details.push(format!("Failing checks: {}.", failing.join(", ")));
    }
    if !spec.next_actions.is_empty() {
        details.push(format!("Next actions: {}", spec.next_actions.join(" ")));
    }
    if problems.iter().any(|(r, _)| *r != Reason::Decision) {
        details.push(format!(
            "To promote another image, set spec.artifact.image of the gate to it and wait for a passport that allows it (kubectl get passport -n {ns} -l {}={gate_name}).",
            crate::api::GATE_LABEL
        ));
    }
    Err(Findings {
        reason: problems[0].0,
        summary: problems
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        details,
    })
}
