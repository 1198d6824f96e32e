//! The passport document: canonical encoding, ed25519 signing and
//! verification, redaction and exports. No Kubernetes I/O.
//!
//! The signature covers the RFC 8785 canonical JSON of the passport object
//! without its `signature` member. Verification works on the raw JSON value
//! as stored, never on a re-serialised typed struct, so that a change to any
//! byte of the signed content is detected, including fields a typed reader
//! would drop or normalise.

pub mod canonical;
pub mod export;
pub mod keys;
pub mod redact;

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::api::{PassportSpec, Signature};

pub use keys::{
    KeyError, generate_signing_key, key_id_for, load_signing_key_pem, load_verifying_key_pem,
};

/// The only signature algorithm.
pub const ALGORITHM: &str = "ed25519";

/// A signing key with the key id written into passports.
#[derive(Clone)]
pub struct PassportSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for PassportSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassportSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl PassportSigner {
    /// A signer whose key id is derived from the public key (see [`key_id_for`]).
    pub fn new(key: SigningKey) -> Self {
        let key_id = key_id_for(&key.verifying_key());
        PassportSigner { key, key_id }
    }

    /// A signer with a configured key id (e.g. `rp-prod-2026-05`).
    pub fn with_key_id(key: SigningKey, key_id: impl Into<String>) -> Self {
        PassportSigner {
            key,
            key_id: key_id.into(),
        }
    }

    /// The key id written into signatures.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }
}

/// Why a passport could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The document could not be encoded (never expected for a PassportSpec).
    #[error("encoding the passport: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Redacts and signs a passport in place: `signature` is replaced.
pub fn sign(passport: &mut PassportSpec, signer: &PassportSigner) -> Result<(), SignError> {
    redact::redact_passport(passport);
    sign_redacted(passport, signer)
}

/// Signs a passport that has just been through [`redact::redact_passport`]
/// (the engine's output), without redacting it again. Crate-private: only
/// code that produced the document itself may skip the redaction.
pub(crate) fn sign_redacted(
    passport: &mut PassportSpec,
    signer: &PassportSigner,
) -> Result<(), SignError> {
    passport.signature = Signature {
        algorithm: ALGORITHM.into(),
        key_id: signer.key_id.clone(),
        value: String::new(),
    };
    let message = signed_message_of_spec(passport)?;
    let signature = signer.key.sign(&message);
    passport.signature.value = BASE64.encode(signature.to_bytes());
    Ok(())
}

/// The bytes the signature covers for a typed passport: identical to
/// [`signed_message`] of its JSON value, written straight from the struct.
pub fn signed_message_of_spec(passport: &PassportSpec) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(16 * 1024);
    canonical::write_object_without(passport, "signature", &mut out)?;
    Ok(out)
}

/// The bytes the signature covers: the canonical JSON of the object without
/// `signature`.
pub fn signed_message(passport: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    canonical::canonicalize_object_without(passport, "signature")
}

/// Public keys accepted for verification, by key id.
#[derive(Clone, Debug, Default)]
pub struct VerifyingKeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl VerifyingKeySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key under its derived key id.
    pub fn insert(&mut self, key: VerifyingKey) -> &mut Self {
        self.keys.insert(key_id_for(&key), key);
        self
    }

    /// Adds a key under a configured key id.
    pub fn insert_with_id(&mut self, key_id: impl Into<String>, key: VerifyingKey) -> &mut Self {
        self.keys.insert(key_id.into(), key);
        self
    }

    /// The key for an id.
    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.keys.get(key_id)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Ids of the keys, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }
}

/// A passport whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Key id of the key that signed it.
    pub key_id: String,
}

/// Which verification check failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a JSON object, no `signature`, or a signature field of the wrong shape.
    #[error("malformed passport: {0}")]
    Malformed(String),
    /// `signature.algorithm` is not `ed25519`.
    #[error("wrong algorithm {0:?}: only ed25519 is accepted")]
    WrongAlgorithm(String),
    /// No trusted key has this id.
    #[error("unknown key id {0:?}")]
    UnknownKeyId(String),
    /// The signature does not match the content: the passport was changed
    /// after signing, or signed by another key under the same id.
    #[error("bad signature: the signed content does not match (key id {key_id:?})")]
    BadSignature { key_id: String },
}

impl VerifyError {
    /// A short machine-matchable name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Malformed(_) => "Malformed",
            VerifyError::WrongAlgorithm(_) => "WrongAlgorithm",
            VerifyError::UnknownKeyId(_) => "UnknownKeyId",
            VerifyError::BadSignature { .. } => "BadSignature",
        }
    }
}

/// Verifies a passport as stored (the JSON of `spec`). No I/O.
pub fn verify_value(
    passport: &serde_json::Value,
    keys: &VerifyingKeySet,
) -> Result<Verified, VerifyError> {
    let map = passport
        .as_object()
        .ok_or_else(|| VerifyError::Malformed("a passport is a JSON object".into()))?;
    let signature = map
        .get("signature")
        .ok_or_else(|| VerifyError::Malformed("no signature".into()))?
        .as_object()
        .ok_or_else(|| VerifyError::Malformed("signature is not an object".into()))?;
    let field = |name: &str| -> Result<&str, VerifyError> {
        signature
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| VerifyError::Malformed(format!("signature.{name} is not a string")))
    };
    let algorithm = field("algorithm")?;
    let key_id = field("keyId")?;
    let value = field("value")?;
    if let Some(extra) = signature
        .keys()
        .find(|k| !matches!(k.as_str(), "algorithm" | "keyId" | "value"))
    {
        return Err(VerifyError::Malformed(format!(
            "signature has an unexpected field {extra:?}"
        )));
    }
    if algorithm != ALGORITHM {
        return Err(VerifyError::WrongAlgorithm(algorithm.to_string()));
    }
    if value.is_empty() {
        return Err(VerifyError::Malformed("the passport is not signed".into()));
    }
    let key = keys
        .get(key_id)
        .ok_or_else(|| VerifyError::UnknownKeyId(key_id.to_string()))?;
    let bytes = BASE64
        .decode(value)
        .map_err(|_| VerifyError::Malformed("signature.value is not base64".into()))?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| VerifyError::Malformed("signature.value is not 64 bytes".into()))?;
    let sig = ed25519_dalek::Signature::from_bytes(&bytes);
    let message = signed_message(map);
    key.verify_strict(&message, &sig)
        .map_err(|_| VerifyError::BadSignature {
            key_id: key_id.to_string(),
        })?;
    Ok(Verified {
        key_id: key_id.to_string(),
    })
}

/// Verifies a typed passport (serialised first; prefer [`verify_value`] on
/// stored JSON).
pub fn verify(passport: &PassportSpec, keys: &VerifyingKeySet) -> Result<Verified, VerifyError> {
    let value = serde_json::to_value(passport)
        .map_err(|e| VerifyError::Malformed(format!("cannot encode: {e}")))?;
    verify_value(&value, keys)
}
