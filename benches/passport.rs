//! Hot paths of the decision record: evaluate + sign (the DSSE attestation)
//! for a 20-rule policy, verify, and the stages of signing. Results:
//! docs/benchmarks.md; `bench/compare-signing.sh` runs the earlier format's
//! benchmark and this one back to back.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use releasepassport::api::{EvidenceDocument, PolicySpec, ReleaseGateSpec};
use releasepassport::engine::{self, EvaluationInput, Stage};
use releasepassport::passport::{self, PassportSigner, VerifyingKeySet, attestation, dsse};
use serde_json::json;

/// 20 rules over 4 connectors, every operator, a mix of pass and fail.
fn policy() -> PolicySpec {
    let ops = [
        ("equals", json!("Synced"), "sync_status"),
        ("notEquals", json!("Degraded"), "health_status"),
        ("lessThan", json!("2%"), "error_rate"),
        ("lessThanOrEqual", json!("300ms"), "p95_latency"),
        ("greaterThan", json!(2), "available_replicas"),
        ("greaterThanOrEqual", json!("99.5%"), "availability"),
        ("in", json!(null), "tier"),
        ("present", json!(null), "revision"),
        ("equals", json!(0), "active_sev1_incidents"),
        ("equals", json!(true), "change_approval_linked"),
    ];
    let connectors = ["argocd", "prometheus"];
    let mut rules = Vec::new();
    for (c, connector) in connectors.iter().enumerate() {
        for (i, (op, value, fact)) in ops.iter().enumerate() {
            let mut condition = json!({"operator": op});
            if *op == "in" {
                condition["values"] = json!(["gold", "silver"]);
            } else if !value.is_null() {
                condition["value"] = value.clone();
            }
            let on_fail = ["HOLD", "BLOCK", "REQUIRE_APPROVAL"][i % 3];
            rules.push(json!({
                "id": format!("rule-{c}-{i}"),
                "label": format!("{connector} {fact} check"),
                "connector": connector,
                "fact": fact,
                "condition": condition,
                "onFail": on_fail,
                "nextAction": "Fix {rule.label} for {service} {release}, then re-run the {mode} gate.",
            }));
        }
    }
    serde_json::from_value(json!({
        "rules": rules,
        "minConfidence": 80,
        "approval": {"requiredApprovers": 1},
        "canary": {"maxTrafficStepPercent": 10, "watchWindowSeconds": 600}
    }))
    .unwrap()
}

fn evidence() -> Vec<EvidenceDocument> {
    ["argocd", "prometheus"]
        .iter()
        .map(|connector| {
            serde_json::from_value(json!({
                "connector": connector,
                "scope": {"service": "payment-api", "environment": "production", "namespace": "payments"},
                "freshness": {"observedAt": "2026-05-17T06:23:00Z", "maxAgeSeconds": 600},
                "facts": [
                    {"name": "sync_status", "value": "Synced"},
                    {"name": "health_status", "value": "Healthy"},
                    {"name": "error_rate", "value": "2.7%"},
                    {"name": "p95_latency", "value": "240ms"},
                    {"name": "available_replicas", "value": 3},
                    {"name": "availability", "value": "99.9%"},
                    {"name": "tier", "value": "gold"},
                    {"name": "revision", "value": "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"},
                    {"name": "active_sev1_incidents", "value": 0},
                    {"name": "change_approval_linked", "value": false}
                ]
            }))
            .unwrap()
        })
        .collect()
}

fn gate() -> ReleaseGateSpec {
    serde_json::from_value(json!({
        "service": "payment-api",
        "release": "v2.18.4",
        "environment": "production",
        "mode": "enforce",
        "policyRef": {"name": "payment-api-production"},
        "artifact": {
            "image": format!("registry.example.com/payment-api@sha256:{}", "4f3c2a1b".repeat(8)),
            "sourceSha": "3b18e512dba79e4c8300dd08aeb37f8e728b8dad",
            "buildRun": {"provider": "github-actions", "id": "9184467321",
                         "url": "https://ci.example.com/runs/9184467321"}
        },
        "rollback": {"release": "v2.17.9",
                     "image": format!("registry.example.com/payment-api@sha256:{}", "9e8d7c6b".repeat(8))},
        "approvals": [{"actor": "alice@example.com", "reference": "CHG-1042"}]
    }))
    .unwrap()
}

fn signer() -> PassportSigner {
    PassportSigner::new(ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]))
}

fn benches(c: &mut Criterion) {
    let policy = policy();
    let compiled = engine::compile(&policy).unwrap();
    assert_eq!(compiled.rule_count(), 20);
    let evidence = evidence();
    let gate = gate();
    let signer = signer();
    let now = "2026-05-17T06:30:00Z".parse().unwrap();
    let input = EvaluationInput {
        context: Default::default(),
        policy_name: "payment-api-production",
        policy: &compiled,
        gate: &gate,
        gate_ref: None,
        evidence: &evidence,
        now,
        actor: "bench",
        stage: Stage::PreDeploy,
    };

    let mut group = c.benchmark_group("passport");
    group.throughput(Throughput::Elements(1));

    group.bench_function("evaluate_20_rules", |b| {
        b.iter(|| engine::evaluate(black_box(&input)).unwrap())
    });

    // What the controller and the CLI do: the engine's redacted passport,
    // signed without a second redaction pass.
    group.bench_function("evaluate_and_sign_20_rules", |b| {
        b.iter(|| {
            engine::evaluate(black_box(&input))
                .unwrap()
                .into_signed(&signer)
                .unwrap()
        })
    });
    // `passport::sign` on the same document: redacts again, as it does for
    // any passport handed to it.
    group.bench_function("evaluate_then_passport_sign_20_rules", |b| {
        b.iter(|| {
            let mut doc = engine::evaluate(black_box(&input)).unwrap().into_passport();
            passport::sign(&mut doc, &signer).unwrap();
            doc
        })
    });

    let mut doc = engine::evaluate(&input).unwrap().into_passport();
    passport::sign(&mut doc, &signer).unwrap();
    let value = serde_json::to_value(&doc).unwrap();
    let mut keys = VerifyingKeySet::new();
    keys.insert(signer.verifying_key());
    passport::verify_value(&value, &keys).unwrap();
    let mut unsigned = doc.clone();
    unsigned.envelope = None;
    let bytes = attestation::payload(&unsigned).unwrap();

    group.bench_function("verify_20_rule_passport", |b| {
        b.iter(|| passport::verify_value(black_box(&value), &keys).unwrap())
    });
    // The stages of signing, one by one.
    group.bench_function("statement_payload_20_rule_passport", |b| {
        b.iter(|| attestation::payload(black_box(&unsigned)).unwrap())
    });
    group.bench_function("dsse_sign_payload", |b| {
        b.iter(|| dsse::sign(dsse::IN_TOTO_PAYLOAD_TYPE, black_box(&bytes), &signer))
    });
    group.bench_function("to_value_passport", |b| {
        b.iter(|| serde_json::to_value(black_box(&doc)).unwrap())
    });
    group.bench_function("redact_clean_passport", |b| {
        // In place: after the first pass the document holds no secret, as
        // when `sign` redacts an evaluated passport again.
        let mut d = doc.clone();
        b.iter(|| passport::redact::redact_passport(black_box(&mut d)))
    });
    {
        use ed25519_dalek::Signer as _;
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let pae = dsse::pae(dsse::IN_TOTO_PAYLOAD_TYPE, &bytes);
        group.bench_function("ed25519_sign_pae", |b| b.iter(|| key.sign(black_box(&pae))));
        // The fixed part of a signature (key expansion, one fixed-base
        // scalar multiplication), without the SHA-512 passes over the message.
        let short = [0u8; 64];
        group.bench_function("ed25519_sign_64_bytes", |b| {
            b.iter(|| key.sign(black_box(&short)))
        });
        group.bench_function("sha512_pae", |b| {
            use sha2::Digest as _;
            b.iter(|| sha2::Sha512::digest(black_box(&pae)))
        });
    }
    let signed_doc = doc.clone();
    group.bench_function("clone_passport", |b| {
        b.iter(|| black_box(&signed_doc).clone())
    });
    group.bench_function("clone_and_redact_passport", |b| {
        b.iter(|| {
            let mut d = black_box(&signed_doc).clone();
            passport::redact::redact_passport(&mut d);
            d
        })
    });
    group.bench_function("clone_and_sign_passport", |b| {
        b.iter(|| {
            let mut d = black_box(&signed_doc).clone();
            passport::sign(&mut d, &signer).unwrap();
            d
        })
    });
    group.bench_function("compile_20_rule_policy", |b| {
        b.iter(|| engine::compile(black_box(&policy)).unwrap())
    });
    group.finish();
    eprintln!(
        "signed payload of the benchmarked passport: {} bytes (the Statement; {} bytes of the document inside it)",
        bytes.len(),
        serde_json::to_vec(&unsigned).unwrap().len()
    );
}

criterion_group! {
    name = passport_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50);
    targets = benches
}
criterion_main!(passport_benches);
