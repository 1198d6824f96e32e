//! No secret from the adversarial corpus (tests/fixtures/secrets.txt)
//! survives into a passport or any export.

use std::io::Read as _;
use std::path::Path;

use releasepassport::api::{
    AppliedBy, BuildRun, EvidenceDocument, Policy, ReleaseApprovalSpec, ReleaseGate,
    ReleaseWaiverSpec,
};
use releasepassport::engine::{
    self, ApprovalInput, EvaluationInput, GateContext, Stage, WaiverInput,
};
use releasepassport::passport::{self, PassportSigner, export, redact};
use serde_json::json;

struct Case {
    text: String,
    secrets: Vec<String>,
}

fn corpus() -> Vec<Case> {
    let raw = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/secrets.txt"),
    )
    .unwrap();
    let mut cases = Vec::new();
    for line in raw.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut text = String::new();
        let mut secrets = Vec::new();
        let mut rest = line;
        while let Some(start) = rest.find("<<") {
            text.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find(">>").expect("unclosed << in corpus");
            // Corpus lines write newlines of PEM blocks as \n escapes.
            let secret = after[..end].replace("\\n", "\n");
            text.push_str(&secret);
            secrets.push(secret);
            rest = &after[end + 2..];
        }
        text.push_str(rest);
        assert!(
            !secrets.is_empty(),
            "corpus line without a marked secret: {line}"
        );
        cases.push(Case { text, secrets });
    }
    cases
}

/// The parts of a secret that must not survive: every line of it that is
/// long enough to be specific (a PEM header alone is not a secret).
fn needles(secret: &str) -> Vec<String> {
    secret
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 6 && !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}

fn assert_clean(haystack: &str, case: &Case, place: &str) {
    for secret in &case.secrets {
        for needle in needles(secret) {
            assert!(
                !haystack.contains(&needle),
                "{place}: secret {needle:?} of {:?} survived",
                case.text
            );
        }
    }
}

#[test]
fn the_corpus_has_at_least_100_secrets() {
    let cases = corpus();
    let n: usize = cases.iter().map(|c| c.secrets.len()).sum();
    assert!(n >= 100, "{n}");
    // The check is able to fail: every secret is findable in its unredacted text.
    for case in &cases {
        for secret in &case.secrets {
            let needles = needles(secret);
            assert!(!needles.is_empty(), "nothing to look for in {secret:?}");
            assert!(needles.iter().all(|n| case.text.contains(n)));
        }
    }
}

#[test]
fn redact_str_removes_every_corpus_secret() {
    for case in corpus() {
        let out = redact::redact_str(&case.text);
        assert_clean(&out, &case, "redact_str");
    }
}

fn example() -> (Policy, ReleaseGate, Vec<EvidenceDocument>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/evaluate/payment-api-hold");
    let policy: Policy =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("policy.yaml")).unwrap()).unwrap();
    let gate: ReleaseGate =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("releasegate.yaml")).unwrap())
            .unwrap();
    let evidence = ["argocd.json", "ingest.json", "prometheus.json"]
        .iter()
        .map(|f| {
            serde_json::from_str(&std::fs::read_to_string(dir.join("evidence").join(f)).unwrap())
                .unwrap()
        })
        .collect();
    (policy, gate, evidence)
}

fn bundle_text(bytes: &[u8]) -> String {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut all = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        all.push_str(&entry.path().unwrap().to_string_lossy());
        let mut s = String::new();
        entry.read_to_string(&mut s).unwrap();
        all.push_str(&s);
    }
    all
}

#[test]
fn no_corpus_secret_survives_in_the_passport_or_any_export() {
    let (policy, gate, evidence) = example();
    let compiled = engine::compile(&policy.spec).unwrap();
    let signer = PassportSigner::new(
        passport::load_signing_key_pem(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/signing.key"),
            )
            .unwrap(),
        )
        .unwrap(),
    );
    let public_pem = passport::keys::verifying_key_pem(&signer.verifying_key()).unwrap();
    for case in corpus() {
        let text = case.text.clone();
        let mut gate = gate.spec.clone();
        let digest = gate.artifact.image.rsplit_once('@').unwrap().1.to_string();
        let approval = ReleaseApprovalSpec {
            gate: "payment-api-production".into(),
            release: gate.release.clone(),
            digest: digest.clone(),
            reference: Some(text.clone()),
            comment: Some(text.clone()),
            approver: "alice@example.com".into(),
        };
        let waiver = ReleaseWaiverSpec {
            gate: "payment-api-production".into(),
            rule_id: "error-rate".into(),
            digest,
            reason: text.clone(),
            expires_at: "2026-05-01T00:00:00Z".parse().unwrap(),
            author: "bob@example.com".into(),
        };
        let approvals = [ApprovalInput {
            name: "alice",
            spec: &approval,
            created_at: None,
        }];
        let waivers = [WaiverInput {
            name: "bob",
            spec: &waiver,
            created_at: None,
        }];
        gate.applied_by = Some(AppliedBy {
            release: Some(text.clone()),
            evidence: Some(text.clone()),
            configuration: None,
        });
        gate.artifact.build_run = Some(BuildRun {
            provider: Some("github-actions".into()),
            id: Some("1".into()),
            url: Some(text.clone()),
        });
        gate.rollback.as_mut().unwrap().release = text.clone();
        let mut evidence = evidence.clone();
        // In the value of a fact a rule reads (observed, reason, trace) ...
        evidence[1].facts[1].value = Some(json!(text.clone()));
        // ... in the scope, under an innocent and a sensitive name ...
        evidence[0].scope.insert("note".into(), text.clone());
        evidence[0].scope.insert("token".into(), text.clone());
        // ... and as the value of a sensitive fact a rule reads.
        evidence[2]
            .facts
            .push(serde_json::from_value(json!({"name": "api_token", "value": text})).unwrap());
        let mut policy = policy.spec.clone();
        policy.rules.push(
            serde_json::from_value(json!({
                "id": "token-present", "label": "Token present", "connector": "prometheus",
                "fact": "api_token", "condition": {"operator": "present"}
            }))
            .unwrap(),
        );
        let compiled_with_token = engine::compile(&policy).unwrap();
        for compiled in [&compiled, &compiled_with_token] {
            let mut doc = engine::evaluate(&EvaluationInput {
                context: GateContext {
                    approvals: &approvals,
                    waivers: &waivers,
                    ..Default::default()
                },
                policy_name: "payment-api-production",
                policy: compiled,
                gate: &gate,
                gate_ref: None,
                evidence: &evidence,
                now: "2026-05-17T06:30:00Z".parse().unwrap(),
                actor: &case.text,
                stage: Stage::PreDeploy,
            })
            .unwrap()
            .into_passport();
            let unsigned = serde_json::to_string(&doc).unwrap();
            assert_clean(&unsigned, &case, "unsigned passport");
            passport::sign(&mut doc, &signer).unwrap();
            let value = serde_json::to_value(&doc).unwrap();
            assert_clean(&value.to_string(), &case, "signed passport");
            let mut keys = passport::VerifyingKeySet::new();
            keys.insert(signer.verifying_key());
            passport::verify_value(&value, &keys).unwrap();

            let prepared = export::prepare(&value).unwrap();
            assert_clean(&export::to_json(&prepared).unwrap(), &case, "json export");
            assert_clean(&export::to_markdown(&prepared), &case, "markdown export");
            assert_clean(&export::to_csv(&prepared), &case, "csv export");
            let bundle = export::to_bundle(&prepared, &public_pem).unwrap();
            assert_clean(&bundle_text(&bundle), &case, "bundle export");
        }
    }
}

#[test]
fn exports_redact_documents_that_were_not_redacted_when_written() {
    let (policy, gate, evidence) = example();
    let compiled = engine::compile(&policy.spec).unwrap();
    let doc = engine::evaluate(&EvaluationInput {
        context: Default::default(),
        policy_name: "p",
        policy: &compiled,
        gate: &gate.spec,
        gate_ref: None,
        evidence: &evidence,
        now: "2026-05-17T06:30:00Z".parse().unwrap(),
        actor: "ci",
        stage: Stage::PreDeploy,
    })
    .unwrap()
    .into_passport();
    for case in corpus() {
        let mut value = serde_json::to_value(&doc).unwrap();
        // Written by something else, straight into the document.
        value["nextActions"] = json!([case.text]);
        value["trace"][0]["message"] = json!(case.text);
        value["evidence"][0]["scope"]["password"] = json!(case.text);
        let prepared = export::prepare(&value).unwrap();
        assert_clean(&export::to_json(&prepared).unwrap(), &case, "json export");
        assert_clean(&export::to_markdown(&prepared), &case, "markdown export");
        assert_clean(&export::to_csv(&prepared), &case, "csv export");
        let bundle = export::to_bundle(&prepared, "-----BEGIN PUBLIC KEY-----\n").unwrap();
        assert_clean(&bundle_text(&bundle), &case, "bundle export");
    }
}

#[test]
fn redaction_keeps_ordinary_passport_text() {
    let (policy, gate, evidence) = example();
    let compiled = engine::compile(&policy.spec).unwrap();
    let e = engine::evaluate(&EvaluationInput {
        context: Default::default(),
        policy_name: "payment-api-production",
        policy: &compiled,
        gate: &gate.spec,
        gate_ref: None,
        evidence: &evidence,
        now: "2026-05-17T06:30:00Z".parse().unwrap(),
        actor: "ci",
        stage: Stage::PreDeploy,
    })
    .unwrap();
    let text = serde_json::to_string(&e.passport).unwrap();
    assert!(!text.contains(redact::REDACTED), "{text}");
}

/// A credential without a recognisable shape (a plain random token in a
/// Secret, as a new user would make it), once loaded, is masked by value
/// wherever a source echoes it: fact values, scope, next actions, and every
/// export — including its Base64 form in an echoed Basic header.
#[test]
fn loaded_secrets_are_masked_by_value_in_the_passport_and_every_export() {
    use base64::Engine as _;
    let token = "Hk3vQ9wZp2TfR7mLx4Nb";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("reader:{token}"));
    let (policy, gate, mut evidence) = example();
    let echoed = format!("upstream rejected {token} (Authorization was {basic})");
    evidence[1].facts[1].value = Some(json!(echoed.clone()));
    evidence[0].scope.insert("note".into(), echoed.clone());
    let evaluate = |evidence: &[EvidenceDocument]| {
        engine::evaluate(&EvaluationInput {
            context: Default::default(),
            policy_name: "payment-api-production",
            policy: &engine::compile(&policy.spec).unwrap(),
            gate: &gate.spec,
            gate_ref: None,
            evidence,
            now: "2026-05-17T06:30:00Z".parse().unwrap(),
            actor: "ci",
            stage: Stage::PreDeploy,
        })
        .unwrap()
        .into_passport()
    };
    // Not a shape redaction knows: before the value is loaded, it shows.
    let before = serde_json::to_string(&evaluate(&evidence)).unwrap();
    assert!(before.contains(token), "the check can fail");

    redact::mask_secret(token);
    redact::mask_secret(&basic);
    let doc = evaluate(&evidence);
    let value = serde_json::to_value(&doc).unwrap();
    let prepared = export::prepare(&value).unwrap();
    for (place, text) in [
        ("passport", value.to_string()),
        ("json export", export::to_json(&prepared).unwrap()),
        ("markdown export", export::to_markdown(&prepared)),
        ("csv export", export::to_csv(&prepared)),
    ] {
        assert!(!text.contains(token), "{place}: {text}");
        assert!(!text.contains(&basic), "{place}: {text}");
    }
    assert!(value.to_string().contains(redact::REDACTED));
}
