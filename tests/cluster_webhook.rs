//! The admission webhook end to end: the real controller binary serves it
//! over TLS (self-signed bootstrap, caBundle patched into the configuration),
//! the real kube-apiserver calls it, and the real kubectl shows what a user
//! sees.

mod support;

use std::process::Output;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use releasepassport::passport::{self, PassportSigner};
use releasepassport::webhook::config::{Endpoint, RenderOptions, render};
use serde_json::json;
use support::controller::{self as ctl, eventually};

/// A bound on waits: the shared control plane may be busy with other tests.
const WAIT: Duration = Duration::from_secs(240);
const GATE: &str = "payment-api-production";
/// The release's artifact (examples/releasegate.yaml).
const ARTIFACT: &str = "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// Namespace label that puts a test namespace in scope of this process's configuration.
const SCOPE_LABEL: &str = "releasepassport.io/webhook-test";

fn image(c: char) -> String {
    format!(
        "registry.example.com/payment-api@sha256:{}",
        c.to_string().repeat(64)
    )
}

fn pid() -> String {
    std::process::id().to_string()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A configuration for this process: URL to 127.0.0.1, only namespaces
/// labelled `SCOPE_LABEL=<value>`.
fn webhook_configuration(name: &str, port: u16, scope: &str) -> ValidatingWebhookConfiguration {
    let mut config = render(&RenderOptions {
        name: name.into(),
        operator_namespace: ctl::OPERATOR_NAMESPACE.into(),
        exclude_namespaces: vec![],
        endpoint: Endpoint::Url(format!("https://127.0.0.1:{port}/validate")),
        failure_policy: "Fail".into(),
        timeout_seconds: 5,
        ca_bundle_pem: None,
    });
    for w in config.webhooks.iter_mut().flatten() {
        if let Some(sel) = w.namespace_selector.as_mut() {
            sel.match_labels = Some([(SCOPE_LABEL.to_string(), scope.to_string())].into());
        }
    }
    config
}

async fn apply_configuration(client: &Client, config: &ValidatingWebhookConfiguration) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let name = config.metadata.name.clone().expect("name");
    let _ = api.delete(&name, &DeleteParams::default()).await;
    api.create(&PostParams::default(), config)
        .await
        .expect("webhook configuration");
}

/// One controller (serving the webhook) and one configuration per test binary.
async fn setup(prefix: &str) -> (Client, String) {
    static CONTROLLER: OnceLock<Mutex<ctl::ControllerProcess>> = OnceLock::new();
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let client = support::client().await;
    READY
        .get_or_init(|| async {
            support::install_crds(&client).await;
            ctl::operator_namespace(&client).await;
            let port = free_port();
            let config_name = format!("rp-webhook-test-{}", pid());
            apply_configuration(&client, &webhook_configuration(&config_name, port, &pid())).await;
            let addr = format!("127.0.0.1:{port}");
            CONTROLLER.get_or_init(|| {
                Mutex::new(ctl::start(
                    &format!("rp-webhook-controller-{}", pid()),
                    "webhook-tests",
                    &[
                        "--resync-seconds",
                        "30",
                        "--webhook-addr",
                        &addr,
                        "--webhook-self-signed",
                        "--webhook-cert-secret",
                        "rp-webhook-test-tls",
                        "--webhook-cert-name",
                        "127.0.0.1",
                        "--webhook-config-name",
                        &config_name,
                    ],
                ))
            });
            // The apiserver reaches the webhook over TLS once the caBundle is in:
            // an object labelled for a gate that does not exist is denied by it.
            let ns = scoped_namespace(&client, "wh-ready").await;
            eventually(WAIT, "the apiserver calling the webhook", || {
                let ns = ns.clone();
                async move {
                    let out = create_deployment_kubectl(
                        &ns,
                        "probe",
                        &image('1'),
                        Some("no-such-gate"),
                        true,
                    );
                    let err = String::from_utf8_lossy(&out.stderr).into_owned();
                    err.contains("does not exist").then_some(())
                }
            })
            .await;
        })
        .await;
    let ns = scoped_namespace(&client, prefix).await;
    (client, ns)
}

async fn scoped_namespace(client: &Client, prefix: &str) -> String {
    let ns = support::namespace(client, prefix).await;
    support::kubectl_ok(&[
        "label",
        "namespace",
        &ns,
        &format!("{SCOPE_LABEL}={}", pid()),
    ]);
    ns
}

fn deployment_json(name: &str, image: &str, gate: Option<&str>) -> serde_json::Value {
    let mut labels = json!({"app": name});
    if let Some(g) = gate {
        labels[GATE_LABEL] = json!(g);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "api", "image": image}]}
            }
        }
    })
}

/// `kubectl create -f <file>` of a Deployment (optionally as a server dry run).
fn create_deployment_kubectl(
    ns: &str,
    name: &str,
    image: &str,
    gate: Option<&str>,
    dry_run: bool,
) -> Output {
    let file = std::env::temp_dir().join(format!("rp-wh-{}-{ns}-{name}.json", pid()));
    std::fs::write(&file, deployment_json(name, image, gate).to_string()).expect("write");
    let path = file.to_str().expect("path").to_string();
    let mut args = vec!["-n", ns, "create", "-f", &path];
    if dry_run {
        args.push("--dry-run=server");
    }
    support::kubectl(&args)
}

fn set_image(ns: &str, image: &str, dry_run: bool) -> Output {
    let spec = format!("api={image}");
    let mut args = vec!["-n", ns, "set", "image", "deployment/payment-api", &spec];
    if dry_run {
        args.push("--dry-run=server");
    }
    support::kubectl(&args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits until a server dry run of `set image` gets the expected answer (the
/// webhook's caches follow the API by a watch event), then does it for real.
async fn set_image_when(ns: &str, image: &str, admitted: bool) -> Output {
    eventually(WAIT, "the webhook's answer to change", || async move {
        (set_image(ns, image, true).status.success() == admitted).then_some(())
    })
    .await;
    set_image(ns, image, false)
}

async fn current_image(client: &Client, ns: &str) -> String {
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("payment-api")
        .await
        .expect("deployment");
    let v = serde_json::to_value(&d).expect("json");
    v.pointer("/spec/template/spec/containers/0/image")
        .and_then(|i| i.as_str())
        .unwrap_or_default()
        .to_string()
}

fn evidence(error_rate: &str) -> Vec<EvidenceDocument> {
    let observed = jiff::Timestamp::now();
    serde_json::from_value(json!([
        {"connector": "argocd", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "prometheus", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "error_rate", "value": error_rate}]},
        {"connector": "ingest", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "active_sev1_incidents", "value": 0}, {"name": "change_approval_linked", "value": false}]}
    ]))
    .expect("evidence")
}

fn created_or_exists<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
    match result {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("{what}: {e}"),
    }
}

/// The seed's gate on `payment-api`, HOLD evidence, rollback image `…@sha256:9…`.
async fn gate(client: &Client, ns: &str, mode: Mode) {
    // A create retried by the client under load may find its own object: 409 is fine.
    let created = Api::<Policy>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &support::load_yaml("examples/policy.yaml"),
        )
        .await;
    created_or_exists(created, "policy");
    let mut gate: ReleaseGate = support::load_yaml("examples/releasegate.yaml");
    gate.metadata.namespace = Some(ns.into());
    gate.spec.mode = mode;
    gate.spec.connector_scopes = vec![];
    gate.spec.evidence = evidence("2.7%");
    gate.spec.rollback = Some(Rollback {
        release: "v2.17.9".into(),
        image: Some(image('9')),
    });
    let created = Api::<ReleaseGate>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &gate)
        .await;
    created_or_exists(created, "gate");
}

/// Makes the evidence pass (error rate, approval): the next passport is ALLOW.
async fn fix_evidence(client: &Client, ns: &str) {
    let fix = json!({"spec": {
        "evidence": evidence("0.4%"),
        "approvals": [{"actor": "alice@example.com", "reference": "CHG-1042", "approvedAt": jiff::Timestamp::now()}]
    }});
    Api::<ReleaseGate>::namespaced(client.clone(), ns)
        .patch(GATE, &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .expect("fix evidence");
}

/// Waits for a current passport with `decision` and returns it.
async fn passport_with(client: &Client, ns: &str, decision: Decision) -> Passport {
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    let passports: Api<Passport> = Api::namespaced(client.clone(), ns);
    eventually(WAIT, "the gate's passport", || {
        let (gates, passports) = (gates.clone(), passports.clone());
        async move {
            let g = gates.get(GATE).await.ok()?;
            let s = g.status?;
            if s.observed_generation != g.metadata.generation || s.decision != Some(decision) {
                return None;
            }
            passports.get(s.passport_name.as_deref()?).await.ok()
        }
    })
    .await
}

/// The payment-api Deployment running `image`, created without the label
/// (nothing to check) and then labelled (images unchanged: admitted).
async fn gated_deployment(ns: &str, image: &str) {
    let out = create_deployment_kubectl(ns, "payment-api", image, None, false);
    assert!(out.status.success(), "{}", stderr(&out));
    support::kubectl_ok(&[
        "-n",
        ns,
        "label",
        "deployment/payment-api",
        &format!("{GATE_LABEL}={GATE}"),
    ]);
}

#[tokio::test]
async fn cluster_enforce_denies_under_hold_admits_rollback_and_scaling_then_the_allowed_digest_only()
 {
    let (client, ns) = setup("wh-enforce").await;
    gate(&client, &ns, Mode::Enforce).await;
    let hold = passport_with(&client, &ns, Decision::Hold).await;
    let hold_name = hold.metadata.name.clone().expect("name");
    gated_deployment(&ns, &image('1')).await;

    // HOLD: promoting the release is denied, and kubectl says why.
    let out = set_image_when(&ns, ARTIFACT, false).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    eprintln!("kubectl's error under HOLD:\n{err}");
    for needle in [
        "denied the request",
        hold_name.as_str(),
        "decided HOLD",
        "Failing checks: error-rate (fail, observed 2.7%",
        "change-approval",
        "Next actions: Re-sync the GitOps application and wait for fresh runtime evidence.",
    ] {
        assert!(err.contains(needle), "{needle:?} in kubectl's error: {err}");
    }
    assert_eq!(current_image(&client, &ns).await, image('1'));

    // Scaling never needs a passport: through the scale subresource and by
    // editing spec.replicas.
    support::kubectl_ok(&["-n", &ns, "scale", "deployment/payment-api", "--replicas=4"]);
    support::kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "deployment/payment-api",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ]);

    // The declared rollback image goes through under HOLD, with a warning
    // and an Event on the gate.
    let out = set_image_when(&ns, &image('9'), true).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Warning: Release Passport: rollback"),
        "kubectl prints the warning: {}",
        stderr(&out)
    );
    assert_eq!(current_image(&client, &ns).await, image('9'));
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    eventually(WAIT, "RollbackAdmitted and AdmissionDenied Events", || {
        let events = events.clone();
        async move {
            let reasons: Vec<String> = events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|e| e.involved_object.name.as_deref() == Some(GATE))
                .filter_map(|e| e.reason)
                .collect();
            (reasons.iter().any(|r| r == "RollbackAdmitted")
                && reasons.iter().any(|r| r == "AdmissionDenied"))
            .then_some(())
        }
    })
    .await;

    // ALLOW for the release's digest: admitted.
    fix_evidence(&client, &ns).await;
    let allow = passport_with(&client, &ns, Decision::Allow).await;
    assert_eq!(
        allow.spec.artifact.digest,
        ARTIFACT.rsplit_once('@').expect("digest").1
    );
    let out = set_image_when(&ns, ARTIFACT, true).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(current_image(&client, &ns).await, ARTIFACT);

    // Another digest is not covered by that passport.
    let out = set_image(&ns, &image('b'), false);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("is not covered by Passport"), "{err}");
    assert_eq!(current_image(&client, &ns).await, ARTIFACT);
}

#[tokio::test]
async fn cluster_shadow_admits_with_a_warning_printed_by_kubectl() {
    let (client, ns) = setup("wh-shadow").await;
    gate(&client, &ns, Mode::Shadow).await;
    passport_with(&client, &ns, Decision::Hold).await;
    gated_deployment(&ns, &image('1')).await;
    let out = eventually(WAIT, "the shadow warning", || {
        let ns = ns.clone();
        async move {
            let out = set_image(&ns, ARTIFACT, true);
            stderr(&out)
                .contains("enforce mode would deny")
                .then_some(())
        }
    })
    .await;
    let _: () = out;
    let out = set_image(&ns, ARTIFACT, false);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Warning: Release Passport (shadow)")
            && err.contains("enforce mode would deny")
            && err.contains("decided HOLD"),
        "{err}"
    );
    assert!(err.contains("error-rate"), "{err}");
    assert_eq!(current_image(&client, &ns).await, ARTIFACT);
}

/// Replaces the gate's current passport (delete + create: the CEL rule
/// forbids changing it in place) with `spec`.
async fn replace_passport(client: &Client, ns: &str, original: &Passport, spec: PassportSpec) {
    let api: Api<Passport> = Api::namespaced(client.clone(), ns);
    let name = original.metadata.name.clone().expect("name");
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete passport");
    let mut forged = Passport::new(&name, spec);
    forged.metadata.labels = original.metadata.labels.clone();
    forged.metadata.owner_references = original.metadata.owner_references.clone();
    eventually(WAIT, "the forged passport stored", || {
        let (api, forged) = (api.clone(), forged.clone());
        async move { api.create(&PostParams::default(), &forged).await.ok() }
    })
    .await;
}

#[tokio::test]
async fn cluster_a_tampered_or_foreign_signed_passport_admits_nothing() {
    let (client, ns) = setup("wh-tamper").await;
    gate(&client, &ns, Mode::Enforce).await;
    fix_evidence(&client, &ns).await;
    let allow = passport_with(&client, &ns, Decision::Allow).await;
    gated_deployment(&ns, &image('1')).await;
    // The genuine ALLOW admits the release (server dry run: nothing changes).
    eventually(WAIT, "the genuine passport admitting the release", || {
        let ns = ns.clone();
        async move {
            set_image(&ns, ARTIFACT, true)
                .status
                .success()
                .then_some(())
        }
    })
    .await;

    // Signed content changed after signing: the payload covers another
    // digest now (and so does the readable copy beside it).
    let old_digest = allow.spec.artifact.digest.clone();
    let new_digest = image('b').rsplit_once('@').expect("digest").1.to_string();
    let mut tampered = allow.spec.clone();
    tampered.artifact.digest = new_digest.clone();
    tampered.artifact.image = image('b');
    {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let envelope = tampered.envelope.as_mut().expect("envelope");
        let payload =
            String::from_utf8(b64.decode(&envelope.payload).expect("base64")).expect("utf-8");
        let changed = payload.replace(&old_digest, &new_digest).replace(
            old_digest.trim_start_matches("sha256:"),
            new_digest.trim_start_matches("sha256:"),
        );
        assert_ne!(payload, changed);
        envelope.payload = b64.encode(changed);
    }
    replace_passport(&client, &ns, &allow, tampered).await;
    let out = set_image_when(&ns, &image('b'), false).await;
    let err = stderr(&out);
    assert!(err.contains("does not verify: BadSignature"), "{err}");
    let out = set_image(&ns, ARTIFACT, false);
    assert!(
        !out.status.success(),
        "the tampered passport admits nothing"
    );
    assert_eq!(current_image(&client, &ns).await, image('1'));

    // Signed, but with a key the operator does not trust.
    let stranger = PassportSigner::new(passport::generate_signing_key().expect("key"));
    let mut foreign = allow.spec.clone();
    passport::sign(&mut foreign, &stranger).expect("sign");
    let current = Api::<Passport>::namespaced(client.clone(), &ns)
        .get(allow.metadata.name.as_deref().expect("name"))
        .await
        .expect("passport");
    replace_passport(&client, &ns, &current, foreign).await;
    let out = eventually(WAIT, "the unknown key reported", || {
        let ns = ns.clone();
        async move {
            let out = set_image(&ns, ARTIFACT, true);
            stderr(&out).contains("UnknownKeyId").then_some(out)
        }
    })
    .await;
    assert!(!out.status.success());
    let out = set_image(&ns, ARTIFACT, false);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert_eq!(current_image(&client, &ns).await, image('1'));
}

#[tokio::test]
async fn cluster_with_the_webhook_down_unlabelled_deployments_are_still_created_and_updated() {
    let client = support::client().await;
    support::install_crds(&client).await;
    // A configuration whose webhook is not running (nothing listens on the port).
    let scope = format!("down-{}", pid());
    let name = format!("rp-webhook-down-{}", pid());
    apply_configuration(&client, &webhook_configuration(&name, free_port(), &scope)).await;
    let ns = support::namespace(&client, "wh-down").await;
    support::kubectl_ok(&["label", "namespace", &ns, &format!("{SCOPE_LABEL}={scope}")]);

    // The configuration is in force: a labelled Deployment cannot be created.
    let err = eventually(
        WAIT,
        "the apiserver failing to call the stopped webhook",
        || {
            let ns = ns.clone();
            async move {
                let out = create_deployment_kubectl(&ns, "gated", &image('1'), Some(GATE), true);
                let err = stderr(&out);
                (!out.status.success() && err.contains("failed calling webhook")).then_some(err)
            }
        },
    )
    .await;
    assert!(err.contains("gate.releasepassport.io"), "{err}");

    // An unlabelled Deployment never reaches it.
    let out = create_deployment_kubectl(&ns, "payment-api", &image('1'), None, false);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = set_image(&ns, &image('2'), false);
    assert!(out.status.success(), "{}", stderr(&out));
    support::kubectl_ok(&["-n", &ns, "scale", "deployment/payment-api", "--replicas=3"]);
    assert_eq!(current_image(&client, &ns).await, image('2'));

    let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete(&name, &DeleteParams::default())
        .await;
}
