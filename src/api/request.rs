use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A person's request about a ReleaseGate: re-run its evaluation, comment
/// on it, or ask the approvers to approve its release.
///
/// Requests are their own objects (like approvals), so their author is the
/// authenticated user of the create request: the admission policies shipped
/// with the operator fill `requester` in and refuse any other value, and
/// RBAC grants them with one rule (`create releaserequests`). A request is
/// immutable; the operator handles it once and says so in its status. No
/// request can change a decision: a re-run evaluates the same evidence
/// under the same Policy again.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "releasepassport.io",
    version = "v1alpha1",
    kind = "ReleaseRequest",
    namespaced,
    status = "ReleaseRequestStatus",
    shortname = "rpq",
    category = "releasepassport",
    doc = "ReleaseRequest asks the operator, as the user who creates it, to re-run a gate's evaluation, record a comment in its history, or ask for an approval.",
    printcolumn(name = "Gate", type_ = "string", json_path = ".spec.gate"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Requester", type_ = "string", json_path = ".spec.requester"),
    printcolumn(name = "Handled", type_ = "date", json_path = ".status.handledAt"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a ReleaseRequest is immutable: create a new one").reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new("self.type != 'Comment' || (has(self.body) && size(self.body.trim()) > 0)").message("a Comment needs a body").reason(Reason::FieldValueRequired))]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRequestSpec {
    /// The ReleaseGate (same namespace) the request is about.
    #[schemars(length(min = 1, max = 253))]
    pub gate: String,
    /// `Rerun`, `Comment` or `ApprovalRequest`.
    #[serde(rename = "type")]
    pub type_: RequestType,
    /// The Passport the request is about (the one shown when it was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub passport: Option<String>,
    /// The comment, or a note to the approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub body: Option<String>,
    /// The authenticated user who created the request. Filled in at
    /// admission from the request; any other value is refused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 253))]
    pub requester: String,
}

/// What a ReleaseRequest asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RequestType {
    /// Evaluate the gate again now.
    Rerun,
    /// Record a comment in the gate's history.
    Comment,
    /// Ask the approvers to approve the gate's current release.
    ApprovalRequest,
}

impl RequestType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Rerun => "Rerun",
            RequestType::Comment => "Comment",
            RequestType::ApprovalRequest => "ApprovalRequest",
        }
    }
}

/// Observed state of a ReleaseRequest, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRequestStatus {
    /// When the operator handled it (recorded it in the gate's history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_at: Option<jiff::Timestamp>,
    /// The Passport on record after handling it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passport: Option<String>,
    /// What the operator did, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
