use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::GrantStatus;

/// A temporary exception to one rule of one ReleaseGate's Policy, for one
/// artifact digest.
///
/// Like approvals, waivers are their own immutable objects: creating one
/// needs the custom verb `waive` on the gate, its `author` is the
/// authenticated user of the create request, and `expiresAt` is required.
/// The operator counts it only while it has not expired, for the digest it
/// names, and only when its lifetime is within the Policy's
/// `waiver.maxDurationSeconds`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "releasepassport.io",
    version = "v1alpha1",
    kind = "ReleaseWaiver",
    namespaced,
    status = "ReleaseWaiverStatus",
    shortname = "rpw",
    category = "releasepassport",
    doc = "ReleaseWaiver exempts one artifact digest of one ReleaseGate from one rule until it expires.",
    printcolumn(name = "Gate", type_ = "string", json_path = ".spec.gate"),
    printcolumn(name = "Rule", type_ = "string", json_path = ".spec.ruleId"),
    printcolumn(name = "Author", type_ = "string", json_path = ".spec.author"),
    printcolumn(name = "Expires", type_ = "date", json_path = ".spec.expiresAt"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a ReleaseWaiver is immutable: it cannot be extended or moved; create a new one").reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
pub struct ReleaseWaiverSpec {
    /// The ReleaseGate (same namespace) the waiver applies to.
    #[schemars(length(min = 1, max = 253))]
    pub gate: String,
    /// Id of the waived rule of the gate's Policy.
    #[schemars(length(min = 1, max = 63))]
    pub rule_id: String,
    /// The artifact digest waived (`sha256:<64 hex>`): it counts only while the gate's artifact has this digest.
    #[x_kube(validation = Rule::new("self.matches('^sha256:[a-f0-9]{64}$')").message("digest must be sha256:<64 lowercase hex characters>, the digest of the gate's artifact image").reason(Reason::FieldValueInvalid))]
    #[schemars(length(max = 71))]
    pub digest: String,
    /// Why the rule is waived.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// When the waiver stops counting. Waivers are always temporary.
    pub expires_at: jiff::Timestamp,
    /// The authenticated user who created the waiver. Filled in at
    /// admission from the request; any other value is refused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub author: String,
}

/// Observed state of a ReleaseWaiver.
pub type ReleaseWaiverStatus = GrantStatus;
