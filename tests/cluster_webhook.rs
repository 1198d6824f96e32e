//! The admission webhook end to end: the real controller binary serves it
//! over TLS (self-signed bootstrap, caBundle patched into the configuration),
//! the real kube-apiserver calls it, and the real kubectl shows what a user
//! sees.

mod support;

use std::process::Output;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use releasepassport::passport::{self, PassportSigner};
use serde_json::json;
use support::controller::eventually;
use support::webhook::{self as wh, SCOPE_LABEL, WAIT, stderr};
const GATE: &str = "payment-api-production";
/// The release's artifact (examples/releasegate.yaml).
const ARTIFACT: &str = "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";

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

/// One controller (serving the webhook) and one configuration per test binary.
async fn setup(prefix: &str) -> (Client, String) {
    let client = wh::serve("webhook-tests", 30).await;
    let ns = wh::scoped_namespace(&client, prefix).await;
    (client, ns)
}

fn create_deployment_kubectl(
    ns: &str,
    name: &str,
    image: &str,
    gate: Option<&str>,
    dry_run: bool,
) -> Output {
    wh::create_deployment(None, ns, name, image, gate, dry_run)
}

fn set_image(ns: &str, image: &str, dry_run: bool) -> Output {
    wh::set_image(None, ns, "payment-api", image, dry_run)
}

async fn set_image_when(ns: &str, image: &str, admitted: bool) -> Output {
    wh::set_image_when(None, ns, "payment-api", image, admitted).await
}

async fn current_image(client: &Client, ns: &str) -> String {
    wh::current_image(client, ns, "payment-api").await
}

fn evidence(error_rate: &str) -> Vec<EvidenceDocument> {
    let observed = jiff::Timestamp::now();
    serde_json::from_value(json!([
        {"connector": "ci-argocd", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "ci-prometheus", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
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
        .create(&PostParams::default(), &support::ci_policy())
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

/// Makes the evidence pass (error rate) and has an approver approve the
/// release: the next passport is ALLOW.
async fn fix_evidence(client: &Client, ns: &str) {
    let fix = json!({"spec": {"evidence": evidence("0.4%")}});
    Api::<ReleaseGate>::namespaced(client.clone(), ns)
        .patch(GATE, &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .expect("fix evidence");
    let digest = ARTIFACT.rsplit_once('@').expect("digest").1;
    support::identities::approve_as_alice(ns, GATE, "v2.18.4", digest);
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
async fn cluster_enforce_denies_under_hold_admits_scaling_then_the_allowed_digest_only() {
    let (client, ns) = setup("wh-enforce").await;
    gate(&client, &ns, Mode::Enforce).await;
    let hold = passport_with(&client, &ns, Decision::Hold).await;
    let hold_name = hold.metadata.name.clone().expect("name");
    gated_deployment(&ns, &image('1')).await;

    // HOLD: promoting the release is denied, and kubectl says why. The
    // apiserver's own admission policy answers first, from the gate's status.
    let out = set_image_when(&ns, ARTIFACT, false).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    eprintln!("kubectl's error under HOLD:\n{err}");
    for needle in [
        "releasepassport-workload-images",
        "denied request",
        hold_name.as_str(),
        "decided HOLD",
        "Failing checks: error-rate",
        "change-approval",
        "Next actions: Re-sync the GitOps application and wait for fresh runtime evidence.",
        "[rule images-covered]",
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

    // The declared rollback image was never proven by this gate: it is a
    // promotion like any other, denied under HOLD.
    let out = set_image(&ns, &image('9'), false);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert_eq!(current_image(&client, &ns).await, image('1'));

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
    assert!(
        err.contains("not covered: ") && err.contains(&image('b')),
        "{err}"
    );
    assert_eq!(current_image(&client, &ns).await, ARTIFACT);

    // A tag is never covered in enforce mode.
    let out = set_image(&ns, "registry.example.com/payment-api:v2.18.4", false);
    assert!(!out.status.success(), "{}", stderr(&out));

    // A workload labelled for a gate that does not exist is denied by the webhook.
    let out = create_deployment_kubectl(&ns, "orphan", &image('1'), Some("no-such-gate"), false);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("does not exist"),
        "{err}"
    );
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
    let mut forged = Passport::new(&name, spec);
    forged.metadata.labels = original.metadata.labels.clone();
    forged.metadata.owner_references = original.metadata.owner_references.clone();
    // The controller may issue its passport again under the same name
    // between the delete and the create (409): delete again and retry.
    let deadline = std::time::Instant::now() + WAIT;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        let deleted = match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => "deleted".to_string(),
            Err(kube::Error::Api(s)) if s.code == 404 => "absent".to_string(),
            Err(e) => format!("delete failed: {e}"),
        };
        match api.create(&PostParams::default(), &forged).await {
            Ok(_) => return,
            Err(e) => last = format!("{deleted}, then create failed: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the forged passport {ns}/{name} was never stored; last error: {last}");
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
    let out = set_image_when(&ns, ARTIFACT, false).await;
    let err = stderr(&out);
    assert!(err.contains("does not verify: BadSignature"), "{err}");
    assert!(
        !out.status.success(),
        "the tampered passport admits nothing"
    );
    // The webhook's denial is an Event on the gate.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    eventually(WAIT, "the AdmissionDenied Event", || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .any(|e| {
                    e.reason.as_deref() == Some("AdmissionDenied")
                        && e.involved_object.name.as_deref() == Some(GATE)
                })
                .then_some(())
        }
    })
    .await;
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
    wh::apply_configuration(&client, &wh::configuration(&name, free_port(), &scope)).await;
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
