//! DSSE, the Dead Simple Signing Envelope (secure-systems-lab/dsse v1.0):
//! the pre-authentication encoding, signing and verification of an
//! envelope. Signatures are pure Ed25519 over the encoding (no prehash):
//! the form cosign, securesystemslib and in-toto verifiers accept.
//!
//! The payload is signed as the exact bytes carried (base64) in the
//! envelope, so no canonical form is needed: a verifier checks the signature
//! over the decoded bytes and then parses those same bytes.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::Signer as _;

use crate::api::{Envelope, EnvelopeSignature};

use super::{PassportSigner, VerifyingKeySet};

/// The payload type of an in-toto attestation.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths in ASCII decimal without leading zeros.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        10 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// An envelope over `payload` with one pure Ed25519 signature, base64 in the
/// standard alphabet with padding.
pub fn sign(payload_type: &str, payload: &[u8], signer: &PassportSigner) -> Envelope {
    let signature = signer.key.sign(&pae(payload_type, payload));
    Envelope {
        payload_type: payload_type.to_string(),
        payload: STANDARD.encode(payload),
        signatures: vec![EnvelopeSignature {
            keyid: signer.key_id.clone(),
            sig: STANDARD.encode(signature.to_bytes()),
        }],
    }
}

/// Why an envelope does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Fields missing or of the wrong shape, or base64 that does not decode.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// The payload type is not the one expected.
    #[error("payload type {found:?} is not {expected:?}")]
    WrongPayloadType { found: String, expected: String },
    /// No signature names a trusted key, and none verifies with any of them.
    #[error("unknown key id {0:?}: no trusted key has it")]
    UnknownKeyId(String),
    /// A trusted key was tried and the signature does not match the payload:
    /// the payload was changed after signing, or another key signed it.
    #[error("bad signature: the payload does not match the signature (key id {key_id:?})")]
    BadSignature { key_id: String },
}

/// The bytes an envelope signs, with the id of the trusted key that verified them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPayload {
    pub key_id: String,
    pub payload: Vec<u8>,
}

/// Base64 as DSSE requires verifiers to accept it: the standard or the
/// URL-safe alphabet, padded or not.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD_LENIENT: GeneralPurpose =
        GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE_LENIENT: GeneralPurpose =
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    STANDARD_LENIENT
        .decode(text)
        .or_else(|_| URL_SAFE_LENIENT.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

/// Verifies an envelope of `payload_type` against trusted keys and returns
/// the payload bytes that were verified (parse these, never the envelope
/// again). One signature by a trusted key is enough. A signature's key id
/// only narrows which key is tried; one without a known id is tried with
/// every trusted key.
pub fn verify(
    envelope: &Envelope,
    payload_type: &str,
    keys: &VerifyingKeySet,
) -> Result<VerifiedPayload, EnvelopeError> {
    let payload = decode_base64(&envelope.payload)
        .ok_or_else(|| EnvelopeError::Malformed("payload is not base64".into()))?;
    if envelope.signatures.is_empty() {
        return Err(EnvelopeError::Malformed(
            "the envelope has no signature".into(),
        ));
    }
    let message = pae(&envelope.payload_type, &payload);
    let mut failure: Option<EnvelopeError> = None;
    for signature in &envelope.signatures {
        let bytes = decode_base64(&signature.sig)
            .ok_or_else(|| EnvelopeError::Malformed("signature is not base64".into()))?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| {
            EnvelopeError::Malformed("signature is not 64 bytes (pure Ed25519)".into())
        })?;
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        let candidates: Vec<(&str, &ed25519_dalek::VerifyingKey)> = match keys.get(&signature.keyid)
        {
            Some(key) => vec![(signature.keyid.as_str(), key)],
            None => keys.iter().collect(),
        };
        if let Some((key_id, _)) = candidates
            .iter()
            .find(|(_, key)| key.verify_strict(&message, &sig).is_ok())
        {
            // The payload type is signed too: check it once the signature holds.
            if envelope.payload_type != payload_type {
                return Err(EnvelopeError::WrongPayloadType {
                    found: envelope.payload_type.clone(),
                    expected: payload_type.to_string(),
                });
            }
            return Ok(VerifiedPayload {
                key_id: (*key_id).to_string(),
                payload,
            });
        }
        let this = if keys.get(&signature.keyid).is_some() {
            EnvelopeError::BadSignature {
                key_id: signature.keyid.clone(),
            }
        } else {
            EnvelopeError::UnknownKeyId(signature.keyid.clone())
        };
        // A bad signature by a known key says more than an unknown key id.
        if !matches!(failure, Some(EnvelopeError::BadSignature { .. })) {
            failure = Some(this);
        }
    }
    Err(failure.unwrap_or_else(|| EnvelopeError::Malformed("no signature".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_of_the_spec_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn lengths_count_bytes_not_characters() {
        assert_eq!(
            pae("t", "é".as_bytes()),
            "DSSEv1 1 t 2 é".as_bytes().to_vec()
        );
    }

    #[test]
    fn both_base64_alphabets_padded_or_not_are_accepted() {
        let bytes = [0xfbu8, 0xff, 0xbf, 0x01];
        for text in ["+/+/AQ==", "+/+/AQ", "-_-_AQ==", "-_-_AQ"] {
            assert_eq!(decode_base64(text).as_deref(), Some(&bytes[..]), "{text}");
        }
        assert_eq!(decode_base64("%%%"), None);
    }
}
