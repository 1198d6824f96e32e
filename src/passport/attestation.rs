//! A passport as a standard attestation: an in-toto Statement v1 whose
//! subject is the image it judges and whose predicate is a SLSA Verification
//! Summary carrying the whole passport document, signed in a DSSE envelope.
//!
//! Mapping (documented in docs/attestation.md):
//! - `subject`: the image name and its digest (every digest the passport covers);
//! - `verifier.id`: [`VERIFIER_ID`], with this version;
//! - `timeVerified`: `generatedAt`; `resourceUri`: the image pinned by digest;
//! - `policy`: the Policy's name, where it lives, and its content digest;
//! - `inputAttestations`: the evidence documents that have a digest;
//! - `verificationResult`: `PASSED` when the decision allows promotion;
//! - `verifiedLevels`: `RELEASEPASSPORT_DECISION_<DECISION>`;
//! - the document itself under [`PASSPORT_EXTENSION`].

use std::collections::BTreeMap;

use crate::api::{Decision, Envelope, PassportSpec};

use super::dsse::{self, IN_TOTO_PAYLOAD_TYPE};
use super::statement::{
    ResourceDescriptor, STATEMENT_TYPE, Statement, VSA_PREDICATE_TYPE, VerificationResult,
    VerificationSummary, Verifier,
};

/// `verifier.id` of every passport attestation.
pub const VERIFIER_ID: &str = "https://releasepassport.io/verifier";

/// The Statement a signed passport carries.
pub type PassportStatement<D> = Statement<VerificationSummary<D>>;

/// Why a passport cannot be made into an attestation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error(
        "artifact.digest {0:?} is not sha256:<64 lowercase hex>: an attestation's subject needs one"
    )]
    Digest(String),
    #[error("policy.hash {0:?} is not sha256:<64 lowercase hex>")]
    PolicyHash(String),
}

/// The `verifiedLevels` entry of a decision.
pub fn decision_level(decision: Decision) -> String {
    format!("RELEASEPASSPORT_DECISION_{}", decision.as_str())
}

/// `PASSED` when the decision allows promotion.
pub fn verification_result(decision: Decision) -> VerificationResult {
    if decision.allows_promotion() {
        VerificationResult::Passed
    } else {
        VerificationResult::Failed
    }
}

/// The repository part of an image reference: without digest and tag.
pub fn image_name(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    match name.rfind(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// Every digest a passport covers: the subjects of its Statement.
pub fn covered_digests(doc: &PassportSpec) -> Vec<&str> {
    vec![doc.artifact.digest.as_str()]
}

/// The Statement for a passport document (borrowed into the predicate).
pub fn statement(doc: &PassportSpec) -> Result<PassportStatement<&PassportSpec>, StatementError> {
    let name = image_name(&doc.artifact.image).to_string();
    let subject = covered_digests(doc)
        .into_iter()
        .map(|d| {
            ResourceDescriptor::sha256(Some(name.clone()), None, d)
                .ok_or_else(|| StatementError::Digest(d.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let policy_uri = match &doc.gate {
        Some(g) => format!(
            "/apis/releasepassport.io/v1alpha1/namespaces/{}/policies/{}",
            g.namespace, doc.policy.name
        ),
        None => format!("policies/{}", doc.policy.name),
    };
    let policy = ResourceDescriptor::sha256(
        Some(doc.policy.name.clone()),
        Some(policy_uri),
        &doc.policy.hash,
    )
    .ok_or_else(|| StatementError::PolicyHash(doc.policy.hash.clone()))?;
    let input_attestations = doc
        .evidence
        .iter()
        .filter_map(|e| {
            ResourceDescriptor::sha256(Some(e.connector.clone()), None, e.digest.as_deref()?)
        })
        .collect();
    Ok(Statement {
        type_: STATEMENT_TYPE.to_string(),
        subject,
        predicate_type: VSA_PREDICATE_TYPE.to_string(),
        predicate: VerificationSummary {
            verifier: Verifier {
                id: VERIFIER_ID.to_string(),
                version: BTreeMap::from([(
                    "releasepassport".to_string(),
                    env!("CARGO_PKG_VERSION").to_string(),
                )]),
            },
            time_verified: doc.generated_at,
            resource_uri: format!("{name}@{}", doc.artifact.digest),
            policy,
            input_attestations,
            verification_result: verification_result(doc.decision),
            verified_levels: vec![decision_level(doc.decision)],
            passport: doc,
        },
    })
}

/// The signed payload of a passport document: its Statement as compact JSON.
pub fn payload(doc: &PassportSpec) -> Result<Vec<u8>, super::SignError> {
    let statement = statement(doc)?;
    let mut out = Vec::with_capacity(8 * 1024);
    serde_json::to_writer(&mut out, &statement)?;
    Ok(out)
}

/// Signs a document (whose `envelope` is `None`) into an envelope.
pub fn envelope(
    doc: &PassportSpec,
    signer: &super::PassportSigner,
) -> Result<Envelope, super::SignError> {
    debug_assert!(
        doc.envelope.is_none(),
        "the signed document carries no envelope"
    );
    Ok(dsse::sign(IN_TOTO_PAYLOAD_TYPE, &payload(doc)?, signer))
}

/// A verified attestation: the document read from the verified payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// Key id of the trusted key that verified the signature.
    pub key_id: String,
    /// The passport document, parsed from the signed bytes.
    pub passport: PassportSpec,
    /// `sha256:<hex>` of every subject.
    pub subjects: Vec<String>,
    /// Length of the signed payload in bytes.
    pub payload_len: usize,
}

/// Which verification check failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No envelope: never signed, or written in the earlier format.
    #[error("unsigned: {0}")]
    Unsigned(String),
    /// The envelope or its fields are not of the expected shape.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The envelope does not carry an in-toto attestation.
    #[error("wrong payload type {0:?}: expected application/vnd.in-toto+json")]
    WrongPayloadType(String),
    /// No trusted key has the envelope's key id, and none verifies it.
    #[error("unknown key id {0:?}")]
    UnknownKeyId(String),
    /// The signature does not match the payload.
    #[error("bad signature: the signed payload does not match (key id {key_id:?})")]
    BadSignature { key_id: String },
    /// Signed, but not a passport attestation this version reads.
    #[error("not a passport attestation: {0}")]
    NotAPassport(String),
    /// Signed, but the Statement contradicts the document it carries.
    #[error("inconsistent attestation: {0}")]
    Inconsistent(String),
}

impl VerifyError {
    /// A short machine-matchable name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Unsigned(_) => "Unsigned",
            VerifyError::Malformed(_) => "Malformed",
            VerifyError::WrongPayloadType(_) => "WrongPayloadType",
            VerifyError::UnknownKeyId(_) => "UnknownKeyId",
            VerifyError::BadSignature { .. } => "BadSignature",
            VerifyError::NotAPassport(_) => "NotAPassport",
            VerifyError::Inconsistent(_) => "Inconsistent",
        }
    }
}

impl From<dsse::EnvelopeError> for VerifyError {
    fn from(e: dsse::EnvelopeError) -> Self {
        match e {
            dsse::EnvelopeError::Malformed(m) => VerifyError::Malformed(m),
            dsse::EnvelopeError::WrongPayloadType { found, .. } => {
                VerifyError::WrongPayloadType(found)
            }
            dsse::EnvelopeError::UnknownKeyId(id) => VerifyError::UnknownKeyId(id),
            dsse::EnvelopeError::BadSignature { key_id } => VerifyError::BadSignature { key_id },
        }
    }
}

/// Verifies an envelope and reads the passport from the verified bytes.
pub fn verify_envelope(
    envelope: &Envelope,
    keys: &super::VerifyingKeySet,
) -> Result<Verified, VerifyError> {
    let verified = dsse::verify(envelope, IN_TOTO_PAYLOAD_TYPE, keys)?;
    let statement: PassportStatement<PassportSpec> = serde_json::from_slice(&verified.payload)
        .map_err(|e| {
            VerifyError::NotAPassport(format!("the payload is not a passport Statement: {e}"))
        })?;
    if statement.type_ != STATEMENT_TYPE {
        return Err(VerifyError::NotAPassport(format!(
            "_type {:?} is not {STATEMENT_TYPE}",
            statement.type_
        )));
    }
    if statement.predicate_type != VSA_PREDICATE_TYPE {
        return Err(VerifyError::NotAPassport(format!(
            "predicateType {:?} is not {VSA_PREDICATE_TYPE}",
            statement.predicate_type
        )));
    }
    let subjects: Vec<String> = statement
        .subject
        .iter()
        .filter_map(ResourceDescriptor::sha256_digest)
        .collect();
    check_consistent(&statement, &subjects)?;
    Ok(Verified {
        key_id: verified.key_id,
        passport: statement.predicate.passport,
        subjects,
        payload_len: verified.payload.len(),
    })
}

/// The Statement's own claims must agree with the document it carries: the
/// subjects are exactly the digests the document covers, and the result and
/// level name its decision.
fn check_consistent(
    statement: &PassportStatement<PassportSpec>,
    subjects: &[String],
) -> Result<(), VerifyError> {
    let doc = &statement.predicate.passport;
    if doc.envelope.is_some() {
        return Err(VerifyError::Inconsistent(
            "the signed document carries an envelope of its own".into(),
        ));
    }
    let mut covered: Vec<&str> = covered_digests(doc);
    covered.sort_unstable();
    let mut named: Vec<&str> = subjects.iter().map(String::as_str).collect();
    named.sort_unstable();
    if covered != named || subjects.len() != statement.subject.len() {
        return Err(VerifyError::Inconsistent(format!(
            "subject digests {named:?} are not the digests the passport covers {covered:?}"
        )));
    }
    let vsa = &statement.predicate;
    if vsa.verification_result != verification_result(doc.decision)
        || !vsa.verified_levels.contains(&decision_level(doc.decision))
    {
        return Err(VerifyError::Inconsistent(format!(
            "verificationResult {:?} / verifiedLevels {:?} do not state the decision {}",
            vsa.verification_result, vsa.verified_levels, doc.decision
        )));
    }
    Ok(())
}

/// Verifies a passport as stored (the JSON of a Passport's `spec`, or a
/// bare envelope): only its `envelope` is read; the readable fields beside
/// it are not trusted.
pub fn verify_value(
    value: &serde_json::Value,
    keys: &super::VerifyingKeySet,
) -> Result<Verified, VerifyError> {
    let map = value
        .as_object()
        .ok_or_else(|| VerifyError::Malformed("a passport is a JSON object".into()))?;
    let envelope_value = if map.contains_key("payloadType") {
        value
    } else {
        match map.get("envelope") {
            Some(e) => e,
            None if map.contains_key("signature") => {
                return Err(VerifyError::Unsigned(
                    "written in the earlier format (a signature over canonical JSON, no attestation envelope); \
                     re-evaluate the release to get an attested passport"
                        .into(),
                ));
            }
            None => return Err(VerifyError::Unsigned("the passport has no envelope".into())),
        }
    };
    let envelope: Envelope = serde::Deserialize::deserialize(envelope_value)
        .map_err(|e| VerifyError::Malformed(format!("envelope: {e}")))?;
    verify_envelope(&envelope, keys)
}

/// Verifies a typed passport.
pub fn verify(
    passport: &PassportSpec,
    keys: &super::VerifyingKeySet,
) -> Result<Verified, VerifyError> {
    match &passport.envelope {
        Some(envelope) => verify_envelope(envelope, keys),
        None => Err(VerifyError::Unsigned("the passport has no envelope".into())),
    }
}

/// Whether the readable fields of a stored passport say what its verified
/// document says (they are a copy for kubectl and Argo CD).
pub fn readable_copy_matches(stored: &PassportSpec, verified: &PassportSpec) -> bool {
    let mut readable = stored.clone();
    readable.envelope = None;
    &readable == verified
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_lose_tag_and_digest_but_keep_the_port() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            image_name(&format!("registry.example.com/app@{d}")),
            "registry.example.com/app"
        );
        assert_eq!(
            image_name(&format!("localhost:5000/team/app:v1@{d}")),
            "localhost:5000/team/app"
        );
        assert_eq!(image_name("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(image_name("app:v1"), "app");
    }

    #[test]
    fn levels_are_our_own_and_never_slsa() {
        for d in [Decision::Allow, Decision::Hold, Decision::AllowWithCanary] {
            let level = decision_level(d);
            assert!(level.starts_with("RELEASEPASSPORT_DECISION_") && !level.starts_with("SLSA_"));
        }
        assert_eq!(
            verification_result(Decision::AllowWithCanary),
            VerificationResult::Passed
        );
        assert_eq!(
            verification_result(Decision::RequireApproval),
            VerificationResult::Failed
        );
    }
}
