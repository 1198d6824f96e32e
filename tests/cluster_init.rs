//! `releasepassport init` on the real local control plane: a namespace that
//! runs a Deployment, an Argo CD Application (in Argo CD's own namespace,
//! with Argo CD's Application CRD as the Argo CD tests install it) and a
//! ServiceMonitor (Prometheus Operator's CRD from its Go module,
//! `e2e/crds/upstream.sh`). The objects init prints are accepted by the
//! apiserver as they are (server-side dry run); `init --apply` writes them,
//! and the real controller binary writes the namespace's first passport
//! from them, without any edit.

mod support;

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use releasepassport::api::{Passport, ReleaseGate, ResultState};
use serde_json::{Value, json};
use support::controller as ctl;

const LIMIT: Duration = Duration::from_secs(90);
const IMAGE: &str = "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";

/// Argo CD's Application CRD (as tests/cluster_argocd.rs installs it) and
/// Prometheus Operator's ServiceMonitor CRD (from its Go module).
fn upstream_crds() {
    support::cluster();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/crds/upstream.sh"))
        .args(["path", "prometheus-operator"])
        .output()
        .expect("running e2e/crds/upstream.sh");
    assert!(
        out.status.success(),
        "fetching the ServiceMonitor CRD: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let servicemonitors = String::from_utf8_lossy(&out.stdout).trim().to_string();
    for file in [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/e2e/crds/argocd-application-crd.yaml"
        ),
        servicemonitors.as_str(),
    ] {
        support::kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", file]);
    }
    for crd in [
        "applications.argoproj.io",
        "servicemonitors.monitoring.coreos.com",
    ] {
        support::kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{crd}"),
            "--timeout=120s",
        ]);
    }
}

fn init(args: &[&str]) -> Output {
    let env = support::cluster();
    Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .arg("init")
        .args(["--kubeconfig", env.kubeconfig.to_str().expect("path")])
        .args(args)
        .output()
        .expect("running releasepassport init")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn apply(manifest: &str, name: &str) {
    let file = std::env::temp_dir().join(format!("rp-init-{name}-{}.yaml", std::process::id()));
    std::fs::write(&file, manifest).expect("manifest");
    support::kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
}

/// The namespace as it runs before init: a Deployment whose rollout is
/// complete (status written as the Deployment controller writes it), the
/// ServiceMonitor that scrapes it, and Argo CD's Application deploying it.
async fn workloads(client: &Client, ns: &str, argocd: &str) {
    apply(
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: payment-api
  namespace: {ns}
  labels: {{app.kubernetes.io/name: payment-api, app.kubernetes.io/version: v2.18.4}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: payment-api}}}}
  template:
    metadata: {{labels: {{app: payment-api}}}}
    spec:
      containers: [{{name: app, image: "{IMAGE}"}}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: payment-api, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: payment-api}}}}
  endpoints: [{{port: http}}]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {{name: payment-api-production, namespace: {argocd}}}
spec:
  project: default
  source: {{repoURL: "https://git.example.com/payments.git", path: payment-api, targetRevision: main}}
  destination: {{server: "https://kubernetes.default.svc", namespace: {ns}}}
status:
  sync: {{status: Synced, revision: 9c1e4b7f2a8d3e6c5b4a3f2e1d0c9b8a7f6e5d4c}}
  health: {{status: Healthy}}
  reconciledAt: "{now}"
"#,
            now = jiff::Timestamp::now()
        ),
        ns,
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), ns);
    deployments
        .patch_status(
            "payment-api",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                "availableReplicas": 1, "updatedReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]
            }})),
        )
        .await
        .expect("the Deployment's status");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_what_leads_to_a_first_passport() {
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    upstream_crds();
    let ns = support::namespace(&client, "init-team").await;
    let argocd = support::namespace(&client, "init-argocd").await;
    let empty = support::namespace(&client, "init-empty").await;

    // Clear errors: a namespace that does not exist, one that runs nothing.
    let out = init(&["-n", "init-no-such-namespace", "--service", "payment-api"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("namespace init-no-such-namespace not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = init(&["-n", &empty, "--service", "payment-api"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to gate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    workloads(&client, &ns, &argocd).await;
    // Nothing listens there: the optional Prometheus rule stays unanswered.
    let prometheus = format!("http://127.0.0.1:{}", free_port());
    let common = [
        "-n",
        &ns,
        "--service",
        "payment-api",
        "--argocd-namespace",
        &argocd,
        "--prometheus-url",
        &prometheus,
    ];

    // For review: YAML the apiserver accepts as it is.
    let yaml = stdout(&init(&common));
    assert!(yaml.contains("kind: ReleaseGate"), "{yaml}");
    assert!(yaml.contains("# Then, in the pipeline"), "{yaml}");
    let file = std::env::temp_dir().join(format!("rp-init-review-{}.yaml", std::process::id()));
    std::fs::write(&file, &yaml).expect("review file");
    support::kubectl_ok(&[
        "apply",
        "--dry-run=server",
        "-f",
        file.to_str().expect("path"),
    ]);

    // Applied: every object is there, owned by init's field manager.
    let mut args = common.to_vec();
    args.extend(["--apply", "--output", "json"]);
    let report: Value = serde_json::from_str(&stdout(&init(&args))).expect("JSON");
    assert_eq!(report["applied"], true);
    assert_eq!(report["found"]["deployment"]["image"], IMAGE);
    assert_eq!(report["found"]["deployment"]["release"], "v2.18.4");
    assert_eq!(
        report["found"]["argocd"][0]["name"],
        "payment-api-production"
    );
    assert_eq!(report["found"]["serviceMonitors"][0]["name"], "payment-api");
    let next = report["next"].as_str().expect("next command");
    assert!(
        next.starts_with(&format!(
            "releasepassport gate -n {ns} --service payment-api --environment production"
        )),
        "{next}"
    );
    let kinds: Vec<&str> = report["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    for kind in [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConnectorScope",
        "Policy",
        "ReleaseGate",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let gate = support::kubectl_ok(&[
        "get",
        "releasegate",
        "payment-api-production",
        "-n",
        &ns,
        "--show-managed-fields",
        "-o",
        "json",
    ]);
    assert!(
        gate.contains("\"manager\": \"releasepassport-init\""),
        "{gate}"
    );
    let role = support::kubectl_ok(&["get", "role", "-n", &argocd, "-o", "name"]);
    assert!(
        role.contains("release-passport-read-payment-api-production-argocd"),
        "{role}"
    );
    // Run twice, init refuses to overwrite the gate.
    let out = init(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));

    // The controller writes the first passport from them, no edit needed.
    let _controller = ctl::start(
        &format!("rp-test-init-{}", std::process::id()),
        "init-tests",
        &["--no-webhook"],
    );
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    let name = ctl::eventually(LIMIT, "the first passport", || {
        let gates = gates.clone();
        async move {
            gates
                .get("payment-api-production")
                .await
                .ok()?
                .status?
                .passport_name
        }
    })
    .await;
    let passport = Api::<Passport>::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .expect("the passport");
    let state = |id: &str| {
        passport
            .spec
            .policy_results
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.state)
    };
    // Read as the reader ServiceAccount through the scopes init wrote.
    assert_eq!(state("deployment-ready"), Some(ResultState::Pass));
    assert_eq!(state("argocd-synced"), Some(ResultState::Pass));
    assert_eq!(state("argocd-healthy"), Some(ResultState::Pass));
    assert!(state("targets-up").is_some());
    assert_eq!(passport.spec.release, "v2.18.4");
}
