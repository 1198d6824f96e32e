//! Signing keys: PKCS#8 PEM in, PKCS#8/SPKI PEM out, key ids.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::{DecodePublicKey, EncodePublicKey};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::Digest;

/// Why a key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)")]
    PrivateKey,
    #[error("not an ed25519 public key in SPKI PEM (-----BEGIN PUBLIC KEY-----)")]
    PublicKey,
    #[error("encoding the key: {0}")]
    Encode(String),
    #[error("no randomness available: {0}")]
    Random(String),
}

/// `rp-` and the first 16 hex digits of the SHA-256 of the raw public key.
pub fn key_id_for(key: &VerifyingKey) -> String {
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("rp-{}", super::digest::hex(&digest[..8]))
}

/// Reads a PKCS#8 PEM private key.
pub fn load_signing_key_pem(pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| KeyError::PrivateKey)
}

/// Reads an SPKI PEM public key; a PKCS#8 private key is accepted too (its
/// public half is used).
pub fn load_verifying_key_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    let pem = pem.trim();
    VerifyingKey::from_public_key_pem(pem)
        .or_else(|_| load_signing_key_pem(pem).map(|k| k.verifying_key()))
        .map_err(|_| KeyError::PublicKey)
}

/// A new random key.
pub fn generate_signing_key() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// PKCS#8 PEM of a private key.
pub fn signing_key_pem(key: &SigningKey) -> Result<String, KeyError> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|s| s.to_string())
        .map_err(|e| KeyError::Encode(e.to_string()))
}

/// SPKI PEM of a public key.
pub fn verifying_key_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))
}
