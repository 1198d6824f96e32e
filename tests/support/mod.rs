//! Shared harness for the tests that run against the real local control plane
//! (etcd + kube-apiserver built by `e2e/cluster.sh`, without a node: no
//! controller rewrites the workload status these tests write). The harness
//! starts the control plane when it is not running; it never substitutes a
//! fake one. The one-node cluster has a suite of its own (`e2e/suite/`).
#![allow(dead_code)]

pub mod approval_gate;
pub mod browser;
pub mod controller;
pub mod identities;
pub mod replay;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Deserialize;

/// Where the local control plane is, as printed by `e2e/cluster.sh env --json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEnv {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub server: String,
    pub kube_version: String,
    /// The OpenID Connect issuer the apiserver trusts, and the certificate,
    /// key and CA its server is to use (`e2e/cluster.sh`'s oidc()).
    #[serde(default)]
    pub oidc_issuer: Option<String>,
    #[serde(default)]
    pub oidc_port: Option<u16>,
    #[serde(default)]
    pub oidc_cert: Option<PathBuf>,
    #[serde(default)]
    pub oidc_key: Option<PathBuf>,
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Starts the control plane if needed (once per test process) and says where it is.
pub fn cluster() -> &'static ClusterEnv {
    static ENV: OnceLock<ClusterEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        // Test builds link two rustls crypto providers (the browser tests'
        // WebDriver client brings its own): choose the operator's, ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let script = repo_root().join("e2e/cluster.sh");
        let status = Command::new("bash")
            .arg(&script)
            .args(["--control-plane-only", "up", "--quiet"])
            .status()
            .expect("running e2e/cluster.sh up");
        assert!(
            status.success(),
            "e2e/cluster.sh up failed: the local control plane is required"
        );
        let out = Command::new("bash")
            .arg(&script)
            .args(["--control-plane-only", "env", "--json"])
            .output()
            .expect("running e2e/cluster.sh env");
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).expect("cluster env JSON")
    })
}

/// A kube-rs client for the local control plane, as cluster admin.
pub async fn client() -> Client {
    let env = cluster();
    let kubeconfig = Kubeconfig::read_from(&env.kubeconfig).expect("reading kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// The admin client configuration of the local control plane (what
/// [`client`] is built from), e.g. for clients that impersonate.
pub async fn config() -> Config {
    let env = cluster();
    let kubeconfig = Kubeconfig::read_from(&env.kubeconfig).expect("reading kubeconfig");
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig")
}

/// Runs the real kubectl against the local control plane.
pub fn kubectl(args: &[&str]) -> Output {
    let env = cluster();
    Command::new(&env.kubectl)
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .expect("running kubectl")
}

/// Runs kubectl and returns stdout, failing the test with stderr on error.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Installs (server-side apply) the project's CRDs and waits until the
/// apiserver serves them; then the admission policies and persona roles a
/// real install ships (`config/admission/`, `config/rbac/personas.yaml`), and
/// waits until the apiserver enforces them.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply("releasepassport-tests").force();
    for crd in releasepassport::api::all_crds() {
        let name = crd.metadata.name.clone().expect("crd name");
        crds.patch(&name, &pp, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        wait_established(&crds, &name).await;
    }
    install_admission_policies().await;
}

/// The shipped admission policies and persona roles, in force.
async fn install_admission_policies() {
    let root = repo_root();
    kubectl_ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=releasepassport-tests",
        "-f",
        root.join("config/admission/policies.yaml")
            .to_str()
            .expect("path"),
        "-f",
        root.join("config/rbac/personas.yaml")
            .to_str()
            .expect("path"),
    ]);
    // The apiserver loads policies asynchronously: wait until a forged
    // approval is refused by name.
    let probe = "apiVersion: releasepassport.io/v1alpha1\nkind: ReleaseApproval\nmetadata: {name: policy-probe, namespace: default}\nspec: {gate: probe, release: v1, digest: \"sha256:0000000000000000000000000000000000000000000000000000000000000000\", approver: nobody-at-all}\n";
    let file = std::env::temp_dir().join(format!("rp-policy-probe-{}.yaml", std::process::id()));
    std::fs::write(&file, probe).expect("probe manifest");
    for _ in 0..300 {
        let out = kubectl(&[
            "create",
            "--dry-run=server",
            "-f",
            file.to_str().expect("path"),
        ]);
        if String::from_utf8_lossy(&out.stderr).contains("approver-is-requester") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the apiserver never enforced config/admission/policies.yaml");
}

async fn wait_established(crds: &Api<CustomResourceDefinition>, name: &str) {
    for _ in 0..200 {
        let crd = crds.get(name).await.expect("get crd");
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("CRD {name} never became Established");
}

/// Creates a fresh namespace for one test (names are unique per process and test).
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let suffix = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            & 0xffff_ffff
    );
    let name = format!("{prefix}-{suffix}");
    let ns: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}
    }))
    .expect("namespace");
    ns.create(&PostParams::default(), &obj)
        .await
        .expect("create namespace");
    name
}

/// The seed's Policy (`examples/policy.yaml`) reading its Argo CD and
/// Prometheus facts from evidence CI pushes into the gate (connectors
/// `ci-argocd` and `ci-prometheus`) instead of from ConnectorScopes: the
/// controller's flow without an Argo CD or a Prometheus server. Pushed
/// evidence never carries the name of a connector the operator pulls.
pub fn ci_policy() -> releasepassport::api::Policy {
    let mut policy: releasepassport::api::Policy = load_yaml("examples/policy.yaml");
    let pushed = |rule: &mut releasepassport::api::PolicyRule| {
        if matches!(rule.connector.as_str(), "argocd" | "prometheus") {
            rule.connector = format!("ci-{}", rule.connector);
        }
        // The seed's incident and change rules read the pagerduty and jira
        // connectors; here CI pushes those facts under `ingest`.
        if matches!(rule.connector.as_str(), "pagerduty" | "jira") {
            rule.connector = "ingest".into();
        }
    };
    policy.spec.rules.iter_mut().for_each(pushed);
    if let Some(post) = policy.spec.post_deploy.as_mut() {
        post.rules.iter_mut().for_each(pushed);
    }
    policy
}

/// Limits every webhook of a configuration to namespaces labelled
/// `label=value` (one test process's own namespaces), keeping its own selector.
pub fn scope_webhooks(
    config: &mut k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
    label: &str,
    value: &str,
) {
    for w in config.webhooks.iter_mut().flatten() {
        let selector = w.namespace_selector.get_or_insert_with(Default::default);
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(label.to_string(), value.to_string());
    }
}

/// Reads a YAML file of the repository (e.g. `examples/...`) into a typed object.
pub fn load_yaml<T: serde::de::DeserializeOwned>(relative: &str) -> T {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
