//! Content digests: the SHA-256 of a value's RFC 8785 canonical JSON (the
//! policy hash, evidence digests, passport identities), and hex.
//!
//! Canonical JSON is no longer what a signature covers (the DSSE envelope
//! signs the payload bytes as carried); it stays where a digest must not
//! depend on key order or whitespace, and comes from a well-kept crate.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// RFC 8785 (JCS) canonical JSON of a value.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json_canonicalizer::to_vec(value)
}

/// `sha256:<hex>` of a value's canonical JSON.
pub fn canonical_sha256<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    Ok(format!(
        "sha256:{}",
        hex(&Sha256::digest(canonical_json(value)?))
    ))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let value: serde_json::Value =
            serde_json::from_str("{ \"b\": [1, 2.50, \"\\u00e9\"], \"a\": null }").unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&value).unwrap()).unwrap(),
            "{\"a\":null,\"b\":[1,2.5,\"é\"]}"
        );
    }

    #[test]
    fn digests_are_prefixed_lowercase_hex() {
        // SHA-256 of the empty object `{}`.
        assert_eq!(
            canonical_sha256(&serde_json::json!({})).unwrap(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
