//! The in-toto attestation layers a passport is carried in: the Statement
//! (in-toto attestation framework v1) and the SLSA Verification Summary
//! predicate (`https://slsa.dev/verification_summary/v1`), as plain serde
//! types. Field names are the standards' own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of a SLSA Verification Summary Attestation v1.
pub const VSA_PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// The VSA extension field that carries the full passport document. The VSA
/// lets producers add fields whose names are URIs.
pub const PASSPORT_EXTENSION: &str = "https://releasepassport.io/passport/v1";

/// An in-toto Statement v1. Nothing else is allowed at its top level:
/// verifiers such as cosign parse it strictly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Statement<P> {
    #[serde(rename = "_type")]
    pub type_: String,
    /// The artifacts the attestation is about, matched by digest.
    pub subject: Vec<ResourceDescriptor>,
    pub predicate_type: String,
    pub predicate: P,
}

/// An in-toto ResourceDescriptor (the fields used here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm → lowercase hex, e.g. `{"sha256": "3f5d…"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
}

impl ResourceDescriptor {
    /// A descriptor for `sha256:<hex>`, or `None` for any other form.
    pub fn sha256(name: Option<String>, uri: Option<String>, digest: &str) -> Option<Self> {
        let hex = digest.strip_prefix("sha256:")?;
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| ResourceDescriptor {
            name,
            uri,
            digest: BTreeMap::from([("sha256".to_string(), hex.to_string())]),
        })
    }

    /// `sha256:<hex>` of the descriptor, when it has a SHA-256 digest.
    pub fn sha256_digest(&self) -> Option<String> {
        self.digest.get("sha256").map(|hex| format!("sha256:{hex}"))
    }
}

/// The SLSA Verification Summary predicate, with the passport document
/// under [`PASSPORT_EXTENSION`]. `D` is the document (borrowed when
/// signing, owned when verifying).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSummary<D> {
    pub verifier: Verifier,
    pub time_verified: jiff::Timestamp,
    /// The artifact the verification was about, as consumers fetch it: the
    /// image reference pinned by digest.
    pub resource_uri: String,
    /// The policy applied: its name and the SHA-256 of its canonical JSON.
    pub policy: ResourceDescriptor,
    /// The evidence documents the decision read, by digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_attestations: Vec<ResourceDescriptor>,
    /// `PASSED` when the decision allows promotion, `FAILED` otherwise.
    pub verification_result: VerificationResult,
    /// One level of our own track naming the decision,
    /// `RELEASEPASSPORT_DECISION_<DECISION>` (never `SLSA_`-prefixed).
    pub verified_levels: Vec<String>,
    #[serde(rename = "https://releasepassport.io/passport/v1")]
    pub passport: D,
}

/// Who verified: this product, with its version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifier {
    pub id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// A VSA's verification result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationResult {
    Passed,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_field_name_is_the_constant() {
        let vsa = VerificationSummary {
            verifier: Verifier {
                id: "v".into(),
                version: BTreeMap::new(),
            },
            time_verified: jiff::Timestamp::UNIX_EPOCH,
            resource_uri: "r".into(),
            policy: ResourceDescriptor {
                name: None,
                uri: Some("p".into()),
                digest: BTreeMap::new(),
            },
            input_attestations: vec![],
            verification_result: VerificationResult::Passed,
            verified_levels: vec![],
            passport: 1,
        };
        let value = serde_json::to_value(&vsa).unwrap();
        assert_eq!(value[PASSPORT_EXTENSION], 1);
        assert_eq!(value["verificationResult"], "PASSED");
    }

    #[test]
    fn a_statement_with_another_top_level_field_is_refused() {
        let text = r#"{"_type":"t","subject":[],"predicateType":"p","predicate":{},"extra":1}"#;
        assert!(serde_json::from_str::<Statement<serde_json::Value>>(text).is_err());
    }
}
