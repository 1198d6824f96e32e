//! Signing and verification of passports, and the canonical encoding.

use std::path::Path;

use proptest::prelude::*;
use releasepassport::api::{PassportSpec, Policy, ReleaseGate};
use releasepassport::engine::{self, EvaluationInput, Stage};
use releasepassport::passport::{
    self, PassportSigner, VerifyError, VerifyingKeySet, canonical, canonical::canonicalize,
};
use serde_json::Value;

fn key_from_fixture(name: &str) -> ed25519_dalek::SigningKey {
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keys")
            .join(name),
    )
    .unwrap();
    passport::load_signing_key_pem(&pem).unwrap()
}

fn signed_seed_passport() -> (PassportSpec, PassportSigner) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/evaluate/payment-api-hold");
    let policy: Policy =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("policy.yaml")).unwrap()).unwrap();
    let gate: ReleaseGate =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("releasegate.yaml")).unwrap())
            .unwrap();
    let evidence: Vec<_> = ["argocd.json", "ingest.json", "prometheus.json"]
        .iter()
        .map(|f| {
            serde_json::from_str(&std::fs::read_to_string(dir.join("evidence").join(f)).unwrap())
                .unwrap()
        })
        .collect();
    let compiled = engine::compile(&policy.spec).unwrap();
    let mut doc = engine::evaluate(&EvaluationInput {
        context: Default::default(),
        policy_name: "payment-api-production",
        policy: &compiled,
        gate: &gate.spec,
        gate_ref: None,
        evidence: &evidence,
        now: "2026-05-17T06:30:00Z".parse().unwrap(),
        actor: "test",
        stage: Stage::PreDeploy,
    })
    .unwrap()
    .into_passport();
    let signer = PassportSigner::new(key_from_fixture("signing.key"));
    passport::sign(&mut doc, &signer).unwrap();
    (doc, signer)
}

fn keyset(signer: &PassportSigner) -> VerifyingKeySet {
    let mut keys = VerifyingKeySet::new();
    keys.insert(signer.verifying_key());
    keys
}

#[test]
fn a_signed_passport_verifies() {
    let (doc, signer) = signed_seed_passport();
    let value = serde_json::to_value(&doc).unwrap();
    let verified = passport::verify_value(&value, &keyset(&signer)).unwrap();
    assert_eq!(verified.key_id, signer.key_id());
    assert_eq!(doc.signature.algorithm, "ed25519");
    assert!(signer.key_id().starts_with("rp-"));
}

#[test]
fn an_evaluation_signs_to_the_same_passport_as_passport_sign() {
    let (doc, signer) = signed_seed_passport();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/evaluate/payment-api-hold");
    let policy: Policy =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("policy.yaml")).unwrap()).unwrap();
    let gate: ReleaseGate =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("releasegate.yaml")).unwrap())
            .unwrap();
    let evidence: Vec<_> = ["argocd.json", "ingest.json", "prometheus.json"]
        .iter()
        .map(|f| {
            serde_json::from_str(&std::fs::read_to_string(dir.join("evidence").join(f)).unwrap())
                .unwrap()
        })
        .collect();
    let compiled = engine::compile(&policy.spec).unwrap();
    let evaluation = engine::evaluate(&EvaluationInput {
        context: Default::default(),
        policy_name: "payment-api-production",
        policy: &compiled,
        gate: &gate.spec,
        gate_ref: None,
        evidence: &evidence,
        now: "2026-05-17T06:30:00Z".parse().unwrap(),
        actor: "test",
        stage: Stage::PreDeploy,
    })
    .unwrap();
    let signed = evaluation.sign(&signer).unwrap();
    assert_eq!(signed, doc);
    assert_eq!(evaluation.into_signed(&signer).unwrap(), doc);
    let value = serde_json::to_value(&signed).unwrap();
    assert!(passport::verify_value(&value, &keyset(&signer)).is_ok());
    // The message signed is the canonical JSON of the stored value.
    assert_eq!(
        passport::signed_message_of_spec(&signed).unwrap(),
        passport::signed_message(value.as_object().unwrap())
    );
}

#[test]
fn the_fixture_key_pair_matches() {
    let signer = PassportSigner::new(key_from_fixture("signing.key"));
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/signing.pub"),
    )
    .unwrap();
    assert_eq!(
        passport::load_verifying_key_pem(&pem).unwrap(),
        signer.verifying_key()
    );
}

/// Every leaf of the signed content, as a JSON pointer.
fn leaves(value: &Value, pointer: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if pointer.is_empty() && k == "signature" {
                    continue;
                }
                leaves(
                    v,
                    format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, format!("{pointer}/{i}"), out);
            }
        }
        _ => out.push(pointer),
    }
}

fn containers(value: &Value, pointer: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(pointer.clone());
            for (k, v) in map {
                if pointer.is_empty() && k == "signature" {
                    continue;
                }
                containers(v, format!("{pointer}/{k}"), out);
            }
        }
        Value::Array(items) => {
            out.push(pointer.clone());
            for (i, v) in items.iter().enumerate() {
                containers(v, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn assert_bad_signature(value: &Value, keys: &VerifyingKeySet, what: &str) {
    match passport::verify_value(value, keys) {
        Err(VerifyError::BadSignature { .. }) => {}
        other => panic!("{what}: expected BadSignature, got {other:?}"),
    }
}

#[test]
fn changing_any_field_of_the_signed_content_is_detected() {
    let (doc, signer) = signed_seed_passport();
    let keys = keyset(&signer);
    let original = serde_json::to_value(&doc).unwrap();
    let mut paths = Vec::new();
    leaves(&original, String::new(), &mut paths);
    assert!(paths.len() > 50, "only {} leaves", paths.len());
    for path in &paths {
        let mut changed = original.clone();
        let leaf = changed.pointer_mut(path).unwrap();
        *leaf = match leaf.take() {
            Value::String(s) => Value::String(format!("{s}x")),
            Value::Number(n) => Value::from(n.as_f64().unwrap() + 1.0),
            Value::Bool(b) => Value::Bool(!b),
            Value::Null => Value::from("x"),
            other => other,
        };
        assert_bad_signature(&changed, &keys, &format!("changed {path}"));
    }
}

#[test]
fn adding_or_removing_a_field_or_item_is_detected() {
    let (doc, signer) = signed_seed_passport();
    let keys = keyset(&signer);
    let original = serde_json::to_value(&doc).unwrap();
    let mut paths = Vec::new();
    containers(&original, String::new(), &mut paths);
    for path in &paths {
        let mut added = original.clone();
        match added.pointer_mut(path).unwrap() {
            Value::Object(map) => {
                map.insert("injected".into(), Value::Bool(true));
            }
            Value::Array(items) => items.push(Value::Null),
            _ => unreachable!(),
        }
        assert_bad_signature(&added, &keys, &format!("added to {path}"));

        let mut removed = original.clone();
        let container = removed.pointer_mut(path).unwrap();
        let did_remove = match container {
            Value::Object(map) => {
                let key = map.keys().find(|k| k.as_str() != "signature").cloned();
                key.is_some_and(|k| map.remove(&k).is_some())
            }
            Value::Array(items) => items.pop().is_some(),
            _ => false,
        };
        if did_remove {
            assert_bad_signature(&removed, &keys, &format!("removed from {path}"));
        }
    }
}

#[test]
fn flipping_any_byte_of_the_canonical_signed_content_is_detected() {
    let (doc, signer) = signed_seed_passport();
    let keys = keyset(&signer);
    let value = serde_json::to_value(&doc).unwrap();
    let signature = value["signature"].clone();
    let message = passport::signed_message(value.as_object().unwrap());
    let mut still_json = 0;
    for i in 0..message.len() {
        let mut bytes = message.clone();
        bytes[i] ^= 0x01;
        let Ok(mut changed) = serde_json::from_slice::<Value>(&bytes) else {
            continue; // no longer JSON: rejected before any signature check
        };
        let Some(map) = changed.as_object_mut() else {
            continue;
        };
        map.insert("signature".into(), signature.clone());
        still_json += 1;
        assert!(
            passport::verify_value(&changed, &keys).is_err(),
            "byte {i} changed and still verifies"
        );
    }
    assert!(
        still_json > message.len() / 2,
        "{still_json} of {}",
        message.len()
    );
}

#[test]
fn whitespace_and_key_order_of_the_stored_json_do_not_matter() {
    let (doc, signer) = signed_seed_passport();
    let pretty = serde_json::to_string_pretty(&doc).unwrap();
    let value: Value = serde_json::from_str(&pretty).unwrap();
    assert!(passport::verify_value(&value, &keyset(&signer)).is_ok());
}

#[test]
fn unknown_key_id_is_reported() {
    let (doc, _) = signed_seed_passport();
    let other = PassportSigner::new(key_from_fixture("other.key"));
    let value = serde_json::to_value(&doc).unwrap();
    assert!(matches!(
        passport::verify_value(&value, &keyset(&other)),
        Err(VerifyError::UnknownKeyId(_))
    ));
}

#[test]
fn another_key_under_the_same_id_is_a_bad_signature() {
    let (doc, signer) = signed_seed_passport();
    let other = key_from_fixture("other.key");
    let mut keys = VerifyingKeySet::new();
    keys.insert_with_id(signer.key_id(), other.verifying_key());
    let value = serde_json::to_value(&doc).unwrap();
    assert!(matches!(
        passport::verify_value(&value, &keys),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn wrong_algorithm_is_reported() {
    let (doc, signer) = signed_seed_passport();
    let mut value = serde_json::to_value(&doc).unwrap();
    value["signature"]["algorithm"] = Value::from("rsa");
    assert_eq!(
        passport::verify_value(&value, &keyset(&signer)),
        Err(VerifyError::WrongAlgorithm("rsa".into()))
    );
}

type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn malformed_signatures_are_reported() {
    let (doc, signer) = signed_seed_passport();
    let keys = keyset(&signer);
    let base = serde_json::to_value(&doc).unwrap();
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "no signature",
            Box::new(|v: &mut Value| {
                v.as_object_mut().unwrap().remove("signature");
            }),
        ),
        (
            "signature not an object",
            Box::new(|v: &mut Value| v["signature"] = Value::from("x")),
        ),
        (
            "value not base64",
            Box::new(|v: &mut Value| v["signature"]["value"] = Value::from("%%%")),
        ),
        (
            "value too short",
            Box::new(|v: &mut Value| v["signature"]["value"] = Value::from("AAAA")),
        ),
        (
            "value empty",
            Box::new(|v: &mut Value| v["signature"]["value"] = Value::from("")),
        ),
        (
            "keyId a number",
            Box::new(|v: &mut Value| v["signature"]["keyId"] = Value::from(1)),
        ),
        (
            "extra signature field",
            Box::new(|v: &mut Value| v["signature"]["note"] = Value::from("x")),
        ),
        (
            "not an object",
            Box::new(|v: &mut Value| *v = Value::from(vec![1, 2])),
        ),
    ];
    for (what, mutate) in cases {
        let mut v = base.clone();
        mutate(&mut v);
        let err = passport::verify_value(&v, &keys).unwrap_err();
        assert_eq!(err.check(), "Malformed", "{what}: {err}");
    }
}

#[test]
fn a_configured_key_id_is_used_and_verifies() {
    let (mut doc, _) = signed_seed_passport();
    let signer = PassportSigner::with_key_id(key_from_fixture("signing.key"), "rp-public-2026-05");
    passport::sign(&mut doc, &signer).unwrap();
    assert_eq!(doc.signature.key_id, "rp-public-2026-05");
    let mut keys = VerifyingKeySet::new();
    keys.insert_with_id("rp-public-2026-05", signer.verifying_key());
    assert!(passport::verify(&doc, &keys).is_ok());
}

#[test]
fn bad_keys_are_errors_not_panics() {
    for pem in [
        "",
        "not a key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        assert!(passport::load_signing_key_pem(pem).is_err());
        assert!(passport::load_verifying_key_pem(pem).is_err());
    }
}

// Canonical encoding: independent of key order and whitespace.

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(Value::from),
        (-1.0e300f64..1.0e300).prop_map(Value::from),
        "[a-zA-Z0-9 €😀\\\\\"\\n\\t\u{1}-\u{1f}]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z€😀_]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Writes JSON with keys in a shuffled order and random whitespace.
fn next(seed: &mut u64) -> usize {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 33) as usize
}

fn scramble(value: &Value, seed: &mut u64, out: &mut String) {
    let ws = |n: usize| [" ", "\n", "\t", "  ", "", "\r\n"][n % 6];
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            for i in (1..entries.len()).rev() {
                let j = next(seed) % (i + 1);
                entries.swap(i, j);
            }
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws(next(seed)));
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push_str(ws(next(seed)));
                out.push(':');
                out.push_str(ws(next(seed)));
                scramble(v, seed, out);
            }
            out.push_str(ws(next(seed)));
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws(next(seed)));
                scramble(v, seed, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap()),
    }
}

proptest! {
    /// Differential check against an independent RFC 8785 implementation.
    #[test]
    fn canonical_encoding_matches_an_independent_implementation(value in arb_json()) {
        prop_assert_eq!(
            canonical::canonicalize_value(&value),
            serde_json_canonicalizer::to_vec(&value).unwrap()
        );
    }

    #[test]
    fn canonical_encoding_ignores_key_order_and_whitespace(value in arb_json(), seed in any::<u64>()) {
        let plain = serde_json::to_string(&value).unwrap();
        let mut s = seed;
        let mut scrambled = String::new();
        scramble(&value, &mut s, &mut scrambled);
        let a: Value = serde_json::from_str(&plain).unwrap();
        let b: Value = serde_json::from_str(&scrambled).unwrap();
        let ca = canonicalize(&a).unwrap();
        prop_assert_eq!(&ca, &canonicalize(&b).unwrap());
        // The canonical form is a fixed point.
        let again: Value = serde_json::from_slice(&ca).unwrap();
        prop_assert_eq!(&ca, &canonicalize(&again).unwrap());
    }
}
