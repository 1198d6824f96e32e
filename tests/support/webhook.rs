//! The admission webhook of a test binary: one real controller process
//! serving it over TLS (self-signed bootstrap, caBundle patched into the
//! configuration), and one ValidatingWebhookConfiguration that only sends it
//! the namespaces this process labelled; plus the workload helpers tests use
//! through the real kubectl.

use std::process::Output;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use releasepassport::api::GATE_LABEL;
use releasepassport::webhook::config::{Endpoint, RenderOptions, render};
use serde_json::json;

use super::controller::{self as ctl, eventually};
use super::identities::Identity;

/// A bound on waits: the shared control plane may be busy with other tests.
pub const WAIT: Duration = Duration::from_secs(240);
/// Namespace label that puts a test namespace in scope of this process's configuration.
pub const SCOPE_LABEL: &str = "releasepassport.io/webhook-test";

fn pid() -> String {
    std::process::id().to_string()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A configuration for this process: URL to 127.0.0.1 `port`, only
/// namespaces labelled `SCOPE_LABEL=<scope>`.
pub fn configuration(name: &str, port: u16, scope: &str) -> ValidatingWebhookConfiguration {
    let mut config = render(&RenderOptions {
        name: name.into(),
        operator_namespace: ctl::OPERATOR_NAMESPACE.into(),
        exclude_namespaces: vec![],
        endpoint: Endpoint::Url(format!("https://127.0.0.1:{port}/validate")),
        failure_policy: "Fail".into(),
        enforced_failure_policy: "Fail".into(),
        evidence_failure_policy: "Ignore".into(),
        timeout_seconds: 5,
        ca_bundle_pem: None,
    });
    super::scope_webhooks(&mut config, SCOPE_LABEL, scope);
    config
}

/// Replaces the configuration of the same name.
pub async fn apply_configuration(client: &Client, config: &ValidatingWebhookConfiguration) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let name = config.metadata.name.clone().expect("name");
    let _ = api.delete(&name, &DeleteParams::default()).await;
    api.create(&PostParams::default(), config)
        .await
        .expect("webhook configuration");
}

/// Starts (once per test binary) a controller serving the webhook with
/// `resync_seconds`, and its configuration; returns an admin client once
/// the apiserver calls the webhook.
pub async fn serve(tag: &str, resync_seconds: u32) -> Client {
    static CONTROLLER: OnceLock<Mutex<ctl::ControllerProcess>> = OnceLock::new();
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let client = super::client().await;
    READY
        .get_or_init(|| async {
            super::install_crds(&client).await;
            ctl::operator_namespace(&client).await;
            let port = free_port();
            let config_name = format!("rp-{tag}-{}", pid());
            apply_configuration(&client, &configuration(&config_name, port, &pid())).await;
            let addr = format!("127.0.0.1:{port}");
            let resync = resync_seconds.to_string();
            CONTROLLER.get_or_init(|| {
                Mutex::new(ctl::start(
                    &format!("rp-{tag}-controller-{}", pid()),
                    tag,
                    &[
                        "--resync-seconds",
                        &resync,
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
            let ns = scoped_namespace(&client, &format!("{tag}-ready")).await;
            eventually(WAIT, "the apiserver calling the webhook", || {
                let ns = ns.clone();
                async move {
                    let out = create_deployment(
                        None,
                        &ns,
                        "probe",
                        "registry.example.com/probe@sha256:1111111111111111111111111111111111111111111111111111111111111111",
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
    client
}

/// A new namespace in scope of this process's webhook configuration.
pub async fn scoped_namespace(client: &Client, prefix: &str) -> String {
    let ns = super::namespace(client, prefix).await;
    super::kubectl_ok(&[
        "label",
        "namespace",
        &ns,
        &format!("{SCOPE_LABEL}={}", pid()),
    ]);
    ns
}

/// A Deployment running `image`, labelled for `gate` when given.
pub fn deployment_json(name: &str, image: &str, gate: Option<&str>) -> serde_json::Value {
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

fn kubectl_as(identity: Option<&Identity>, args: &[&str]) -> Output {
    match identity {
        Some(id) => id.kubectl(args),
        None => super::kubectl(args),
    }
}

/// `kubectl create -f <file>` of a Deployment, as `identity` (else the
/// admin), optionally as a server dry run.
pub fn create_deployment(
    identity: Option<&Identity>,
    ns: &str,
    name: &str,
    image: &str,
    gate: Option<&str>,
    dry_run: bool,
) -> Output {
    let file = std::env::temp_dir().join(format!("rp-deploy-{}-{ns}-{name}.json", pid()));
    std::fs::write(&file, deployment_json(name, image, gate).to_string()).expect("write");
    let path = file.to_str().expect("path").to_string();
    let mut args = vec!["-n", ns, "create", "-f", &path];
    if dry_run {
        args.push("--dry-run=server");
    }
    kubectl_as(identity, &args)
}

/// `kubectl set image deployment/<name> api=<image>`, as `identity` (else the admin).
pub fn set_image(
    identity: Option<&Identity>,
    ns: &str,
    name: &str,
    image: &str,
    dry_run: bool,
) -> Output {
    let spec = format!("api={image}");
    let target = format!("deployment/{name}");
    let mut args = vec!["-n", ns, "set", "image", &target, &spec];
    if dry_run {
        args.push("--dry-run=server");
    }
    kubectl_as(identity, &args)
}

/// Waits until a server dry run of `set image` gets the expected answer (the
/// caches follow the API by a watch event), then does it for real.
pub async fn set_image_when(
    identity: Option<&Identity>,
    ns: &str,
    name: &str,
    image: &str,
    admitted: bool,
) -> Output {
    eventually(WAIT, "the admission answer to change", || async move {
        (set_image(identity, ns, name, image, true).status.success() == admitted).then_some(())
    })
    .await;
    set_image(identity, ns, name, image, false)
}

/// The image the Deployment's first container runs.
pub async fn current_image(client: &Client, ns: &str, name: &str) -> String {
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("deployment");
    let v = serde_json::to_value(&d).expect("json");
    v.pointer("/spec/template/spec/containers/0/image")
        .and_then(|i| i.as_str())
        .unwrap_or_default()
        .to_string()
}

/// Standard error of a command, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
