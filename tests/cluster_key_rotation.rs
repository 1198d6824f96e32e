//! Rotating the passport signing key with the webhook in enforce mode,
//! end to end: the real controller binary (its own signing-key Secret and
//! public-key ConfigMap), restarted with a new key, keeps the old public key
//! in the ConfigMap; its webhook, called by the real kube-apiserver, keeps
//! admitting what the old key signed until the key is removed from the
//! ConfigMap, and never admits what an unlisted key signed.

mod support;

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use releasepassport::controller::keys::{
    CONFIGMAP_KEY_ID, CONFIGMAP_PREVIOUS_KEYS, PublishedKey, SECRET_KEY,
};
use releasepassport::passport::{self, PassportSigner};
use releasepassport::webhook::config::{Endpoint, RenderOptions, render};
use serde_json::json;
use support::controller::{self as ctl, OPERATOR_NAMESPACE, eventually};

const WAIT: Duration = Duration::from_secs(240);
const GATE: &str = "payment-api-production";
/// The release's artifact (examples/releasegate.yaml).
const ARTIFACT: &str = "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const SCOPE_LABEL: &str = "releasepassport.io/webhook-test";

fn pid() -> String {
    std::process::id().to_string()
}

fn image(c: char) -> String {
    format!(
        "registry.example.com/payment-api@sha256:{}",
        c.to_string().repeat(64)
    )
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What this test's controller uses: its own key Secret, public-key
/// ConfigMap, webhook port, certificate and configuration.
struct Names {
    secret: String,
    configmap: String,
    cert_secret: String,
    config: String,
    scope: String,
    addr: String,
}

impl Names {
    fn new() -> Self {
        Self {
            secret: format!("rp-keyrot-signing-{}", pid()),
            configmap: format!("rp-keyrot-public-{}", pid()),
            cert_secret: format!("rp-keyrot-tls-{}", pid()),
            config: format!("rp-keyrot-{}", pid()),
            scope: format!("keyrot-{}", pid()),
            addr: format!("127.0.0.1:{}", free_port()),
        }
    }

    fn start(&self) -> ctl::ControllerProcess {
        ctl::start(
            "unused",
            &format!("keyrot-{}", pid()),
            &[
                "--no-leader-election",
                "--resync-seconds",
                "10",
                "--signing-key-secret",
                &self.secret,
                "--public-key-configmap",
                &self.configmap,
                "--webhook-addr",
                &self.addr,
                "--webhook-self-signed",
                "--webhook-cert-secret",
                &self.cert_secret,
                "--webhook-cert-name",
                "127.0.0.1",
                "--webhook-config-name",
                &self.config,
            ],
        )
    }
}

async fn apply_configuration(client: &Client, names: &Names) {
    let mut config = render(&RenderOptions {
        name: names.config.clone(),
        operator_namespace: OPERATOR_NAMESPACE.into(),
        exclude_namespaces: vec![],
        endpoint: Endpoint::Url(format!("https://{}/validate", names.addr)),
        failure_policy: "Fail".into(),
        enforced_failure_policy: "Fail".into(),
        evidence_failure_policy: "Ignore".into(),
        timeout_seconds: 5,
        ca_bundle_pem: None,
    });
    support::scope_webhooks(&mut config, SCOPE_LABEL, &names.scope);
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = api.delete(&names.config, &DeleteParams::default()).await;
    api.create(&PostParams::default(), &config)
        .await
        .expect("webhook configuration");
}

fn evidence(error_rate: &str) -> Vec<EvidenceDocument> {
    let observed = jiff::Timestamp::now();
    serde_json::from_value(json!([
        {"connector": "ci-argocd", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "ci-prometheus", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "error_rate", "value": error_rate}]},
        {"connector": "ingest", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "active_sev1_incidents", "value": 0}, {"name": "change_approval_linked", "value": true}]}
    ]))
    .expect("evidence")
}

/// The example gate in enforce mode with passing evidence (the change
/// approval linked): its passport is ALLOW for ARTIFACT.
async fn allowing_gate(client: &Client, ns: &str) {
    Api::<Policy>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &support::ci_policy())
        .await
        .expect("policy");
    let mut gate: ReleaseGate = support::load_yaml("examples/releasegate.yaml");
    gate.metadata.namespace = Some(ns.into());
    gate.spec.mode = Mode::Enforce;
    gate.spec.connector_scopes = vec![];
    gate.spec.evidence = evidence("0.4%");
    gate.spec.rollback = Some(Rollback {
        release: "v2.17.9".into(),
        image: Some(image('9')),
    });
    Api::<ReleaseGate>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &gate)
        .await
        .expect("gate");
}

/// The gate's current ALLOW passport, once its signature has key id `key_id`.
async fn current_passport(client: &Client, ns: &str, key_id: &str) -> Passport {
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    let passports: Api<Passport> = Api::namespaced(client.clone(), ns);
    eventually(WAIT, "the gate's ALLOW passport", || {
        let (gates, passports) = (gates.clone(), passports.clone());
        async move {
            let g = gates.get(GATE).await.ok()?;
            let s = g.status?;
            if s.observed_generation != g.metadata.generation || s.decision != Some(Decision::Allow)
            {
                return None;
            }
            let p = passports.get(s.passport_name.as_deref()?).await.ok()?;
            (p.spec.signing_key_id() == key_id).then_some(p)
        }
    })
    .await
}

fn set_image_dry_run(ns: &str, image: &str) -> Output {
    let spec = format!("api={image}");
    support::kubectl(&[
        "-n",
        ns,
        "set",
        "image",
        "deployment/payment-api",
        &spec,
        "--dry-run=server",
    ])
}

/// Waits until the webhook admits (or denies, with `needle` in the message)
/// promoting ARTIFACT; its caches follow the API by watch events.
async fn promotion(ns: &str, admitted: bool, needle: &str, what: &str) -> Output {
    eventually(WAIT, what, || async move {
        let out = set_image_dry_run(ns, ARTIFACT);
        let ok = if admitted {
            out.status.success()
        } else {
            !out.status.success() && stderr(&out).contains(needle)
        };
        ok.then_some(out)
    })
    .await
}

/// Replaces the gate's current passport with `spec` (delete + create).
async fn replace_passport(client: &Client, ns: &str, original: &Passport, spec: PassportSpec) {
    let api: Api<Passport> = Api::namespaced(client.clone(), ns);
    let name = original.metadata.name.clone().expect("name");
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete passport");
    let mut forged = Passport::new(&name, spec);
    forged.metadata.labels = original.metadata.labels.clone();
    forged.metadata.owner_references = original.metadata.owner_references.clone();
    eventually(WAIT, "the replacement passport stored", || {
        let (api, forged) = (api.clone(), forged.clone());
        async move { api.create(&PostParams::default(), &forged).await.ok() }
    })
    .await;
}

async fn configmap_data(client: &Client, name: &str) -> BTreeMap<String, String> {
    Api::<ConfigMap>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .get(name)
        .await
        .expect("public-key ConfigMap")
        .data
        .unwrap_or_default()
}

#[tokio::test]
async fn cluster_a_rotated_key_keeps_its_passports_admitted_until_it_is_retired() {
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let names = Names::new();
    apply_configuration(&client, &names).await;
    let ns = support::namespace(&client, "keyrot").await;
    support::kubectl_ok(&[
        "label",
        "namespace",
        &ns,
        &format!("{SCOPE_LABEL}={}", names.scope),
    ]);

    // Key 1, generated by the controller.
    let mut controller = names.start();
    allowing_gate(&client, &ns).await;
    let first_id = eventually(WAIT, "the published key id", || {
        let client = client.clone();
        let name = names.configmap.clone();
        async move {
            Api::<ConfigMap>::namespaced(client, OPERATOR_NAMESPACE)
                .get_opt(&name)
                .await
                .ok()??
                .data?
                .get(CONFIGMAP_KEY_ID)
                .cloned()
        }
    })
    .await;
    let signed_by_first = current_passport(&client, &ns, &first_id).await;
    // The Deployment, created unlabelled, then labelled (images unchanged).
    let file = std::env::temp_dir().join(format!("rp-keyrot-{}.json", pid()));
    std::fs::write(
        &file,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "payment-api", "labels": {"app": "payment-api"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "payment-api"}},
                     "template": {"metadata": {"labels": {"app": "payment-api"}},
                                  "spec": {"containers": [{"name": "api", "image": image('1')}]}}}
        })
        .to_string(),
    )
    .expect("write");
    support::kubectl_ok(&["-n", &ns, "create", "-f", file.to_str().expect("path")]);
    support::kubectl_ok(&[
        "-n",
        &ns,
        "label",
        "deployment/payment-api",
        &format!("{GATE_LABEL}={GATE}"),
    ]);
    promotion(&ns, true, "", "the key-1 passport admitting the release").await;

    // Rotate: a new key in the Secret, the controller restarted.
    let second = passport::generate_signing_key().expect("key");
    let second_id = passport::key_id_for(&second.verifying_key());
    let pem = passport::keys::signing_key_pem(&second).expect("pem");
    Api::<Secret>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .patch(
            &names.secret,
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {SECRET_KEY: pem}})),
        )
        .await
        .expect("rotate the key");
    controller.kill();
    let controller = names.start();
    let data = eventually(WAIT, "key 2 published, key 1 kept as previous", || {
        let client = client.clone();
        let (name, second_id) = (names.configmap.clone(), second_id.clone());
        async move {
            let data = configmap_data(&client, &name).await;
            (data.get(CONFIGMAP_KEY_ID) == Some(&second_id)).then_some(data)
        }
    })
    .await;
    let previous: Vec<PublishedKey> =
        serde_json::from_str(&data[CONFIGMAP_PREVIOUS_KEYS]).expect("previous keys");
    assert_eq!(previous.len(), 1, "{previous:?}");
    assert_eq!(previous[0].key_id, first_id);
    assert!(previous[0].retired_at.is_some());

    // The passport key 1 signed is still the gate's current one (same
    // decision, same identity) and is still admitted after the restart.
    let still = current_passport(&client, &ns, &first_id).await;
    assert_eq!(still.metadata.name, signed_by_first.metadata.name);
    let out = promotion(
        &ns,
        true,
        "",
        "the key-1 passport admitted after the rotation",
    )
    .await;
    assert!(out.status.success(), "log:\n{}", controller.log());

    // A key that was never listed admits nothing.
    let stranger = PassportSigner::new(passport::generate_signing_key().expect("key"));
    let mut foreign = still.spec.clone();
    passport::sign(&mut foreign, &stranger).expect("sign");
    replace_passport(&client, &ns, &still, foreign).await;
    let out = promotion(&ns, false, "UnknownKeyId", "the unlisted key denied").await;
    assert!(
        stderr(&out).contains("does not verify: UnknownKeyId"),
        "{}",
        stderr(&out)
    );
    let current = Api::<Passport>::namespaced(client.clone(), &ns)
        .get(still.metadata.name.as_deref().expect("name"))
        .await
        .expect("passport");
    replace_passport(&client, &ns, &current, still.spec.clone()).await;
    promotion(&ns, true, "", "the key-1 passport admitted again").await;

    // Retire key 1: removed from the ConfigMap, its passport admits nothing.
    Api::<ConfigMap>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .patch(
            &names.configmap,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {CONFIGMAP_PREVIOUS_KEYS: "[]"}})),
        )
        .await
        .expect("retire key 1");
    let out = promotion(&ns, false, "UnknownKeyId", "the retired key denied").await;
    let err = stderr(&out);
    assert!(err.contains(&first_id), "names the key id: {err}");

    // Deleting that passport makes the controller write it again, signed
    // with key 2, at the gate's next evaluation: promotions work again.
    Api::<Passport>::namespaced(client.clone(), &ns)
        .delete(
            still.metadata.name.as_deref().expect("name"),
            &DeleteParams::default(),
        )
        .await
        .expect("delete the key-1 passport");
    current_passport(&client, &ns, &second_id).await;
    promotion(
        &ns,
        true,
        "",
        "the re-signed passport admitting the release",
    )
    .await;

    // The operator's ServiceAccount may watch that ConfigMap (by name only).
    support::kubectl_ok(&["apply", "-f", "config/rbac/operator.yaml"]);
    let sa = format!("system:serviceaccount:{OPERATOR_NAMESPACE}:release-passport");
    for (verb, what, expected) in [
        ("watch", "configmaps/releasepassport-public-key", "yes"),
        ("list", "configmaps/releasepassport-public-key", "yes"),
        ("watch", "configmaps/some-other-configmap", "no"),
    ] {
        let out = support::kubectl(&[
            "auth",
            "can-i",
            verb,
            what,
            "-n",
            OPERATOR_NAMESPACE,
            "--as",
            &sa,
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            expected,
            "can-i {verb} {what}"
        );
    }

    drop(controller);
    let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete(&names.config, &DeleteParams::default())
        .await;
}
