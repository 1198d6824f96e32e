use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The outcome of an evaluation, in increasing order of severity.
///
/// The `Ord` implementation follows the precedence of SPEC.md:
/// BLOCK > ROLLBACK_RECOMMENDED > HOLD > REQUIRE_APPROVAL > ALLOW_WITH_CANARY > ALLOW.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    /// Evidence is complete enough to proceed under the selected mode.
    Allow,
    /// Proceed only with a progressive rollout and watch-window constraints.
    AllowWithCanary,
    /// Human approval is required before the release can continue.
    RequireApproval,
    /// Evidence is missing, stale or incomplete: fix and re-run.
    Hold,
    /// Post-deploy signals say rollback or traffic cutover should be considered.
    RollbackRecommended,
    /// A serious policy violation prevents promotion.
    Block,
}

impl Decision {
    /// All decisions, least severe first.
    pub const ALL: [Decision; 6] = [
        Decision::Allow,
        Decision::AllowWithCanary,
        Decision::RequireApproval,
        Decision::Hold,
        Decision::RollbackRecommended,
        Decision::Block,
    ];

    /// The wire name, e.g. `ALLOW_WITH_CANARY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "ALLOW",
            Decision::AllowWithCanary => "ALLOW_WITH_CANARY",
            Decision::RequireApproval => "REQUIRE_APPROVAL",
            Decision::Hold => "HOLD",
            Decision::RollbackRecommended => "ROLLBACK_RECOMMENDED",
            Decision::Block => "BLOCK",
        }
    }

    /// Whether a release may proceed (ALLOW, or ALLOW_WITH_CANARY under canary constraints).
    pub fn allows_promotion(self) -> bool {
        matches!(self, Decision::Allow | Decision::AllowWithCanary)
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a gate's decision is applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Record the decision and never block: the webhook admits with a warning,
    /// `gate` exits 0 and prints the decision.
    #[default]
    Shadow,
    /// Block: the webhook denies the promotion and `gate` exits non-zero unless
    /// the decision allows it.
    Enforce,
}

impl Mode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Shadow => "shadow",
            Mode::Enforce => "enforce",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a fact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Provenance {
    /// Read by the operator itself through a ConnectorScope.
    Pulled,
    /// Pushed into the ReleaseGate's `spec.evidence` by someone (CI).
    Pushed,
    /// A fact of the ReleaseGate itself (connector `releasegate`).
    Gate,
}

impl Provenance {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Pulled => "pulled",
            Provenance::Pushed => "pushed",
            Provenance::Gate => "gate",
        }
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Mode {
    /// The stricter of two modes.
    pub fn at_least(self, minimum: Mode) -> Mode {
        if self == Mode::Enforce || minimum == Mode::Enforce {
            Mode::Enforce
        } else {
            Mode::Shadow
        }
    }
}

/// A reference to an object of a known kind in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the object, in the namespace of the referring object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Secret in the same namespace. Credentials are only ever
/// referenced, never written inline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyReference {
    /// Name of the Secret, in the namespace of the referring object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Standard `metav1.Condition`s, merged by `type` under server-side apply.
pub type Conditions = Vec<Condition>;

/// Schema of a `conditions` list: a list-map keyed by `type`, as in every
/// built-in Kubernetes API, so server-side apply merges conditions by type.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema.insert(
        "description".into(),
        "Standard conditions (metav1.Condition), one per type.".into(),
    );
    schema
}

/// Schema of a free scalar (number, string or boolean): typed by the engine,
/// kept as written by the apiserver.
pub(crate) fn any_scalar_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A number (optionally with a unit such as 2% or 500ms), string, boolean or RFC 3339 timestamp.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Schema of a list of free scalars.
pub(crate) fn any_scalar_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "description": "Accepted values: numbers, strings or booleans.",
        "items": {"x-kubernetes-preserve-unknown-fields": true}
    })
}
