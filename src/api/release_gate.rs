use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Conditions, Decision, EvidenceDocument, LocalObjectReference, Mode, conditions_schema,
};

/// The gate for one service in one environment.
///
/// Typically long-lived (e.g. `payment-api-production`): CI updates `release`
/// and `artifact` for each new release, and every evaluation writes a new
/// Passport, so the history stays.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "releasepassport.io",
    version = "v1alpha1",
    kind = "ReleaseGate",
    namespaced,
    status = "ReleaseGateStatus",
    shortname = "rg",
    category = "releasepassport",
    doc = "ReleaseGate asks for a decision on one release of one service in one environment.",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(name = "Release", type_ = "string", json_path = ".spec.release"),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.environment"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".status.decision"),
    printcolumn(
        name = "Passport",
        type_ = "string",
        json_path = ".status.passportName"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseGateSpec {
    /// Service being released, e.g. `payment-api`.
    #[schemars(length(min = 1, max = 253))]
    pub service: String,
    /// Release identifier, e.g. `v2.18.4`.
    #[schemars(length(min = 1, max = 253))]
    pub release: String,
    /// Target environment, e.g. `production`.
    #[schemars(length(min = 1, max = 63))]
    pub environment: String,
    /// `shadow` records decisions without blocking; `enforce` blocks promotions the decision does not allow.
    #[serde(default)]
    pub mode: Mode,
    /// The Policy (same namespace) the release is evaluated against.
    pub policy_ref: LocalObjectReference,
    /// ConnectorScopes (same namespace) that supply evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub connector_scopes: Vec<LocalObjectReference>,
    /// The artifact being promoted.
    pub artifact: Artifact,
    /// The previous good release, for rollback readiness and incident rollbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// The workload the admission webhook guards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Post-deploy watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<Watch>,
    /// Evidence pushed by CI, in the connector evidence shape. Pushed
    /// evidence never carries the name of a connector the operator pulls
    /// (`prometheus`, `argocd`, ...): it is told apart from pulled evidence
    /// in every passport, with the identity that pushed it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub evidence: Vec<EvidenceDocument>,
    /// The authenticated identities of the last requests that changed the
    /// release, the evidence and the configuration of the gate. Filled in at
    /// admission from each request's user; any other value is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_by: Option<AppliedBy>,
}

/// Who changed which part of a gate, as authenticated by the apiserver.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AppliedBy {
    /// The user who applied the current release (`release`, `artifact`, `rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The user who pushed the current `evidence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// The user who created the gate or last changed its configuration
    /// (`mode`, `policyRef`, `connectorScopes`, `target`, `watch`, `service`, `environment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<String>,
}

/// The artifact being promoted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Image reference pinned by digest, e.g. `registry.example.com/payment-api@sha256:<64 hex>`.
    #[x_kube(validation = Rule::new("self.matches('^[^\\\\s@]+@sha256:[a-f0-9]{64}$')").message("artifact.image must be pinned by digest, e.g. registry.example.com/payment-api@sha256:<64 lowercase hex characters>").reason(Reason::FieldValueInvalid))]
    #[schemars(length(max = 1024))]
    pub image: String,
    /// Source commit SHA the image was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub source_sha: Option<String>,
    /// The CI run that built the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_run: Option<BuildRun>,
    /// Commit timestamp, for lead-time metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_timestamp: Option<jiff::Timestamp>,
}

/// A CI run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BuildRun {
    /// CI provider, e.g. `github-actions`, `gitlab-ci`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Run identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Link to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The previous good release.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// Release identifier of the previous good release, e.g. `v2.17.9`.
    #[schemars(length(min = 1, max = 253))]
    pub release: String,
    /// Its image, pinned by digest. The admission webhook admits a change
    /// back to it under any decision only when the gate itself proved it
    /// (`status.provenReleases`); otherwise it is an ordinary promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[^\\\\s@]+@sha256:[a-f0-9]{64}$')").message("rollback.image must be pinned by digest (image@sha256:<64 lowercase hex characters>)").reason(Reason::FieldValueInvalid))]
    #[schemars(length(max = 1024))]
    pub image: Option<String>,
}

/// The workload guarded by the admission webhook.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// API version, e.g. `apps/v1` or `argoproj.io/v1alpha1`. Defaults to `apps/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `Deployment`, `StatefulSet`, `DaemonSet` or `Rollout`.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Name, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Post-deploy watch settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Watch {
    /// Length of the watch window after promotion, in seconds. Defaults to the Policy's postDeploy window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub window_seconds: Option<i64>,
}

/// Observed state of a ReleaseGate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseGateStatus {
    /// The generation of the spec this status describes. Consumers (Argo CD
    /// health checks) must treat the decision as pending while it is behind
    /// `metadata.generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Latest decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Latest confidence, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    /// Name of the latest Passport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passport_name: Option<String>,
    /// When the latest evaluation ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<jiff::Timestamp>,
    /// When the gate will be evaluated again (before evidence goes stale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_evaluation_at: Option<jiff::Timestamp>,
    /// When the target workload was first seen running this release's image
    /// digest (from `kubernetes` evidence); starts the post-deploy watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<jiff::Timestamp>,
    /// The image the target was seen running at `deployedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_image: Option<String>,
    /// End of the post-deploy watch window, while postDeploy rules are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_until: Option<jiff::Timestamp>,
    /// Ids of the rules that did not pass, for display and health checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_checks: Vec<String>,
    /// Next actions of the latest decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_actions: Vec<String>,
    /// Standard conditions: `Ready`, `EvidenceComplete`, `Promotable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Conditions,
    /// Governance history: the most recent 20 entries (decision changes,
    /// approvals, waivers added or expired, signing key changes), oldest
    /// first. Each entry is also published as a Kubernetes Event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub history: Vec<GateHistoryEntry>,
    /// What the history already records (approvals, waivers, signing key),
    /// so that re-evaluating the same spec never records an entry twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditCursor>,
    /// The mode the latest evaluation applied: `enforce` when the gate asks
    /// for it or when its namespace or Policy makes enforce the minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Why the applied mode is stricter than `spec.mode`, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_by: Option<String>,
    /// Releases this gate proved: their artifact held a verified ALLOW
    /// Passport of this gate and the target was then seen running it. Only
    /// these digests are admitted as rollbacks under any decision. Newest
    /// first, at most 10; the Policy's `rollback.windowSeconds` bounds how
    /// long after it last ran a release stays a rollback target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub proven_releases: Vec<ProvenRelease>,
    /// Digests that held an ALLOW Passport of this gate and have not yet
    /// been seen running (they become proven when they are). Newest first, at most 10.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub allowed_releases: Vec<ProvenRelease>,
    /// A ROLLBACK_RECOMMENDED on record: it stays until the target runs a
    /// proven release again or a new release of the gate is evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_recommended: Option<RollbackRecommendation>,
}

/// Most entries kept in `status.provenReleases` and `status.allowedReleases`.
pub const PROVEN_RELEASES_LIMIT: usize = 10;

/// A release a gate proved (or allowed, in `allowedReleases`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvenRelease {
    /// Release identifier.
    pub release: String,
    /// Image reference, pinned by digest.
    pub image: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The ALLOW Passport that covered it.
    pub passport: String,
    /// When it held that ALLOW Passport.
    pub allowed_at: jiff::Timestamp,
    /// When the target was first seen running it (proven releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven_at: Option<jiff::Timestamp>,
    /// When the target was last seen running it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<jiff::Timestamp>,
    /// After this time it is no longer a rollback target (the Policy's
    /// `rollback.windowSeconds` after it last ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_until: Option<jiff::Timestamp>,
}

/// ROLLBACK_RECOMMENDED for one release of a gate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRecommendation {
    /// The release that should be rolled back.
    pub release: String,
    /// Its digest.
    pub digest: String,
    /// When the recommendation was first made.
    pub since: jiff::Timestamp,
    /// The Passport that first recommended it.
    pub passport: String,
    /// The post-deploy rules that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_checks: Vec<String>,
}

/// Most entries kept in `status.history`.
pub const HISTORY_LIMIT: usize = 20;

/// Kind of a governance event.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum HistoryType {
    /// The gate's decision changed (or was made for the first time).
    DecisionChanged,
    /// A human approval appeared in the gate's spec.
    ApprovalAdded,
    /// A waiver appeared in the gate's spec.
    WaiverAdded,
    /// A waiver reached its `expiresAt` and no longer counts.
    WaiverExpired,
    /// The latest Passport is signed with another key than the previous one.
    SigningKeyChanged,
    /// The admission webhook denied a change of a gated workload.
    AdmissionDenied,
    /// A decision change was delivered to a notification scope (Slack, email).
    NotificationDelivered,
    /// A decision change could not be delivered to a notification scope.
    NotificationFailed,
    /// An approval does not count (self-approval, a ServiceAccount, another
    /// release or digest): a refused bypass.
    ApprovalRefused,
    /// A waiver does not count (beyond the Policy's maximum duration, a
    /// ServiceAccount, another digest, an unknown rule): a refused bypass.
    WaiverRefused,
    /// The mode the gate is evaluated in changed (spec.mode, or the
    /// namespace's or Policy's minimum).
    ModeChanged,
    /// The admission webhook admitted a change back to a proven release
    /// under a decision that does not allow promotion.
    RollbackAdmitted,
    /// The admission webhook refused pushed evidence (observed in the future).
    EvidenceRefused,
    /// The target runs a proven release again after ROLLBACK_RECOMMENDED.
    Restored,
    /// Someone asked for the gate to be evaluated again (a ReleaseRequest).
    RerunRequested,
    /// Someone commented on the gate or one of its Passports (a ReleaseRequest).
    Commented,
    /// Someone asked the approvers to approve the gate's release (a ReleaseRequest).
    ApprovalRequested,
}

impl HistoryType {
    /// Every kind, in declaration order.
    pub const ALL: [HistoryType; 17] = [
        HistoryType::DecisionChanged,
        HistoryType::ApprovalAdded,
        HistoryType::WaiverAdded,
        HistoryType::WaiverExpired,
        HistoryType::SigningKeyChanged,
        HistoryType::AdmissionDenied,
        HistoryType::NotificationDelivered,
        HistoryType::NotificationFailed,
        HistoryType::ApprovalRefused,
        HistoryType::WaiverRefused,
        HistoryType::ModeChanged,
        HistoryType::RollbackAdmitted,
        HistoryType::EvidenceRefused,
        HistoryType::Restored,
        HistoryType::RerunRequested,
        HistoryType::Commented,
        HistoryType::ApprovalRequested,
    ];

    /// The wire name, also the `reason` of the Kubernetes Event.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryType::DecisionChanged => "DecisionChanged",
            HistoryType::ApprovalAdded => "ApprovalAdded",
            HistoryType::WaiverAdded => "WaiverAdded",
            HistoryType::WaiverExpired => "WaiverExpired",
            HistoryType::SigningKeyChanged => "SigningKeyChanged",
            HistoryType::AdmissionDenied => "AdmissionDenied",
            HistoryType::NotificationDelivered => "NotificationDelivered",
            HistoryType::NotificationFailed => "NotificationFailed",
            HistoryType::ApprovalRefused => "ApprovalRefused",
            HistoryType::WaiverRefused => "WaiverRefused",
            HistoryType::ModeChanged => "ModeChanged",
            HistoryType::RollbackAdmitted => "RollbackAdmitted",
            HistoryType::EvidenceRefused => "EvidenceRefused",
            HistoryType::Restored => "Restored",
            HistoryType::RerunRequested => "RerunRequested",
            HistoryType::Commented => "Commented",
            HistoryType::ApprovalRequested => "ApprovalRequested",
        }
    }

    /// The kind named by an Event `reason`, if it is one of ours.
    pub fn from_reason(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == reason)
    }
}

impl std::fmt::Display for HistoryType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One governance event in a gate's history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateHistoryEntry {
    /// When it was recorded.
    pub at: jiff::Timestamp,
    /// What happened.
    #[serde(rename = "type")]
    pub type_: HistoryType,
    /// The decision after the event (DecisionChanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The decision before the event (DecisionChanged; absent for the first decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_decision: Option<Decision>,
    /// The Passport that records the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passport: Option<String>,
    /// The authenticated user behind the event: who approved, waived,
    /// changed the mode, or made the admitted or refused request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// What happened, in one sentence (redacted); also the Event's note.
    #[schemars(length(max = 1024))]
    pub message: String,
}

/// What the history already records, compared with the spec at each evaluation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditCursor {
    /// Key id of the latest Passport's signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_id: Option<String>,
    /// Approvals already recorded (`<name>|<state>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub approvals: Vec<String>,
    /// Waivers already recorded as added or refused (`<name>|<state>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub waivers: Vec<String>,
    /// Waivers already recorded as expired (object names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub expired_waivers: Vec<String>,
    /// The mode on record (`<requested>/<applied>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Admission Events of the webhook already recorded (Event names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub admission_events: Vec<String>,
    /// The image last counted as promoted (release metrics count each image once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_image: Option<String>,
}
