use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Conditions, Decision, Mode, Provenance, conditions_schema};

/// The signed decision record.
///
/// `spec` is the passport document, readable by kubectl and Argo CD, and
/// `spec.envelope` the attestation of record: a DSSE envelope over an in-toto
/// Statement whose predicate carries the same document. Verifiers read the
/// document from the envelope's verified payload, never from the readable
/// copy beside it. The spec is immutable: a new evaluation writes a new
/// Passport.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "releasepassport.io",
    version = "v1alpha1",
    kind = "Passport",
    namespaced,
    status = "PassportStatus",
    shortname = "pp",
    category = "releasepassport",
    doc = "Passport is the signed, immutable record of one release decision.",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(name = "Release", type_ = "string", json_path = ".spec.release"),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.environment"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".spec.decision"),
    printcolumn(
        name = "Confidence",
        type_ = "integer",
        json_path = ".spec.confidence",
        description = "Percent of required evidence present and fresh"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a Passport's signed content is immutable; a new evaluation writes a new Passport").reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase")]
pub struct PassportSpec {
    /// Version of the passport document format.
    pub passport_version: String,
    /// Service released.
    pub service: String,
    /// Release identifier.
    pub release: String,
    /// Target environment.
    pub environment: String,
    /// Mode the decision applies in: the gate's, or `enforce` when its
    /// namespace or Policy makes enforce the minimum.
    pub mode: Mode,
    /// The mode the gate asked for, when a platform minimum overrode it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_mode: Option<Mode>,
    /// What made enforce the minimum, when it overrode `requestedMode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_by: Option<String>,
    /// The decision.
    pub decision: Decision,
    /// Weighted share of required evidence present and fresh, in percent.
    #[schemars(range(min = 0, max = 100))]
    pub confidence: u8,
    /// When the decision was made.
    pub generated_at: jiff::Timestamp,
    /// The ReleaseGate this passport was issued for, when issued in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateReference>,
    /// The artifact the decision covers.
    pub artifact: ArtifactRecord,
    /// The policy applied.
    pub policy: PolicyRecord,
    /// Who or what asked for the decision (controller, CLI user, CI run).
    pub actor: String,
    /// The authenticated user who applied the release to the gate, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_by: Option<String>,
    /// Outcome of every rule.
    #[serde(default)]
    pub policy_results: Vec<PolicyResult>,
    /// Evidence summaries (redacted).
    #[serde(default)]
    pub evidence: Vec<EvidenceSummary>,
    /// Rollback readiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackRecord>,
    /// Approvals considered, with whether each counted and why not.
    #[serde(default)]
    pub approvals: Vec<ApprovalRecord>,
    /// Waivers considered, with whether each was still valid.
    #[serde(default)]
    pub waivers: Vec<WaiverRecord>,
    /// Canary constraints, when the decision is ALLOW_WITH_CANARY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryRecord>,
    /// Concrete next actions; every non-ALLOW decision has at least one.
    #[serde(default)]
    pub next_actions: Vec<String>,
    /// Timeline of the evaluation steps.
    #[serde(default)]
    pub trace: Vec<TraceStep>,
    /// The signed attestation: a DSSE envelope over an in-toto Statement v1
    /// (SLSA verification summary) that carries this document. Absent from
    /// the document inside the envelope, and from unsigned passports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
}

impl PassportSpec {
    /// Key id of the envelope's first signature (empty when unsigned).
    pub fn signing_key_id(&self) -> &str {
        self.envelope
            .as_ref()
            .and_then(|e| e.signatures.first())
            .map(|s| s.keyid.as_str())
            .unwrap_or_default()
    }
}

/// The gate a passport answers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateReference {
    /// Namespace of the ReleaseGate.
    pub namespace: String,
    /// Name of the ReleaseGate.
    pub name: String,
    /// Generation of the ReleaseGate that was evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// The artifact a decision covers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRecord {
    /// Full image reference.
    pub image: String,
    /// Image digest, `sha256:<hex>`.
    pub digest: String,
    /// Source commit SHA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha: Option<String>,
    /// CI run that built it (provider/id/url).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_run: BTreeMap<String, String>,
}

/// The policy a decision applied.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRecord {
    /// Policy name.
    pub name: String,
    /// `sha256:<hex>` of the policy spec's canonical JSON.
    pub hash: String,
}

/// State of one rule in a passport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResultState {
    /// The rule held on fresh evidence.
    Pass,
    /// The rule did not hold.
    Fail,
    /// The evidence is older than its maximum age.
    Stale,
    /// No evidence for the fact.
    Missing,
    /// The rule failed but a valid waiver covers it.
    Waived,
}

/// Outcome of one rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResult {
    /// Rule id.
    pub id: String,
    /// Rule label.
    pub label: String,
    /// pass, fail, stale, missing or waived.
    pub state: ResultState,
    /// Decision this rule asks for when not passing.
    pub on_fail: Decision,
    /// Whether the rule is required.
    pub required: bool,
    /// Observed value, as text (redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// Threshold, as text, e.g. `< 2%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    /// Evidence source, e.g. `prometheus/error_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When the evidence was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<jiff::Timestamp>,
    /// Whether the fact was pulled by the operator, pushed, or is the gate's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Why the rule has this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Summary of one evidence document (redacted).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceSummary {
    /// Connector name.
    pub connector: String,
    /// Scope of the evidence.
    #[serde(default)]
    pub scope: BTreeMap<String, String>,
    /// Observation time.
    pub observed_at: jiff::Timestamp,
    /// Maximum age in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i64>,
    /// `fresh` or `stale` (or a connector health such as `Forbidden`).
    pub status: String,
    /// Number of facts the evidence carried.
    #[serde(default)]
    pub fact_count: u32,
    /// `pulled` by the operator through a ConnectorScope, or `pushed` into the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// The authenticated user who pushed it (pushed evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_by: Option<String>,
    /// `sha256:<hex>` of the evidence document as evaluated (its RFC 8785
    /// canonical JSON): whoever holds the document can show it was this input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Rollback readiness.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRecord {
    /// Previous good release.
    pub release: String,
    /// Its image, when attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Whether a rollback target is attached (image pinned by digest).
    pub ready: bool,
    /// Whether the declared rollback image is a release this gate proved
    /// (held its ALLOW Passport and ran): only then does the webhook admit
    /// it under any decision. Absent when not known (offline evaluation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven: Option<bool>,
}

fn counted_by_default() -> bool {
    true
}

/// An approval as considered by an evaluation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    /// The ReleaseApproval object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The authenticated user who approved.
    pub actor: String,
    /// Reference such as a change ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// When it was approved (the object's creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<jiff::Timestamp>,
    /// Whether it counted towards the approval requirement (passports
    /// written before approvals were judged counted every approval they list).
    #[serde(default = "counted_by_default")]
    pub counted: bool,
    /// Why it did not count (machine-matchable: `SelfApproval`,
    /// `ServiceAccount`, `OtherRelease`, `OtherDigest`, `DuplicateApprover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A waiver as considered by an evaluation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaiverRecord {
    /// The ReleaseWaiver object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Waived rule id.
    pub rule_id: String,
    /// Why.
    pub reason: String,
    /// Who granted it.
    pub actor: String,
    /// Expiry.
    pub expires_at: jiff::Timestamp,
    /// `active`, `expired`, `unmatched` (no such rule) or `refused` (does
    /// not count: see `refusal`) at evaluation time.
    pub state: String,
    /// Why a refused waiver does not count (machine-matchable:
    /// `BeyondMaximumDuration`, `SelfWaiver`, `ServiceAccount`, `OtherDigest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// Canary constraints attached to ALLOW_WITH_CANARY.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryRecord {
    /// Largest traffic step in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_traffic_step_percent: Option<u8>,
    /// Watch window after each step, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_window_seconds: Option<i64>,
}

/// One step of the evaluation timeline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraceStep {
    /// When the step happened.
    pub at: jiff::Timestamp,
    /// Short step name, e.g. `evidence`, `rule`, `waiver`, `decision`.
    pub step: String,
    /// What happened and why.
    pub message: String,
}

/// A DSSE envelope (secure-systems-lab/dsse, envelope.md), field names as
/// the standard spells them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// `application/vnd.in-toto+json`.
    pub payload_type: String,
    /// Standard base64 of the serialized in-toto Statement: the signed bytes.
    pub payload: String,
    /// Signatures over the DSSE pre-authentication encoding of payloadType and payload.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct EnvelopeSignature {
    /// Key id hint: `rp-` and 16 hex digits of the SHA-256 of the raw public key, unless configured.
    #[serde(default)]
    pub keyid: String,
    /// Standard base64 of the pure Ed25519 signature.
    pub sig: String,
}

/// Observed state of a Passport (not signed).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassportStatus {
    /// Name of the passport that replaced this one as the gate's latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Standard conditions: `Verified`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Conditions,
}
