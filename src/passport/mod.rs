//! The passport document: the attestation it is signed as (an in-toto
//! Statement in a DSSE envelope), verification, redaction, content digests
//! and exports. No Kubernetes I/O.
//!
//! The signature of record is the DSSE envelope: pure Ed25519 over the
//! pre-authentication encoding of the payload bytes as carried. Verification
//! decodes those bytes and reads the passport from them, never from the
//! readable copy stored beside the envelope.

pub mod attestation;
pub mod digest;
pub mod dsse;
pub mod export;
pub mod keys;
pub mod redact;
pub mod statement;

use std::collections::HashMap;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::api::PassportSpec;

pub use attestation::{Verified, VerifyError, verify, verify_envelope, verify_value};
pub use keys::{
    KeyError, generate_signing_key, key_id_for, load_signing_key_pem, load_verifying_key_pem,
};

/// A signing key with the key id written into envelopes.
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
    /// The document cannot be stated as an attestation.
    #[error(transparent)]
    Statement(#[from] attestation::StatementError),
    /// The document could not be encoded (never expected for a PassportSpec).
    #[error("encoding the passport: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Redacts and signs a passport in place: its `envelope` is replaced.
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
    passport.envelope = None;
    passport.envelope = Some(attestation::envelope(passport, signer)?);
    Ok(())
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

    /// Every key with its id, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &VerifyingKey)> {
        self.keys.iter().map(|(id, key)| (id.as_str(), key))
    }

    /// Ids of the keys, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }
}
