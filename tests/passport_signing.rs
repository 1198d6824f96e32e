//! The passport as an attestation: DSSE signing over an in-toto Statement,
//! verification from the signed bytes only, and the rejections.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use releasepassport::api::{Envelope, PassportSpec, Policy, ReleaseGate};
use releasepassport::engine::{self, EvaluationInput, Stage};
use releasepassport::passport::statement::{
    PASSPORT_EXTENSION, STATEMENT_TYPE, VSA_PREDICATE_TYPE,
};
use releasepassport::passport::{self, PassportSigner, VerifyError, VerifyingKeySet, dsse};
use serde_json::{Value, json};

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

type Mutation = Box<dyn Fn(&mut Value)>;

fn envelope_of(doc: &PassportSpec) -> Envelope {
    doc.envelope.clone().expect("signed")
}

fn payload_of(doc: &PassportSpec) -> Value {
    let bytes = BASE64.decode(&envelope_of(doc).payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Signs a Statement written by the test (e.g. another subject) with a signer.
fn sign_statement(statement: &Value, signer_key: &str) -> Envelope {
    let signer = PassportSigner::new(key_from_fixture(signer_key));
    let payload = serde_json::to_vec(statement).unwrap();
    dsse::sign(dsse::IN_TOTO_PAYLOAD_TYPE, &payload, &signer)
}

#[test]
fn a_signed_passport_verifies_and_is_read_from_the_signed_bytes() {
    let (doc, signer) = signed_seed_passport();
    let value = serde_json::to_value(&doc).unwrap();
    let verified = passport::verify_value(&value, &keyset(&signer)).unwrap();
    assert_eq!(verified.key_id, signer.key_id());
    assert!(signer.key_id().starts_with("rp-"));
    let mut unsigned = doc.clone();
    unsigned.envelope = None;
    assert_eq!(verified.passport, unsigned);
    assert_eq!(verified.subjects, vec![doc.artifact.digest.clone()]);
}

#[test]
fn the_envelope_is_a_standard_dsse_envelope_over_an_in_toto_statement() {
    let (doc, signer) = signed_seed_passport();
    let envelope = serde_json::to_value(envelope_of(&doc)).unwrap();
    // Exactly the DSSE field names, one signature with our key id, standard padded base64.
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(envelope["signatures"].as_array().unwrap().len(), 1);
    assert_eq!(envelope["signatures"][0]["keyid"], signer.key_id());
    let sig = envelope["signatures"][0]["sig"].as_str().unwrap();
    assert_eq!(BASE64.decode(sig).unwrap().len(), 64);
    assert!(sig.ends_with("=="));
    let statement = payload_of(&doc);
    let keys: Vec<&str> = statement
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, vec!["_type", "predicate", "predicateType", "subject"]);
    assert_eq!(statement["_type"], STATEMENT_TYPE);
    assert_eq!(statement["predicateType"], VSA_PREDICATE_TYPE);
    let hex = doc.artifact.digest.trim_start_matches("sha256:");
    assert_eq!(
        statement["subject"],
        json!([{"name": "registry.example.com/payment-api", "digest": {"sha256": hex}}])
    );
    let vsa = &statement["predicate"];
    assert_eq!(vsa["verificationResult"], "FAILED");
    assert_eq!(
        vsa["verifiedLevels"],
        json!(["RELEASEPASSPORT_DECISION_HOLD"])
    );
    assert_eq!(vsa["verifier"]["id"], "https://releasepassport.io/verifier");
    assert_eq!(vsa["timeVerified"], "2026-05-17T06:30:00Z");
    assert_eq!(
        vsa["resourceUri"],
        format!("registry.example.com/payment-api@{}", doc.artifact.digest)
    );
    assert_eq!(vsa["policy"]["name"], "payment-api-production");
    assert_eq!(
        vsa["policy"]["digest"]["sha256"],
        doc.policy.hash.trim_start_matches("sha256:")
    );
    // Every evidence document is an input attestation, by digest.
    assert_eq!(
        vsa["inputAttestations"].as_array().unwrap().len(),
        doc.evidence.len()
    );
    assert_eq!(vsa[PASSPORT_EXTENSION]["decision"], "HOLD");
    assert!(vsa[PASSPORT_EXTENSION].get("envelope").is_none());
}

#[test]
fn the_pae_is_the_dsse_spec_vector_and_the_spec_signature_verifies_over_it() {
    // secure-systems-lab/dsse protocol.md, "Test Vectors".
    let pae = dsse::pae("http://example.com/HelloWorld", b"hello world");
    assert_eq!(
        pae,
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    // The spec's ECDSA P-256 (SHA-256) signature and public key: the signature
    // holds over our encoding, byte for byte.
    let x = decimal_to_32_bytes(
        "46950820868899156662930047687818585632848591499744589407958293238635476079160",
    );
    let y = decimal_to_32_bytes(
        "5640078356564379163099075877009565129882514886557779369047442380624545832820",
    );
    let mut point = vec![0x04];
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let sig = BASE64
        .decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==")
        .unwrap();
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point);
    key.verify(&pae, &sig)
        .expect("the spec's signature verifies over our PAE");
    assert!(
        key.verify(
            &dsse::pae("http://example.com/HelloWorld", b"hello worlds"),
            &sig
        )
        .is_err()
    );
}

fn decimal_to_32_bytes(decimal: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for digit in decimal.bytes().map(|b| u32::from(b - b'0')) {
        let mut carry = digit;
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "overflow");
    }
    out
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
    // Ed25519 is deterministic: the same document signs to the same envelope.
    let signed = evaluation.sign(&signer).unwrap();
    assert_eq!(signed, doc);
    assert_eq!(evaluation.into_signed(&signer).unwrap(), doc);
}

#[test]
fn the_policy_hash_is_unchanged_by_the_new_canonical_encoder() {
    // Written into examples/passport.yaml by the earlier, hand-written RFC
    // 8785 encoder for this policy: a well-kept crate now computes it.
    let (doc, _) = signed_seed_passport();
    assert_eq!(
        doc.policy.hash,
        "sha256:6f511a1c4ee033375a9ea03ce816b060120754818cd9def9f81973c9442e2980"
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

#[test]
fn flipping_any_bit_of_the_signed_payload_is_detected() {
    let (doc, signer) = signed_seed_passport();
    let keys = keyset(&signer);
    let envelope = envelope_of(&doc);
    let payload = BASE64.decode(&envelope.payload).unwrap();
    // Every byte, one bit each (the whole payload: no field escapes the signature).
    for i in 0..payload.len() {
        let mut bytes = payload.clone();
        bytes[i] ^= 0x01;
        let mut changed = envelope.clone();
        changed.payload = BASE64.encode(&bytes);
        match passport::verify_envelope(&changed, &keys) {
            Err(VerifyError::BadSignature { .. }) => {}
            other => panic!("byte {i} changed: expected BadSignature, got {other:?}"),
        }
    }
}

#[test]
fn the_readable_copy_is_not_what_is_verified() {
    // Changing the fields beside the envelope changes nothing a verifier reads.
    let (doc, signer) = signed_seed_passport();
    let mut value = serde_json::to_value(&doc).unwrap();
    value["decision"] = Value::from("ALLOW");
    value["artifact"]["digest"] = Value::from(format!("sha256:{}", "0".repeat(64)));
    let verified = passport::verify_value(&value, &keyset(&signer)).unwrap();
    assert_eq!(verified.passport.decision.as_str(), "HOLD");
    assert_eq!(verified.subjects, vec![doc.artifact.digest.clone()]);
    let stored: PassportSpec = serde_json::from_value(value).unwrap();
    assert!(!passport::attestation::readable_copy_matches(
        &stored,
        &verified.passport
    ));
    assert!(passport::attestation::readable_copy_matches(
        &doc,
        &verified.passport
    ));
}

#[test]
fn a_wrong_key_is_refused() {
    let (doc, _) = signed_seed_passport();
    let other = PassportSigner::new(key_from_fixture("other.key"));
    let value = serde_json::to_value(&doc).unwrap();
    // Unknown key id: every trusted key is tried, none verifies.
    assert!(matches!(
        passport::verify_value(&value, &keyset(&other)),
        Err(VerifyError::UnknownKeyId(_))
    ));
    // Another key under the signer's id: a bad signature.
    let mut keys = VerifyingKeySet::new();
    keys.insert_with_id(
        PassportSigner::new(key_from_fixture("signing.key")).key_id(),
        other.verifying_key(),
    );
    assert!(matches!(
        passport::verify_value(&value, &keys),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn the_key_id_is_a_hint_not_a_requirement() {
    // DSSE: the key id only narrows the keys tried.
    let (doc, signer) = signed_seed_passport();
    let mut envelope = envelope_of(&doc);
    envelope.signatures[0].keyid = String::new();
    let mut keys = VerifyingKeySet::new();
    keys.insert_with_id("rp-configured", signer.verifying_key());
    assert_eq!(
        passport::verify_envelope(&envelope, &keys).unwrap().key_id,
        "rp-configured"
    );
}

#[test]
fn a_statement_for_another_digest_than_its_passport_is_inconsistent() {
    let (doc, signer) = signed_seed_passport();
    let mut statement = payload_of(&doc);
    statement["subject"][0]["digest"]["sha256"] = Value::from("1".repeat(64));
    let envelope = sign_statement(&statement, "signing.key");
    assert!(matches!(
        passport::verify_envelope(&envelope, &keyset(&signer)),
        Err(VerifyError::Inconsistent(_))
    ));
}

#[test]
fn a_result_that_contradicts_the_decision_is_inconsistent() {
    let (doc, signer) = signed_seed_passport();
    let mut statement = payload_of(&doc);
    statement["predicate"]["verificationResult"] = Value::from("PASSED");
    let envelope = sign_statement(&statement, "signing.key");
    assert!(matches!(
        passport::verify_envelope(&envelope, &keyset(&signer)),
        Err(VerifyError::Inconsistent(_))
    ));
}

#[test]
fn other_statements_and_payload_types_are_not_passports() {
    let (doc, signer) = signed_seed_passport();
    let keys = keyset(&signer);
    for (what, mutate) in [
        (
            "another predicate type",
            Box::new(|s: &mut Value| {
                s["predicateType"] = Value::from("https://slsa.dev/provenance/v1")
            }) as Mutation,
        ),
        (
            "another statement type",
            Box::new(|s: &mut Value| s["_type"] = Value::from("https://in-toto.io/Statement/v0.1")),
        ),
        (
            "an extra top-level field",
            Box::new(|s: &mut Value| s["extra"] = Value::from(1)),
        ),
        (
            "no passport",
            Box::new(|s: &mut Value| {
                s["predicate"]
                    .as_object_mut()
                    .unwrap()
                    .remove(PASSPORT_EXTENSION);
            }),
        ),
    ] {
        let mut statement = payload_of(&doc);
        mutate(&mut statement);
        let err = passport::verify_envelope(&sign_statement(&statement, "signing.key"), &keys)
            .unwrap_err();
        assert_eq!(err.check(), "NotAPassport", "{what}: {err}");
    }
    // A payload type other than in-toto's, even correctly signed.
    let signer2 = PassportSigner::new(key_from_fixture("signing.key"));
    let envelope = dsse::sign(
        "application/json",
        &serde_json::to_vec(&payload_of(&doc)).unwrap(),
        &signer2,
    );
    assert_eq!(
        passport::verify_envelope(&envelope, &keys)
            .unwrap_err()
            .check(),
        "WrongPayloadType"
    );
}

#[test]
fn url_safe_and_unpadded_base64_are_accepted_as_dsse_requires() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (doc, signer) = signed_seed_passport();
    let mut envelope = envelope_of(&doc);
    envelope.payload = URL_SAFE_NO_PAD.encode(BASE64.decode(&envelope.payload).unwrap());
    envelope.signatures[0].sig =
        URL_SAFE_NO_PAD.encode(BASE64.decode(&envelope.signatures[0].sig).unwrap());
    assert!(passport::verify_envelope(&envelope, &keyset(&signer)).is_ok());
}

#[test]
fn unsigned_legacy_and_malformed_passports_are_reported() {
    let (doc, signer) = signed_seed_passport();
    let keys = keyset(&signer);
    let base = serde_json::to_value(&doc).unwrap();
    let cases: Vec<(&str, &str, Mutation)> = vec![
        (
            "no envelope",
            "Unsigned",
            Box::new(|v: &mut Value| {
                v.as_object_mut().unwrap().remove("envelope");
            }),
        ),
        (
            "the earlier format",
            "Unsigned",
            Box::new(|v: &mut Value| {
                let m = v.as_object_mut().unwrap();
                m.remove("envelope");
                m.insert(
                    "signature".into(),
                    json!({"algorithm": "ed25519", "keyId": "rp-x", "value": "AAAA"}),
                );
            }),
        ),
        (
            "envelope not an object",
            "Malformed",
            Box::new(|v: &mut Value| v["envelope"] = Value::from("x")),
        ),
        (
            "payload not base64",
            "Malformed",
            Box::new(|v: &mut Value| v["envelope"]["payload"] = Value::from("%%%")),
        ),
        (
            "no signatures",
            "Malformed",
            Box::new(|v: &mut Value| v["envelope"]["signatures"] = json!([])),
        ),
        (
            "sig too short",
            "Malformed",
            Box::new(|v: &mut Value| v["envelope"]["signatures"][0]["sig"] = Value::from("AAAA")),
        ),
        (
            "sig not base64",
            "Malformed",
            Box::new(|v: &mut Value| v["envelope"]["signatures"][0]["sig"] = Value::from("%%%")),
        ),
        (
            "not an object",
            "Malformed",
            Box::new(|v: &mut Value| *v = Value::from(vec![1, 2])),
        ),
    ];
    for (what, check, mutate) in cases {
        let mut v = base.clone();
        mutate(&mut v);
        let err = passport::verify_value(&v, &keys).unwrap_err();
        assert_eq!(err.check(), check, "{what}: {err}");
    }
}

#[test]
fn a_configured_key_id_is_used_and_verifies() {
    let (mut doc, _) = signed_seed_passport();
    let signer = PassportSigner::with_key_id(key_from_fixture("signing.key"), "rp-public-2026-05");
    passport::sign(&mut doc, &signer).unwrap();
    assert_eq!(doc.signing_key_id(), "rp-public-2026-05");
    let mut keys = VerifyingKeySet::new();
    keys.insert_with_id("rp-public-2026-05", signer.verifying_key());
    assert!(passport::verify(&doc, &keys).is_ok());
}

#[test]
fn the_signed_payload_is_smaller_than_the_document_it_replaces() {
    // The trace no longer repeats each rule's policy result.
    let (doc, _) = signed_seed_passport();
    assert!(doc.trace.iter().all(|t| t.step != "rule"));
    let payload = BASE64.decode(&envelope_of(&doc).payload).unwrap();
    let mut unsigned = doc.clone();
    unsigned.envelope = None;
    let document = serde_json::to_vec(&unsigned).unwrap();
    // The Statement adds a bounded wrapper around the document.
    assert!(
        payload.len() < document.len() + 1500,
        "{} vs {}",
        payload.len(),
        document.len()
    );
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
