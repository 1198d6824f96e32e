//! The CRDs against a real kube-apiserver: schemas, CEL rules, status
//! subresources, printer columns and categories, as a user meets them.

mod support;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Client, Resource};
use releasepassport::api::*;
use serde_json::json;

async fn setup(prefix: &str) -> (Client, String) {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, prefix).await;
    (client, ns)
}

fn api_message(err: kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => panic!("expected a refusal from the apiserver, got {other}"),
    }
}

fn example_gate() -> ReleaseGate {
    support::load_yaml("examples/releasegate.yaml")
}

/// Creates a raw object (so tests can send what the Rust types forbid) and
/// returns the apiserver's refusal message.
async fn create_raw_refused<K: Resource<DynamicType = ()>>(
    client: &Client,
    ns: &str,
    body: serde_json::Value,
) -> String {
    let ar = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let obj: DynamicObject = serde_json::from_value(body).expect("object");
    let result = api.create(&PostParams::default(), &obj).await;
    match result {
        Ok(_) => panic!("the apiserver accepted an invalid {}", K::kind(&())),
        Err(e) => api_message(e),
    }
}

pub fn sample_passport(name: &str) -> Passport {
    let spec: PassportSpec = serde_json::from_value(json!({
        "passportVersion": "2026-05",
        "service": "payment-api",
        "release": "v2.18.4",
        "environment": "production",
        "mode": "shadow",
        "decision": "HOLD",
        "confidence": 82,
        "generatedAt": "2026-05-17T06:30:00Z",
        "artifact": {"image": "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0", "digest": "sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0"},
        "policy": {"name": "payment-api-production", "hash": "sha256:00"},
        "actor": "tests",
        "policyResults": [{"id": "error-rate", "label": "Prometheus error rate below 2%", "state": "fail", "onFail": "HOLD", "required": true, "observed": "2.4%", "threshold": "< 2%"}],
        "nextActions": ["Attach rollback artifact for payment-api v2.17.9."],
        "envelope": {"payloadType": "application/vnd.in-toto+json", "payload": "e30=",
                     "signatures": [{"keyid": "test", "sig": "AAAA"}]}
    }))
    .expect("passport spec");
    Passport::new(name, spec)
}

#[tokio::test]
async fn cluster_accepts_a_valid_object_of_each_kind() {
    let (client, ns) = setup("valid").await;
    let pp = PostParams::default();

    let policy: Policy = support::load_yaml("examples/policy.yaml");
    let created = Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&pp, &policy)
        .await
        .expect("valid Policy is accepted");
    // Defaults from the schema are applied by the apiserver.
    assert_eq!(created.spec.rules[0].on_fail, Decision::Hold);
    assert!(created.spec.rules[0].required);

    for file in [
        "examples/connectorscope-prometheus.yaml",
        "examples/connectorscope-kubernetes.yaml",
        "examples/connectorscope-argocd.yaml",
    ] {
        let scope: ConnectorScope = support::load_yaml(file);
        Api::<ConnectorScope>::namespaced(client.clone(), &ns)
            .create(&pp, &scope)
            .await
            .unwrap_or_else(|e| panic!("{file} is accepted: {e}"));
    }

    let gate = Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .create(&pp, &example_gate())
        .await
        .expect("valid ReleaseGate is accepted");
    assert_eq!(gate.spec.mode, Mode::Shadow);

    Api::<Passport>::namespaced(client.clone(), &ns)
        .create(&pp, &support::load_yaml("examples/passport.yaml"))
        .await
        .expect("valid Passport is accepted");
}

#[tokio::test]
async fn cluster_refuses_an_image_without_digest() {
    let (client, ns) = setup("nodigest").await;
    let mut gate = example_gate();
    gate.spec.artifact.image = "registry.example.com/payment-api:v2.18.4".into();
    let err = Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &gate)
        .await
        .expect_err("a tag without digest is refused");
    let msg = api_message(err);
    assert!(
        msg.contains("spec.artifact.image") && msg.contains("must be pinned by digest"),
        "{msg}"
    );
}

#[tokio::test]
async fn cluster_refuses_a_waiver_without_expiry() {
    let (client, ns) = setup("waiver").await;
    let body = json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseWaiver",
        "metadata": {"name": "no-expiry"},
        "spec": {"gate": "payment-api-production", "ruleId": "error-rate",
                 "digest": format!("sha256:{}", "a".repeat(64)), "reason": "known noisy metric"}
    });
    let msg = create_raw_refused::<ReleaseWaiver>(&client, &ns, body).await;
    assert!(
        msg.contains("spec.expiresAt") && msg.contains("Required value"),
        "{msg}"
    );
}

#[tokio::test]
async fn cluster_refuses_pushed_evidence_under_the_name_of_a_pulled_connector() {
    let (client, ns) = setup("pushed").await;
    let mut body = serde_json::to_value(example_gate()).expect("gate json");
    body["spec"]["evidence"] = json!([{
        "connector": "prometheus", "freshness": {"observedAt": "2026-05-17T06:00:00Z"},
        "facts": [{"name": "error_rate", "value": "0.1%"}]
    }]);
    let msg = create_raw_refused::<ReleaseGate>(&client, &ns, body).await;
    assert!(
        msg.contains("spec.evidence[0].connector")
            && msg
                .contains("pushed evidence cannot use the name of a connector the operator pulls"),
        "{msg}"
    );
}

#[tokio::test]
async fn cluster_keeps_approvals_and_waivers_immutable() {
    let (client, ns) = setup("immutable").await;
    let digest = format!("sha256:{}", "a".repeat(64));
    let approval = ReleaseApproval::new(
        "alice-approves",
        ReleaseApprovalSpec {
            gate: "payment-api-production".into(),
            release: "v2.18.4".into(),
            digest: digest.clone(),
            reference: Some("CHG-1042".into()),
            comment: None,
            approver: String::new(),
        },
    );
    let api: Api<ReleaseApproval> = Api::namespaced(client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &approval)
        .await
        .expect("created by the admin, who holds every verb");
    assert_eq!(
        created.spec.approver, "release-passport-admin",
        "stamped from the authenticated request"
    );
    let err = api
        .patch(
            "alice-approves",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"digest": format!("sha256:{}", "b".repeat(64))}})),
        )
        .await
        .expect_err("an approval cannot move to another digest");
    assert!(api_message(err).contains("a ReleaseApproval is immutable"));
    let waiver = ReleaseWaiver::new(
        "short",
        ReleaseWaiverSpec {
            gate: "payment-api-production".into(),
            rule_id: "error-rate".into(),
            digest,
            reason: "known noisy metric".into(),
            expires_at: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
            author: String::new(),
        },
    );
    let api: Api<ReleaseWaiver> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &waiver)
        .await
        .expect("waiver");
    let err = api
        .patch(
            "short",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"expiresAt": "2030-01-01T00:00:00Z"}})),
        )
        .await
        .expect_err("a waiver cannot be extended");
    assert!(api_message(err).contains("a ReleaseWaiver is immutable"));
}

#[tokio::test]
async fn cluster_refuses_an_unknown_mode() {
    let (client, ns) = setup("mode").await;
    let mut body = serde_json::to_value(example_gate()).expect("gate json");
    body["spec"]["mode"] = json!("canary");
    let msg = create_raw_refused::<ReleaseGate>(&client, &ns, body).await;
    assert!(
        msg.contains("spec.mode") && msg.contains("\"shadow\"") && msg.contains("\"enforce\""),
        "{msg}"
    );
}

#[tokio::test]
async fn cluster_refuses_duplicate_rule_ids() {
    let (client, ns) = setup("dupes").await;
    let mut policy: Policy = support::load_yaml("examples/policy.yaml");
    let first = policy.spec.rules[0].clone();
    policy.spec.rules.push(first);
    let err = Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &policy)
        .await
        .expect_err("duplicate rule ids are refused");
    let msg = api_message(err);
    assert!(
        msg.contains("rule ids must be unique within a Policy"),
        "{msg}"
    );
}

#[tokio::test]
async fn cluster_refuses_a_rule_that_fails_to_allow() {
    let (client, ns) = setup("onfail").await;
    let mut body = serde_json::to_value(support::load_yaml::<Policy>("examples/policy.yaml"))
        .expect("policy json");
    body["spec"]["rules"][0]["onFail"] = json!("ALLOW");
    let msg = create_raw_refused::<Policy>(&client, &ns, body).await;
    assert!(
        msg.contains("onFail must be a decision other than ALLOW"),
        "{msg}"
    );
}

#[tokio::test]
async fn cluster_refuses_connector_scopes_without_their_scope_or_with_inline_credentials() {
    let (client, ns) = setup("scopes").await;
    let mut k8s = serde_json::to_value(support::load_yaml::<ConnectorScope>(
        "examples/connectorscope-kubernetes.yaml",
    ))
    .expect("json");
    k8s["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("serviceAccountName");
    let msg = create_raw_refused::<ConnectorScope>(&client, &ns, k8s).await;
    assert!(msg.contains("set serviceAccountName"), "{msg}");

    let mut prom = serde_json::to_value(support::load_yaml::<ConnectorScope>(
        "examples/connectorscope-prometheus.yaml",
    ))
    .expect("json");
    prom["spec"]["prometheus"]["url"] = json!("https://admin:hunter2@prometheus.example.com");
    let msg = create_raw_refused::<ConnectorScope>(&client, &ns, prom).await;
    assert!(msg.contains("url must not carry credentials"), "{msg}");
}

#[tokio::test]
async fn cluster_keeps_passport_content_immutable_but_status_writable() {
    let (client, ns) = setup("immutable").await;
    let api = Api::<Passport>::namespaced(client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &sample_passport("pp-immutable"))
        .await
        .expect("create passport");

    let mut tampered = created.clone();
    tampered.spec.decision = Decision::Allow;
    let err = api
        .replace("pp-immutable", &PostParams::default(), &tampered)
        .await
        .expect_err("changing signed content is refused");
    assert!(
        api_message(err).contains("a Passport's signed content is immutable"),
        "immutability message"
    );

    // Status is a separate subresource: writing it leaves the spec alone.
    let status = json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "Passport",
        "status": {"supersededBy": "pp-next"}
    });
    let patched = api
        .patch_status(
            "pp-immutable",
            &PatchParams::apply("releasepassport-tests").force(),
            &Patch::Apply(&status),
        )
        .await
        .expect("status subresource is writable");
    assert_eq!(
        patched.status.and_then(|s| s.superseded_by).as_deref(),
        Some("pp-next")
    );
    assert_eq!(patched.spec, created.spec);
}

#[tokio::test]
async fn cluster_writes_release_gate_status_by_server_side_apply() {
    let (client, ns) = setup("status").await;
    let api = Api::<ReleaseGate>::namespaced(client.clone(), &ns);
    let gate = api
        .create(&PostParams::default(), &example_gate())
        .await
        .expect("create gate");
    let generation = gate.metadata.generation.expect("generation");
    let status = json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
        "status": {
            "observedGeneration": generation,
            "decision": "HOLD", "confidence": 82, "passportName": "payment-api-production-1",
            "conditions": [{
                "type": "Promotable", "status": "False", "reason": "Hold",
                "message": "3 checks did not pass", "lastTransitionTime": "2026-05-17T06:30:00Z",
                "observedGeneration": generation
            }]
        }
    });
    let patched = api
        .patch_status(
            "payment-api-production",
            &PatchParams::apply("releasepassport-tests").force(),
            &Patch::Apply(&status),
        )
        .await
        .expect("status written");
    let status = patched.status.expect("status");
    assert_eq!(status.decision, Some(Decision::Hold));
    assert_eq!(status.observed_generation, Some(generation));
    assert_eq!(status.conditions[0].type_, "Promotable");
    // Writing status does not bump the spec generation.
    assert_eq!(patched.metadata.generation, Some(generation));

    let listed = support::kubectl_ok(&["get", "releasegates", "-n", &ns]);
    let header = listed.lines().next().unwrap_or_default();
    for column in [
        "NAME", "SERVICE", "RELEASE", "ENV", "MODE", "DECISION", "PASSPORT", "AGE",
    ] {
        assert!(
            header.contains(column),
            "releasegates column {column}: {header}"
        );
    }
    let row = listed.lines().nth(1).unwrap_or_default();
    for value in [
        "payment-api",
        "v2.18.4",
        "production",
        "shadow",
        "HOLD",
        "payment-api-production-1",
    ] {
        assert!(row.contains(value), "releasegates row has {value}: {row}");
    }
}

#[tokio::test]
async fn cluster_kubectl_prints_passport_columns_and_the_category() {
    let (client, ns) = setup("kubectl").await;
    let pp = PostParams::default();
    Api::<Passport>::namespaced(client.clone(), &ns)
        .create(&pp, &sample_passport("payment-api-production-1"))
        .await
        .expect("passport");
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&pp, &support::load_yaml("examples/policy.yaml"))
        .await
        .expect("policy");
    Api::<ConnectorScope>::namespaced(client.clone(), &ns)
        .create(
            &pp,
            &support::load_yaml("examples/connectorscope-prometheus.yaml"),
        )
        .await
        .expect("scope");
    Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .create(&pp, &example_gate())
        .await
        .expect("gate");

    let passports = support::kubectl_ok(&["get", "pp", "-n", &ns]);
    let mut lines = passports.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "SERVICE",
            "RELEASE",
            "ENV",
            "MODE",
            "DECISION",
            "CONFIDENCE",
            "AGE"
        ]
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..7],
        [
            "payment-api-production-1",
            "payment-api",
            "v2.18.4",
            "production",
            "shadow",
            "HOLD",
            "82"
        ]
    );

    let scopes = support::kubectl_ok(&["get", "connectorscopes", "-n", &ns]);
    let header: Vec<&str> = scopes
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "CONNECTOR",
            "SUPPORT",
            "HEALTH",
            "LAST-OBSERVED",
            "AGE"
        ]
    );

    let all = support::kubectl_ok(&["get", "releasepassport", "-n", &ns]);
    for kind in [
        "policy.releasepassport.io/payment-api-production",
        "connectorscope.releasepassport.io/payment-api-prometheus",
        "releasegate.releasepassport.io/payment-api-production",
        "passport.releasepassport.io/payment-api-production-1",
    ] {
        assert!(
            all.contains(kind),
            "`kubectl get releasepassport` lists {kind}:\n{all}"
        );
    }

    let explain = support::kubectl_ok(&["explain", "releasegate.spec.mode"]);
    assert!(
        explain.contains("enforce") && explain.contains("blocks promotions"),
        "{explain}"
    );
}

#[tokio::test]
async fn cluster_stores_the_example_passport_and_its_signature_still_verifies() {
    let (client, ns) = setup("ppexample").await;
    let passport: Passport = support::load_yaml("examples/passport.yaml");
    let api = Api::<Passport>::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &passport)
        .await
        .expect("the example Passport is valid");
    // Read back the raw JSON the apiserver serves, and verify it as `releasepassport verify` does.
    let ar = ApiResource::erase::<Passport>(&());
    let raw: DynamicObject = Api::namespaced_with(client.clone(), &ns, &ar)
        .get("payment-api-production-example")
        .await
        .expect("read back");
    let pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/passport.pub"),
    )
    .expect("example public key");
    let mut keys = releasepassport::passport::VerifyingKeySet::new();
    keys.insert(releasepassport::passport::load_verifying_key_pem(&pem).expect("public key"));
    let verified = releasepassport::passport::verify_value(&raw.data["spec"], &keys);
    assert!(verified.is_ok(), "{verified:?}");
}
