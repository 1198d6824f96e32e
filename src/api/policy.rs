use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Conditions, Decision, Mode, Provenance, conditions_schema};

/// The decision rules a ReleaseGate is evaluated against.
///
/// Each rule reads one fact from one connector's evidence and says what the
/// decision becomes when the rule fails. Rule ids are unique within a Policy
/// (pre-deploy and post-deploy rules together), because waivers and
/// approvals refer to rules by id.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "releasepassport.io",
    version = "v1alpha1",
    kind = "Policy",
    plural = "policies",
    namespaced,
    status = "PolicyStatus",
    shortname = "rppol",
    category = "releasepassport",
    doc = "Policy holds the rules that decide whether a release may be promoted.",
    printcolumn(
        name = "Rules",
        type_ = "integer",
        json_path = ".status.ruleCount",
        description = "Number of pre-deploy rules"
    ),
    printcolumn(
        name = "Min-Confidence",
        type_ = "integer",
        json_path = ".spec.minConfidence"
    ),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "self.rules.all(r, self.rules.filter(s, s.id == r.id).size() == 1) && (!has(self.postDeploy) || self.postDeploy.rules.all(r, self.postDeploy.rules.filter(s, s.id == r.id).size() == 1 && !self.rules.exists(s, s.id == r.id)))"
).message("rule ids must be unique within a Policy (rules and postDeploy.rules together)"))]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// Rules evaluated before promotion. A release is promotable only when
    /// every required rule passes (or is waived, or approved where allowed).
    #[schemars(length(min = 1, max = 100))]
    pub rules: Vec<PolicyRule>,
    /// Minimum confidence, in percent, for an allowing decision. Below it the
    /// decision is at least HOLD. Confidence is the weighted share of required
    /// evidence that is present and fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub min_confidence: Option<u8>,
    /// When a release may proceed as ALLOW_WITH_CANARY, and under which constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryPolicy>,
    /// Which rule failures an approval can satisfy, and how many approvers it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalPolicy>,
    /// Runtime rules evaluated during the watch window after promotion.
    /// Failing them yields ROLLBACK_RECOMMENDED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_deploy: Option<PostDeployPolicy>,
    /// Which waivers count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<WaiverPolicy>,
    /// Which releases are rollback targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackPolicy>,
    /// The weakest mode gates using this Policy are evaluated in: with
    /// `enforce`, a gate whose `spec.mode` is `shadow` is evaluated, and
    /// guarded by the webhook, as `enforce` (its passports say so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_mode: Option<Mode>,
    /// Stop the line while an incident of this priority (or a more severe
    /// one) is open on the service: a BLOCK rule `incident-freeze` over the
    /// incident connector's facts, whose next action names the incident.
    /// `incidentFreeze: {}` freezes on Sev-1 (priority 1) PagerDuty incidents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_freeze: Option<IncidentFreeze>,
}

/// The incident freeze preset.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IncidentFreeze {
    /// Incident connector whose evidence is read: `pagerduty` (the default) or `opsgenie`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub connector: Option<String>,
    /// Freeze while an incident at this priority or more severe is open:
    /// 1 (Sev-1 / P1, the default) to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 5))]
    pub priority: Option<u8>,
}

/// One decision rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.condition) || has(self.expression)").message("a rule needs a condition, an expression, or both"))]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Stable identifier (lowercase, digits and '-'), referenced by waivers and approvals.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub id: String,
    /// Human sentence shown in passports and the console, e.g. "Prometheus error rate below 2%".
    #[schemars(length(min = 1, max = 256))]
    pub label: String,
    /// Connector whose evidence holds the fact, e.g. `prometheus`, `argocd`, `kubernetes`, `ingest`.
    #[schemars(length(min = 1, max = 63))]
    pub connector: String,
    /// Name of the fact within that connector's evidence, e.g. `error_rate`.
    #[schemars(length(min = 1, max = 253))]
    pub fact: String,
    /// Comparison of the fact's value with a threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<RuleCondition>,
    /// Optional CEL expression over `facts` (a map of connector to a map of
    /// fact name to value), e.g. `facts.prometheus.error_rate < 2.0`. When a
    /// condition is also given, both must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub expression: Option<String>,
    /// Decision when this rule fails. Defaults to HOLD.
    #[serde(default = "default_on_fail")]
    #[x_kube(validation = Rule::new("self != 'ALLOW'").message("onFail must be a decision other than ALLOW"))]
    pub on_fail: Decision,
    /// Whether missing evidence counts as a failure. Defaults to true.
    #[serde(default = "default_true")]
    pub required: bool,
    /// Evidence older than this many seconds is stale. Defaults to the
    /// ConnectorScope's maxAgeSeconds, else the evidence's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_age_seconds: Option<i64>,
    /// Next action shown when the rule does not pass. Placeholders such as
    /// `{service}`, `{release}`, `{environment}`, `{rollback.release}` and
    /// `{rollback.image}` are filled in from the ReleaseGate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub next_action: Option<String>,
    /// Weight of this rule's evidence in the confidence score. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub weight: Option<u32>,
    /// Where the fact must come from: `pulled` (read by the operator through
    /// a ConnectorScope) or `pushed` (pushed into the gate's
    /// `spec.evidence`). Evidence from elsewhere counts as missing for this
    /// rule. Unset: either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 'pulled' || self == 'pushed'").message("provenance is pulled or pushed"))]
    pub provenance: Option<Provenance>,
}

fn default_on_fail() -> Decision {
    Decision::Hold
}

fn default_true() -> bool {
    true
}

/// Comparison operator of a rule condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Operator {
    /// The fact equals `value`.
    Equals,
    /// The fact differs from `value`.
    NotEquals,
    /// The fact is a number (optionally with a unit) below `value`.
    LessThan,
    /// The fact is a number at most `value`.
    LessThanOrEqual,
    /// The fact is a number above `value`.
    GreaterThan,
    /// The fact is a number at least `value`.
    GreaterThanOrEqual,
    /// The fact is one of `values`.
    In,
    /// The fact is present in fresh evidence, whatever its value.
    Present,
}

/// A comparison of a fact with a threshold.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
// `value` is free-form (a scalar of any type), which CEL cannot see; whether
// the operator has the operand it needs is checked by the engine and reported
// on the Policy's `Valid` condition.
#[serde(rename_all = "camelCase")]
pub struct RuleCondition {
    /// One of equals, notEquals, lessThan, lessThanOrEqual, greaterThan, greaterThanOrEqual, in, present.
    pub operator: Operator,
    /// Threshold: a number (optionally with a unit such as `2%` or `500ms`), a string, a boolean or an RFC 3339 timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::any_scalar_schema")]
    pub value: Option<serde_json::Value>,
    /// Accepted values, for operator `in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::any_scalar_list_schema")]
    pub values: Option<Vec<serde_json::Value>>,
}

/// Canary constraints for ALLOW_WITH_CANARY.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CanaryPolicy {
    /// Largest traffic step, in percent, a progressive rollout may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_traffic_step_percent: Option<u8>,
    /// Watch window, in seconds, after each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub watch_window_seconds: Option<i64>,
    /// Below `minConfidence` but at or above this confidence (percent), the
    /// decision is ALLOW_WITH_CANARY instead of HOLD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub min_confidence: Option<u8>,
}

/// How approvals satisfy REQUIRE_APPROVAL.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPolicy {
    /// Number of distinct approvers needed. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub required_approvers: Option<u32>,
    /// Ids of the rules whose failure an approval can satisfy. Empty means
    /// every rule whose onFail is REQUIRE_APPROVAL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Whether the user who applied a release may approve it. Defaults to
    /// false: such an approval does not count.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_self_approval: bool,
    /// Whether approvals by ServiceAccounts (`system:serviceaccount:...`)
    /// count. Defaults to false: approvals are for people.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_service_accounts: bool,
}

/// Which waivers count.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WaiverPolicy {
    /// Longest lifetime of a waiver, from its creation to its `expiresAt`,
    /// in seconds. A waiver that would last longer does not count. Defaults
    /// to 604800 (7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60))]
    pub max_duration_seconds: Option<i64>,
    /// Whether the user who applied a release may waive its rules. Defaults to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_self_waiver: bool,
    /// Whether waivers by ServiceAccounts count. Defaults to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_service_accounts: bool,
}

/// Which releases are rollback targets.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RollbackPolicy {
    /// How long after it last ran a proven release stays a rollback target,
    /// in seconds. Unset: as long as it is among the gate's 10 newest proven releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60))]
    pub window_seconds: Option<i64>,
}

/// Rules checked after promotion.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostDeployPolicy {
    /// Runtime rules; a failure yields ROLLBACK_RECOMMENDED.
    #[schemars(length(max = 100))]
    pub rules: Vec<PolicyRule>,
    /// How long after promotion the rules are watched, in seconds. Defaults to 900.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub watch_window_seconds: Option<i64>,
}

/// Observed state of a Policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Content hash of the spec, as recorded in passports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Number of pre-deploy rules, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_count: Option<i64>,
    /// `Valid` says whether every rule compiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Conditions,
}
