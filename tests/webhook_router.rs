//! The admission webhook's router, fed AdmissionReviews as the apiserver
//! sends them (`tests/fixtures/admission/`), answering from an injected
//! in-memory cache: every branch of the decision, and malformed input.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ed25519_dalek::SigningKey;
use kube::api::DynamicObject;
use releasepassport::api::{PassportSpec, ReleaseGate};
use releasepassport::passport::{self, PassportSigner, VerifyingKeySet};
use releasepassport::webhook::server::PendingEvent;
use releasepassport::webhook::{AppState, WebhookCache, WebhookMetrics, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const NS: &str = "payments";
const GATE: &str = "payment-api-production";
const PASSPORT: &str = "payment-api-production-3f5d0c2b8e";
const GENERATION: i64 = 4;

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn image(c: char) -> String {
    format!("registry.example.com/payment-api@{}", digest(c))
}

fn signer() -> PassportSigner {
    PassportSigner::new(SigningKey::from_bytes(&[7; 32]))
}

fn trusted() -> VerifyingKeySet {
    let mut keys = VerifyingKeySet::new();
    keys.insert(signer().verifying_key());
    keys
}

fn gate(mode: &str) -> Value {
    json!({
        "apiVersion": "releasepassport.io/v1alpha1",
        "kind": "ReleaseGate",
        "metadata": {"name": GATE, "namespace": NS, "generation": GENERATION, "uid": "7c1d"},
        "spec": {
            "service": "payment-api", "release": "v2.18.4", "environment": "production",
            "mode": mode,
            "policyRef": {"name": GATE},
            "artifact": {"image": image('a')},
            "rollback": {"release": "v2.17.9", "image": image('9')},
            "target": {"kind": "Deployment", "name": "payment-api"}
        },
        "status": {
            "observedGeneration": GENERATION,
            "decision": "HOLD",
            "passportName": PASSPORT,
            "nextEvaluationAt": jiff::Timestamp::now() + jiff::SignedDuration::from_secs(300)
        }
    })
}

/// A passport for the gate, signed by `signer` (after `edit` changed its JSON).
fn passport_with(decision: &str, signer: &PassportSigner, edit: impl FnOnce(&mut Value)) -> Value {
    let mut spec = json!({
        "passportVersion": "1",
        "service": "payment-api", "release": "v2.18.4", "environment": "production",
        "mode": "enforce", "decision": decision, "confidence": 82,
        "generatedAt": "2026-11-23T07:00:00Z",
        "gate": {"namespace": NS, "name": GATE, "generation": GENERATION},
        "artifact": {"image": image('a'), "digest": digest('a')},
        "policy": {"name": GATE, "hash": format!("sha256:{}", "0011".repeat(16))},
        "actor": "releasepassport-controller/test",
        "policyResults": [
            {"id": "error-rate", "label": "Error rate below 1%", "state": if decision == "HOLD" { "fail" } else { "pass" },
             "onFail": "HOLD", "required": true, "observed": "2.7%", "threshold": "< 1%"},
            {"id": "change-approval", "label": "Change approval linked", "state": if decision == "HOLD" { "missing" } else { "pass" },
             "onFail": "REQUIRE_APPROVAL", "required": true},
            {"id": "sync", "label": "Argo CD synced", "state": "pass", "onFail": "HOLD", "required": true}
        ],
        "nextActions": if decision == "HOLD" {
            json!(["Re-sync the GitOps application and wait for fresh runtime evidence.", "Link the Jira change approval, then re-run the shadow gate."])
        } else { json!([]) },
    });
    edit(&mut spec);
    let mut typed: PassportSpec = serde_json::from_value(spec).expect("passport spec");
    passport::sign(&mut typed, signer).expect("sign");
    serde_json::to_value(&typed).expect("json")
}

fn passport(decision: &str) -> Value {
    passport_with(decision, &signer(), |_| {})
}

fn stored(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1",
        "kind": "Passport",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec
    }))
    .expect("passport object")
}

struct World {
    gates: Vec<Value>,
    passports: Vec<DynamicObject>,
}

impl World {
    fn new(mode: &str, decision: &str) -> Self {
        Self {
            gates: vec![gate(mode)],
            passports: vec![stored(PASSPORT, passport(decision))],
        }
    }

    fn empty() -> Self {
        Self {
            gates: vec![],
            passports: vec![],
        }
    }

    fn state(self) -> (AppState, tokio::sync::mpsc::Receiver<PendingEvent>) {
        let gates: Vec<ReleaseGate> = self
            .gates
            .into_iter()
            .map(|g| serde_json::from_value(g).expect("gate"))
            .collect();
        let cache = WebhookCache::from_objects(gates, self.passports, trusted());
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        (
            AppState {
                cache: Arc::new(cache),
                metrics: WebhookMetrics::unregistered(),
                events: Some(tx),
            },
            rx,
        )
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/admission")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Answer {
    status: StatusCode,
    allowed: bool,
    message: String,
    warnings: Vec<String>,
    uid: String,
}

async fn post(state: AppState, body: Vec<u8>) -> Answer {
    let response = router(state)
        .oneshot(
            Request::post("/validate")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request"),
        )
        .await
        .expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let review: Value = serde_json::from_slice(&bytes).expect("an AdmissionReview comes back");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let r = &review["response"];
    Answer {
        status,
        allowed: r["allowed"].as_bool().expect("allowed"),
        message: r["status"]["message"].as_str().unwrap_or("").to_string(),
        warnings: r["warnings"]
            .as_array()
            .map(|w| {
                w.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        uid: r["uid"].as_str().unwrap_or("").to_string(),
    }
}

async fn review(world: World, name: &str) -> Answer {
    post(world.state().0, fixture(name)).await
}

fn denied(a: &Answer) {
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.allowed, "expected a denial, got allowed");
    assert_eq!(a.uid, "b4c2f6d2-7a0e-4f7e-a8f4-6f3c2d1e0a99");
}

fn admitted(a: &Answer) {
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.allowed, "expected admission, got: {}", a.message);
    assert_eq!(a.uid, "b4c2f6d2-7a0e-4f7e-a8f4-6f3c2d1e0a99");
}

#[tokio::test]
async fn scaling_is_admitted_without_a_passport() {
    let world = World {
        gates: vec![gate("enforce")],
        passports: vec![],
    };
    let a = review(world, "deployment-scale.json").await;
    admitted(&a);
    assert!(a.warnings.is_empty());
}

#[tokio::test]
async fn label_and_annotation_edits_are_admitted_even_without_a_gate() {
    let a = review(World::empty(), "deployment-relabel.json").await;
    admitted(&a);
}

#[tokio::test]
async fn enforce_hold_denies_naming_passport_failing_checks_and_next_actions() {
    let a = review(
        World::new("enforce", "HOLD"),
        "deployment-update-image.json",
    )
    .await;
    denied(&a);
    for needle in [
        PASSPORT,
        "decided HOLD",
        "ReleaseGate payments/payment-api-production",
        "error-rate (fail, observed 2.7%, threshold < 1%)",
        "change-approval (missing)",
        "Next actions: Re-sync the GitOps application and wait for fresh runtime evidence.",
        "Link the Jira change approval",
    ] {
        assert!(a.message.contains(needle), "{needle:?} in {}", a.message);
    }
    assert!(
        !a.message.contains("sync ("),
        "passing checks are not listed"
    );
}

#[tokio::test]
async fn enforce_allow_admits_the_covered_digest() {
    let a = review(
        World::new("enforce", "ALLOW"),
        "deployment-update-image.json",
    )
    .await;
    admitted(&a);
    assert!(a.warnings.is_empty());
}

#[tokio::test]
async fn enforce_allow_denies_a_digest_the_passport_does_not_cover() {
    let a = review(
        World::new("enforce", "ALLOW"),
        "deployment-update-other-digest.json",
    )
    .await;
    denied(&a);
    assert!(
        a.message.contains("is not covered by Passport"),
        "{}",
        a.message
    );
    assert!(a.message.contains(&digest('a')), "{}", a.message);
    assert!(a.message.contains("spec.artifact.image"), "{}", a.message);
}

#[tokio::test]
async fn enforce_denies_an_image_without_a_digest() {
    let a = review(World::new("enforce", "ALLOW"), "deployment-update-tag.json").await;
    denied(&a);
    assert!(
        a.message
            .contains("registry.example.com/payment-api:v2.18.4")
            && a.message.contains("is not pinned by digest"),
        "{}",
        a.message
    );
}

#[tokio::test]
async fn enforce_checks_init_containers_too() {
    let a = review(
        World::new("enforce", "ALLOW"),
        "deployment-update-init-container.json",
    )
    .await;
    denied(&a);
    assert!(a.message.contains("container migrate"), "{}", a.message);
}

#[tokio::test]
async fn shadow_admits_with_warnings_carrying_the_decision_and_failing_checks() {
    let a = review(World::new("shadow", "HOLD"), "deployment-update-image.json").await;
    admitted(&a);
    let all = a.warnings.join("\n");
    assert!(all.contains("enforce mode would deny"), "{all}");
    assert!(all.contains("decided HOLD"), "{all}");
    assert!(all.contains("error-rate"), "{all}");
}

#[tokio::test]
async fn shadow_allow_admits_with_a_note() {
    let a = review(
        World::new("shadow", "ALLOW"),
        "deployment-update-image.json",
    )
    .await;
    admitted(&a);
    assert_eq!(a.warnings.len(), 1);
    assert!(a.warnings[0].contains("enforce mode would admit"));
}

/// The gate, having proved the release of `image('9')` (it held an ALLOW
/// passport and ran), until `until` when given.
fn gate_that_proved_nine(mode: &str, until: Option<jiff::Timestamp>) -> Value {
    let mut g = gate(mode);
    g["status"]["provenReleases"] = json!([{
        "release": "v2.17.9", "image": image('9'), "digest": digest('9'),
        "passport": "payment-api-production-0000000009", "allowedAt": "2026-11-20T07:00:00Z",
        "provenAt": "2026-11-20T07:05:00Z", "lastSeenAt": "2026-11-23T06:00:00Z",
        "rollbackUntil": until
    }]);
    g
}

#[tokio::test]
async fn a_rollback_to_a_release_the_gate_proved_is_admitted_under_hold_with_a_warning_and_an_event()
 {
    let world = World {
        gates: vec![gate_that_proved_nine("enforce", None)],
        passports: vec![stored(PASSPORT, passport("HOLD"))],
    };
    let (state, mut events) = world.state();
    let a = post(state, fixture("deployment-rollback.json")).await;
    admitted(&a);
    assert!(
        a.warnings
            .iter()
            .any(|w| w.contains("rollback") && w.contains("v2.17.9") && w.contains("proved")),
        "{:?}",
        a.warnings
    );
    let event = events.try_recv().expect("an Event for the gate");
    assert_eq!(event.gate, GATE);
    assert_eq!(event.namespace, NS);
    assert_eq!(event.event.reason, "RollbackAdmitted");
    assert_eq!(
        event.event.actor.as_deref(),
        Some("kubernetes-admin"),
        "the authenticated user of the request"
    );
}

#[tokio::test]
async fn a_proven_release_is_a_rollback_target_even_without_a_passport() {
    let world = World {
        gates: vec![gate_that_proved_nine("enforce", None)],
        passports: vec![],
    };
    admitted(&review(world, "deployment-rollback.json").await);
}

#[tokio::test]
async fn a_declared_rollback_image_the_gate_never_proved_is_a_promotion_like_any_other() {
    let a = review(World::new("enforce", "HOLD"), "deployment-rollback.json").await;
    denied(&a);
    assert!(
        a.message.contains("declared rollback image") && a.message.contains("never proved it"),
        "{}",
        a.message
    );
}

#[tokio::test]
async fn a_proven_release_past_its_rollback_window_is_no_rollback_target() {
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let world = World {
        gates: vec![gate_that_proved_nine("enforce", Some(past))],
        passports: vec![stored(PASSPORT, passport("HOLD"))],
    };
    denied(&review(world, "deployment-rollback.json").await);
}

#[tokio::test]
async fn a_shadow_gate_the_platform_enforces_denies() {
    // spec.mode is shadow, but the operator applied the namespace's minimum.
    let mut g = gate("shadow");
    g["status"]["mode"] = json!("enforce");
    let world = World {
        gates: vec![g],
        passports: vec![stored(PASSPORT, passport("HOLD"))],
    };
    let a = review(world, "deployment-update-image.json").await;
    denied(&a);
    assert!(a.message.contains("enforce mode"), "{}", a.message);
}

/// An AdmissionReview of a ReleaseGate update whose pushed evidence was
/// observed at `observed_at`.
fn gate_review(observed_at: jiff::Timestamp) -> Vec<u8> {
    let mut object = gate("enforce");
    object["spec"]["evidence"] = json!([{
        "connector": "ingest", "freshness": {"observedAt": observed_at, "maxAgeSeconds": 3600},
        "facts": [{"name": "active_sev1_incidents", "value": 0}]
    }]);
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "b4c2f6d2-7a0e-4f7e-a8f4-6f3c2d1e0a99",
            "kind": {"group": "releasepassport.io", "version": "v1alpha1", "kind": "ReleaseGate"},
            "resource": {"group": "releasepassport.io", "version": "v1alpha1", "resource": "releasegates"},
            "name": GATE, "namespace": NS, "operation": "UPDATE",
            "userInfo": {"username": "system:serviceaccount:payments:ci"},
            "object": object, "oldObject": gate("enforce")
        }
    }))
    .expect("review")
}

#[tokio::test]
async fn pushed_evidence_observed_in_the_future_is_refused_with_an_event_naming_the_pusher() {
    let (state, mut events) = World::new("enforce", "HOLD").state();
    let now = jiff::Timestamp::now();
    admitted(&post(state.clone(), gate_review(now)).await);
    let a = post(
        state,
        gate_review(now + jiff::SignedDuration::from_hours(2)),
    )
    .await;
    denied(&a);
    assert!(
        a.message.contains("must not be observed in the future"),
        "{}",
        a.message
    );
    let event = events.try_recv().expect("an Event on the gate");
    assert_eq!(event.gate, GATE);
    assert_eq!(event.event.reason, "EvidenceRefused");
    assert_eq!(
        event.event.actor.as_deref(),
        Some("system:serviceaccount:payments:ci")
    );
}

#[tokio::test]
async fn a_denial_records_an_event_on_the_gate_but_a_dry_run_does_not() {
    let (state, mut events) = World::new("enforce", "HOLD").state();
    denied(&post(state.clone(), fixture("deployment-create.json")).await);
    let event = events.try_recv().expect("an Event");
    assert_eq!(event.event.reason, "AdmissionDenied");
    denied(&post(state, fixture("deployment-create-dry-run.json")).await);
    assert!(events.try_recv().is_err(), "no Event for a dry run");
}

#[tokio::test]
async fn a_missing_gate_denies_and_says_what_to_do() {
    let a = review(World::empty(), "deployment-update-image.json").await;
    denied(&a);
    assert!(
        a.message
            .contains("ReleaseGate payments/payment-api-production does not exist"),
        "{}",
        a.message
    );
    assert!(a.message.contains("remove the label"), "{}", a.message);
}

#[tokio::test]
async fn a_missing_passport_denies_and_says_what_to_do() {
    let world = World {
        gates: vec![gate("enforce")],
        passports: vec![],
    };
    let a = review(world, "deployment-update-image.json").await;
    denied(&a);
    assert!(
        a.message.contains(&format!("{PASSPORT} does not exist")),
        "{}",
        a.message
    );
    assert!(
        a.message.contains("kubectl get releasegate"),
        "{}",
        a.message
    );
}

#[tokio::test]
async fn a_passport_changed_after_signing_admits_nothing() {
    // The signed payload, changed to say ALLOW.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut spec = passport("HOLD");
    let payload = String::from_utf8(
        b64.decode(spec["envelope"]["payload"].as_str().expect("payload"))
            .expect("base64"),
    )
    .expect("utf-8");
    let tampered = payload.replacen("\"decision\":\"HOLD\"", "\"decision\":\"ALLOW\"", 1);
    assert_ne!(payload, tampered);
    spec["envelope"]["payload"] = json!(b64.encode(tampered));
    let world = World {
        gates: vec![gate("enforce")],
        passports: vec![stored(PASSPORT, spec)],
    };
    let a = review(world, "deployment-update-image.json").await;
    denied(&a);
    assert!(
        a.message.contains("does not verify: BadSignature"),
        "{}",
        a.message
    );
}

#[tokio::test]
async fn the_decision_is_read_from_the_signed_payload_not_the_readable_copy() {
    // The fields beside the envelope say ALLOW; the signed document says HOLD.
    let mut spec = passport("HOLD");
    spec["decision"] = json!("ALLOW");
    spec["policyResults"] = json!([]);
    let world = World {
        gates: vec![gate("enforce")],
        passports: vec![stored(PASSPORT, spec)],
    };
    let a = review(world, "deployment-update-image.json").await;
    denied(&a);
    assert!(a.message.contains("decided HOLD"), "{}", a.message);
    assert!(a.message.contains("error-rate (fail"), "{}", a.message);
}

#[tokio::test]
async fn a_passport_signed_with_an_unknown_key_admits_nothing() {
    let stranger = PassportSigner::new(SigningKey::from_bytes(&[9; 32]));
    let world = World {
        gates: vec![gate("enforce")],
        passports: vec![stored(PASSPORT, passport_with("ALLOW", &stranger, |_| {}))],
    };
    let a = review(world, "deployment-update-image.json").await;
    denied(&a);
    assert!(a.message.contains("UnknownKeyId"), "{}", a.message);
}

#[tokio::test]
async fn a_passport_for_an_older_generation_of_the_gate_is_stale() {
    let world = World {
        gates: vec![gate("enforce")],
        passports: vec![stored(
            PASSPORT,
            passport_with("ALLOW", &signer(), |p| {
                p["gate"]["generation"] = json!(GENERATION - 1)
            }),
        )],
    };
    let a = review(world, "deployment-update-image.json").await;
    denied(&a);
    assert!(a.message.contains("is not current"), "{}", a.message);
}

#[tokio::test]
async fn a_gate_whose_status_lags_its_spec_is_stale() {
    let mut g = gate("enforce");
    g["metadata"]["generation"] = json!(GENERATION + 1);
    let world = World {
        gates: vec![g],
        passports: vec![stored(PASSPORT, passport("ALLOW"))],
    };
    let a = review(world, "deployment-update-image.json").await;
    denied(&a);
    assert!(a.message.contains("is not current"), "{}", a.message);
}

#[tokio::test]
async fn an_overdue_evaluation_is_stale() {
    let mut g = gate("enforce");
    g["status"]["nextEvaluationAt"] = json!("2026-01-01T00:00:00Z");
    let world = World {
        gates: vec![g],
        passports: vec![stored(PASSPORT, passport("ALLOW"))],
    };
    let a = review(world, "deployment-update-image.json").await;
    denied(&a);
    assert!(a.message.contains("overdue"), "{}", a.message);
}

#[tokio::test]
async fn a_passport_issued_for_another_gate_admits_nothing() {
    let world = World {
        gates: vec![gate("enforce")],
        passports: vec![stored(
            PASSPORT,
            passport_with("ALLOW", &signer(), |p| {
                p["gate"]["name"] = json!("checkout-production")
            }),
        )],
    };
    let a = review(world, "deployment-update-image.json").await;
    denied(&a);
    assert!(
        a.message
            .contains("issued for ReleaseGate payments/checkout-production"),
        "{}",
        a.message
    );
}

#[tokio::test]
async fn allow_with_canary_admits_a_canary_rollout() {
    let a = review(
        World::new("enforce", "ALLOW_WITH_CANARY"),
        "rollout-canary-update-image.json",
    )
    .await;
    admitted(&a);
}

#[tokio::test]
async fn allow_with_canary_denies_a_deployment() {
    let a = review(
        World::new("enforce", "ALLOW_WITH_CANARY"),
        "deployment-update-image.json",
    )
    .await;
    denied(&a);
    assert!(a.message.contains("progressive rollout"), "{}", a.message);
}

#[tokio::test]
async fn statefulsets_are_gated_like_deployments() {
    denied(
        &review(
            World::new("enforce", "HOLD"),
            "statefulset-update-image.json",
        )
        .await,
    );
    admitted(
        &review(
            World::new("enforce", "ALLOW"),
            "statefulset-update-image.json",
        )
        .await,
    );
}

#[tokio::test]
async fn create_is_a_promotion() {
    denied(&review(World::new("enforce", "HOLD"), "deployment-create.json").await);
    admitted(&review(World::new("enforce", "ALLOW"), "deployment-create.json").await);
}

#[tokio::test]
async fn removing_the_label_while_changing_the_image_does_not_escape_the_gate() {
    let a = review(
        World::new("enforce", "ALLOW"),
        "deployment-unlabel-and-update-image.json",
    )
    .await;
    denied(&a);
    assert!(a.message.contains("not covered"), "{}", a.message);
}

#[tokio::test]
async fn other_kinds_are_admitted_untouched() {
    let mut body: Value =
        serde_json::from_slice(&fixture("deployment-update-image.json")).expect("json");
    body["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
    let (state, _) = World::empty().state();
    admitted(&post(state, serde_json::to_vec(&body).expect("json")).await);
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_a_clear_error() {
    let (state, _) = World::empty().state();
    let a = post(state, fixture("not-json.txt")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.allowed);
    assert!(
        a.message.contains("not an AdmissionReview"),
        "{}",
        a.message
    );
}

#[tokio::test]
async fn a_review_without_a_request_gets_a_clear_error() {
    let (state, _) = World::empty().state();
    let a = post(state, fixture("no-request.json")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.message.contains("has no request"), "{}", a.message);
}

#[tokio::test]
async fn a_request_whose_object_has_the_wrong_shape_gets_a_clear_error() {
    let mut body: Value =
        serde_json::from_slice(&fixture("deployment-update-image.json")).expect("json");
    body["request"]["object"]["metadata"] = json!("not an object");
    let (state, _) = World::empty().state();
    let a = post(state, serde_json::to_vec(&body).expect("json")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.allowed);
}

#[tokio::test]
async fn requests_are_counted_by_result_mode_and_reason() {
    let (state, _) = World::new("enforce", "HOLD").state();
    let metrics = state.metrics.clone();
    denied(&post(state.clone(), fixture("deployment-update-image.json")).await);
    admitted(&post(state, fixture("deployment-scale.json")).await);
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register("wh", "test", metrics.requests.clone());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    assert!(
        text.contains(r#"wh_total{result="deny",mode="enforce",reason="decision"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wh_total{result="admit",mode="enforce",reason="unchanged"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn an_update_without_an_object_is_denied_as_malformed() {
    let (state, _) = World::new("enforce", "ALLOW").state();
    let metrics = state.metrics.clone();
    let a = post(state, fixture("deployment-update-no-object.json")).await;
    denied(&a);
    assert!(a.message.contains("has no object"), "{}", a.message);
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register("wh", "test", metrics.requests.clone());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    assert!(
        text.contains(r#"wh_total{result="deny",mode="none",reason="malformed"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_pod_template_of_the_wrong_shape_gets_a_clear_error() {
    let (state, _) = World::new("enforce", "ALLOW").state();
    let a = post(
        state,
        fixture("deployment-update-containers-not-a-list.json"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.allowed);
    assert!(
        a.message.contains("not an AdmissionReview") && a.message.contains("invalid type"),
        "{}",
        a.message
    );
}

#[tokio::test]
async fn a_request_without_a_uid_gets_a_clear_error() {
    let (state, _) = World::new("enforce", "ALLOW").state();
    let a = post(state, fixture("deployment-update-no-uid.json")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.allowed);
    assert!(a.message.contains("missing field `uid`"), "{}", a.message);
}

#[tokio::test]
async fn operations_other_than_create_and_update_are_admitted_untouched() {
    let a = review(World::new("enforce", "HOLD"), "deployment-delete.json").await;
    admitted(&a);
    assert!(a.warnings.is_empty());
}

#[tokio::test]
async fn escaped_json_strings_are_read_like_plain_ones() {
    // The label and the image are the ones of deployment-update-image.json,
    // written with JSON escapes (\u0061, \/).
    admitted(
        &review(
            World::new("enforce", "ALLOW"),
            "deployment-update-image-escaped.json",
        )
        .await,
    );
    let a = review(
        World::new("enforce", "HOLD"),
        "deployment-update-image-escaped.json",
    )
    .await;
    denied(&a);
    assert!(a.message.contains(GATE), "{}", a.message);
}

#[tokio::test]
async fn trusted_keys_can_change_while_serving_and_a_removed_key_admits_nothing() {
    let retired = PassportSigner::new(SigningKey::from_bytes(&[11; 32]));
    let world = World {
        gates: vec![gate("enforce")],
        passports: vec![stored(PASSPORT, passport_with("ALLOW", &retired, |_| {}))],
    };
    let (state, _) = world.state();
    // Not trusted yet: denied, and the result is memoised.
    let a = post(state.clone(), fixture("deployment-update-image.json")).await;
    denied(&a);
    assert!(a.message.contains("UnknownKeyId"), "{}", a.message);
    // Listed (as a previous key would be): admitted.
    let mut keys = trusted();
    keys.insert(retired.verifying_key());
    state.cache.set_keys(keys);
    admitted(&post(state.clone(), fixture("deployment-update-image.json")).await);
    admitted(&post(state.clone(), fixture("deployment-update-image.json")).await);
    // Removed: denied again with the same message as any unknown key.
    state.cache.set_keys(trusted());
    let a = post(state, fixture("deployment-update-image.json")).await;
    denied(&a);
    assert!(
        a.message.contains("does not verify: UnknownKeyId"),
        "{}",
        a.message
    );
}
