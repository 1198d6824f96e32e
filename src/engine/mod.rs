//! The decision engine: policy evaluation over evidence, with no Kubernetes
//! I/O. Callers gather a [`PolicySpec`](crate::api::PolicySpec), a
//! [`ReleaseGateSpec`](crate::api::ReleaseGateSpec) and evidence documents,
//! [`compile`] the policy once, then [`evaluate`] as often as evidence changes.
//!
//! The rules of a decision (documented for users in `docs/decisions.md`):
//! - a rule *passes*, *fails* (fresh evidence, condition does not hold), is
//!   *missing* (no evidence for its fact) or *stale* (evidence older than its
//!   maximum age);
//! - a failing rule asks for its `onFail` decision; a missing or stale
//!   *required* rule asks for HOLD; an optional one asks for nothing;
//! - an active waiver turns any non-passing state into `waived`; an expired
//!   one is ignored and the trace says so;
//! - enough distinct approvers satisfy the failures of REQUIRE_APPROVAL rules;
//! - the decision is the most severe one asked for, in the order of
//!   [`Decision`](crate::api::Decision)'s `Ord` (BLOCK, ROLLBACK_RECOMMENDED,
//!   HOLD, REQUIRE_APPROVAL, ALLOW_WITH_CANARY, ALLOW), raised to at least
//!   HOLD (or ALLOW_WITH_CANARY within the canary band) when confidence is
//!   below `minConfidence`.

mod compile;
mod evaluate;
mod evidence;
pub mod grants;
pub mod template;
mod unavailable;
pub mod value;

use std::fmt;

pub use compile::{CompiledPolicy, DEFAULT_WAIVER_MAX_SECONDS, Stage, compile};
pub use evaluate::{
    EvaluateError, Evaluation, EvaluationInput, GateContext, GrantOutcome, evaluate, image_digest,
};
pub use evidence::CLOCK_SKEW_SECONDS;
pub use grants::{ApprovalInput, WaiverInput};
pub use unavailable::{Unavailable, explain_unavailable};

use crate::api::{Decision, PolicySpec};

/// Evidence without `maxAgeSeconds` (and no rule override) is stale after this.
pub const DEFAULT_MAX_AGE_SECONDS: i64 = 300;

/// Version of the passport document format written by this engine.
/// `2026-06`: carried as an in-toto attestation; evidence summaries carry
/// digests; the trace no longer repeats each rule's policy result.
pub const PASSPORT_VERSION: &str = "2026-06";

/// The built-in connector whose facts come from the ReleaseGate itself:
/// `rollback_ready`, `rollback_proven`, `rollback_release`, `rollback_image`,
/// `approvals`, `artifact_digest`, `source_sha`. Always fresh.
pub const GATE_CONNECTOR: &str = "releasegate";

/// Why a policy is invalid, in a form a status condition can carry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{path}: {message}", rule_id.as_ref().map(|id| format!("rule {id}: ")).unwrap_or_default())]
pub struct PolicyError {
    /// The rule at fault, when one is.
    pub rule_id: Option<String>,
    /// The field at fault, relative to the policy's `spec`, e.g. `rules[2].condition.value`.
    pub path: String,
    /// A machine-matchable reason.
    pub reason: PolicyErrorReason,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Machine-matchable reasons for [`PolicyError`], used as condition reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyErrorReason {
    NoRules,
    DuplicateRuleId,
    InvalidOnFail,
    MissingCheck,
    MissingValue,
    InvalidValue,
    InvalidExpression,
    InvalidTemplate,
    UnknownRule,
}

impl PolicyErrorReason {
    /// The CamelCase reason, e.g. `InvalidExpression`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyErrorReason::NoRules => "NoRules",
            PolicyErrorReason::DuplicateRuleId => "DuplicateRuleId",
            PolicyErrorReason::InvalidOnFail => "InvalidOnFail",
            PolicyErrorReason::MissingCheck => "MissingCheck",
            PolicyErrorReason::MissingValue => "MissingValue",
            PolicyErrorReason::InvalidValue => "InvalidValue",
            PolicyErrorReason::InvalidExpression => "InvalidExpression",
            PolicyErrorReason::InvalidTemplate => "InvalidTemplate",
            PolicyErrorReason::UnknownRule => "UnknownRule",
        }
    }
}

impl fmt::Display for PolicyErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most severe of the decisions asked for; ALLOW when none is.
pub fn combine(decisions: impl IntoIterator<Item = Decision>) -> Decision {
    decisions.into_iter().max().unwrap_or(Decision::Allow)
}

/// `sha256:<hex>` of the RFC 8785 canonical JSON of a policy spec.
pub fn policy_hash(policy: &PolicySpec) -> String {
    // A PolicySpec always serialises: its maps have string keys.
    crate::passport::digest::canonical_sha256(policy).unwrap_or_default()
}
