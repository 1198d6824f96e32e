use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A person's approval of one release of one ReleaseGate.
///
/// Approvals are their own objects, not fields of the gate: whoever may
/// update a gate (CI) cannot approve by editing it. An approval is bound to
/// one gate, one release and one artifact digest, and is immutable once
/// created. Its `approver` is the authenticated user of the create request:
/// the admission policies shipped with the operator fill it in and refuse
/// any other value, and creating one needs the custom verb `approve` on the
/// gate (`kubectl auth can-i approve releasegates/<gate>`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "releasepassport.io",
    version = "v1alpha1",
    kind = "ReleaseApproval",
    namespaced,
    status = "ReleaseApprovalStatus",
    shortname = "rpa",
    category = "releasepassport",
    doc = "ReleaseApproval records one person's approval of one release (gate, release and artifact digest).",
    printcolumn(name = "Gate", type_ = "string", json_path = ".spec.gate"),
    printcolumn(name = "Release", type_ = "string", json_path = ".spec.release"),
    printcolumn(name = "Approver", type_ = "string", json_path = ".spec.approver"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a ReleaseApproval is immutable: create a new one for another release or digest").reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
pub struct ReleaseApprovalSpec {
    /// The ReleaseGate (same namespace) whose release is approved.
    #[schemars(length(min = 1, max = 253))]
    pub gate: String,
    /// The release approved, e.g. `v2.18.4`: it counts only while the gate's `spec.release` is this one.
    #[schemars(length(min = 1, max = 253))]
    pub release: String,
    /// The artifact digest approved (`sha256:<64 hex>`): it counts only while the gate's artifact has this digest.
    #[x_kube(validation = Rule::new("self.matches('^sha256:[a-f0-9]{64}$')").message("digest must be sha256:<64 lowercase hex characters>, the digest of the gate's artifact image").reason(Reason::FieldValueInvalid))]
    #[schemars(length(max = 71))]
    pub digest: String,
    /// A reference such as a change ticket, e.g. `CHG-1042`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub reference: Option<String>,
    /// Why it is approved, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub comment: Option<String>,
    /// The authenticated user who created the approval. Filled in at
    /// admission from the request; any other value is refused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub approver: String,
}

/// Whether the latest evaluation of the gate counted an approval or waiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum GrantState {
    /// It counts for the gate's current release.
    Counted,
    /// A waiver that counted until its `expiresAt`.
    Expired,
    /// It does not count; `reason` says why.
    NotCounted,
}

impl GrantState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Counted => "Counted",
            GrantState::Expired => "Expired",
            GrantState::NotCounted => "NotCounted",
        }
    }
}

/// Observed state of an approval or a waiver, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantStatus {
    /// `Counted`, `NotCounted` or (waivers) `Expired`, at the latest evaluation of the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<GrantState>,
    /// Why, as a machine-matchable reason: `Counted`, `SelfApproval`,
    /// `ServiceAccount`, `OtherRelease`, `OtherDigest`, `UnknownRule`,
    /// `BeyondMaximumDuration`, `Expired`, `GateNotFound`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The Passport of the evaluation that decided the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passport: Option<String>,
    /// When the state was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<jiff::Timestamp>,
}

/// Observed state of a ReleaseApproval.
pub type ReleaseApprovalStatus = GrantStatus;
