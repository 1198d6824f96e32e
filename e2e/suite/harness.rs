//! The one-node cluster with the operator installed by its Helm chart from
//! the locally built image, and the helpers the scenarios share. Everything
//! goes through real parts: `e2e/cluster.sh` (the cluster), `e2e/image.sh`
//! (images), `helm` and `kubectl` from the project cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

/// Namespace and release name of the chart install.
pub const RELEASE_NS: &str = "release-passport-system";
pub const RELEASE: &str = "release-passport";

/// What `e2e/cluster.sh env --json` says about the one-node cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEnv {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub containerd_socket: PathBuf,
    pub cgroup_root: String,
}

/// The cluster, the images and the install, shared by every scenario.
pub struct Suite {
    pub cluster: ClusterEnv,
    pub helm: PathBuf,
    /// `rp.local/release-passport@sha256:...`
    pub operator_image: String,
    /// The operator image's OCI archive (what containerd imported).
    pub operator_archive: PathBuf,
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("running {program} {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{program} {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Scenarios change the shared install (they delete its Pods, scale it):
/// they run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Brings the cluster up (if needed), loads the operator image built by
/// `e2e/image.sh operator` and installs the chart with it, once per process.
pub fn suite() -> &'static Suite {
    static SUITE: OnceLock<Suite> = OnceLock::new();
    SUITE.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        run("bash", &["e2e/cluster.sh", "up", "--quiet"]);
        let cluster: ClusterEnv =
            serde_json::from_str(&run("bash", &["e2e/cluster.sh", "env", "--json"]))
                .expect("cluster env JSON");
        let operator_archive = PathBuf::from(run("bash", &["e2e/image.sh", "path", "operator"]));
        let operator_image = run("bash", &["e2e/image.sh", "ref", "operator"]);
        run(
            "bash",
            &[
                "e2e/image.sh",
                "load",
                cluster.containerd_socket.to_str().expect("socket path"),
                operator_archive.to_str().expect("archive path"),
            ],
        );
        let helm = PathBuf::from(run("bash", &["e2e/tools/tools.sh", "path", "helm"]));
        let suite = Suite {
            cluster,
            helm,
            operator_image,
            operator_archive,
        };
        suite.install();
        suite.wait_for_admission_of_gates();
        suite
    })
}

impl Suite {
    /// The chart installs the CRDs and the admission policies that match
    /// them together; until the apiserver's admission plugins have learned
    /// the new kinds, a create answers `ServiceUnavailable: Resource kind ...
    /// not found`. Waits (a server-side dry run) until a ReleaseGate is
    /// admitted, so the first scenario does not race the install.
    fn wait_for_admission_of_gates(&self) {
        use std::io::Write as _;
        let yaml = gate_yaml("v0", &image("workload-v1"), None);
        wait_for(
            "the apiserver to admit ReleaseGates after the chart install",
            Duration::from_secs(180),
            || {
                let mut child = Command::new(&self.cluster.kubectl)
                    .args(["create", "--dry-run=server", "-n", "default", "-f", "-"])
                    .env("KUBECONFIG", &self.cluster.kubeconfig)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("running kubectl: {e}"))?;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin
                        .write_all(yaml.as_bytes())
                        .map_err(|e| format!("writing to kubectl: {e}"))?;
                }
                let out = child
                    .wait_with_output()
                    .map_err(|e| format!("kubectl: {e}"))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).into_owned())
                }
            },
        );
    }

    /// `helm upgrade --install` of charts/release-passport: 2 replicas, the
    /// webhook on with the chart's own certificate, the console on.
    fn install(&self) {
        let (repository, digest) = self
            .operator_image
            .split_once('@')
            .expect("operator image is pinned by digest");
        let out = Command::new(&self.helm)
            .args([
                "upgrade",
                "--install",
                RELEASE,
                "charts/release-passport",
                "--namespace",
                RELEASE_NS,
                "--create-namespace",
                "--set",
                &format!("image.repository={repository}"),
                "--set",
                &format!("image.digest={digest}"),
                "--set",
                "webhook.enabled=true",
                "--set",
                "webhook.certificate.mode=helm",
                // Quick re-evaluation, so the post-deploy watch sees restarts soon.
                "--set",
                "controller.resyncSeconds=20",
                "--set",
                "leaderElection.leaseDurationSeconds=10",
                "--wait",
                "--timeout",
                "5m",
            ])
            .env("KUBECONFIG", &self.cluster.kubeconfig)
            .current_dir(repo_root())
            .output()
            .expect("running helm");
        if !out.status.success() {
            let pods = kubectl(&["-n", RELEASE_NS, "describe", "pods"]);
            panic!(
                "helm install failed:\n{}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&pods.stdout)
            );
        }
    }
}

/// Runs the cluster's kubectl.
pub fn kubectl(args: &[&str]) -> Output {
    let env = &suite().cluster;
    Command::new(&env.kubectl)
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .current_dir(repo_root())
        .output()
        .expect("running kubectl")
}

/// kubectl that must succeed; its standard output.
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

/// `kubectl apply -f -` of a YAML document in a namespace.
pub fn apply(namespace: &str, yaml: &str) {
    use std::io::Write as _;
    let env = &suite().cluster;
    let mut child = Command::new(&env.kubectl)
        .args(["apply", "-n", namespace, "-f", "-"])
        .env("KUBECONFIG", &env.kubeconfig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running kubectl apply");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("writing to kubectl");
    let out = child.wait_with_output().expect("kubectl apply");
    assert!(
        out.status.success(),
        "kubectl apply failed: {}\n{yaml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kubectl get -o json`.
pub fn get_json(args: &[&str]) -> Value {
    let mut all = vec!["get", "-o", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&kubectl_ok(&all)).expect("kubectl JSON")
}

/// Polls `check` until it returns `Some`, failing with `what` (and the last
/// observation) after `limit`. A generous bound on a loaded 2-core machine,
/// not a timing assertion.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(v) => return v,
            Err(e) => e,
        };
        assert!(
            start.elapsed() < limit,
            "gave up waiting for {what} after {limit:?}; last seen: {last}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `NAME@sha256:...` of one of the images `e2e/image.sh` builds.
pub fn image(name: &str) -> String {
    run("bash", &["e2e/image.sh", "ref", name])
}

/// The `sha256:...` part of an image reference.
pub fn digest(image: &str) -> &str {
    image.split_once('@').map(|(_, d)| d).unwrap_or(image)
}

/// A fresh namespace with the reader ServiceAccount the kubernetes connector
/// reads as; deleted (without waiting) when dropped.
pub struct TestNamespace(pub String);

impl TestNamespace {
    pub fn new(name: &str) -> Self {
        let _ = kubectl(&["delete", "namespace", name, "--wait=true", "--timeout=120s"]);
        kubectl_ok(&["create", "namespace", name]);
        kubectl_ok(&[
            "apply",
            "-n",
            name,
            "-f",
            "config/rbac/namespace-reader.yaml",
        ]);
        TestNamespace(name.to_string())
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"]);
        }
    }
}

/// The operator's Pods, by the chart's selector labels.
pub fn operator_pods() -> Vec<Value> {
    get_json(&[
        "pods",
        "-n",
        RELEASE_NS,
        "-l",
        &format!("app.kubernetes.io/name=release-passport,app.kubernetes.io/instance={RELEASE}"),
    ])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn is_ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub fn name_of(v: &Value) -> String {
    v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Both operator replicas Running and Ready; their names.
pub fn wait_operator_ready() -> Vec<String> {
    wait_for("two Ready operator Pods", Duration::from_secs(240), || {
        let pods = operator_pods();
        let ready: Vec<String> = pods.iter().filter(|p| is_ready(p)).map(name_of).collect();
        if ready.len() == 2 && pods.len() == 2 {
            Ok(ready)
        } else {
            Err(format!("{} Pods, Ready: {ready:?}", pods.len()))
        }
    })
}

/// The holder of the operator's leader Lease.
pub fn lease_holder() -> String {
    get_json(&["lease", "-n", RELEASE_NS, "release-passport-controller"])["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The gate's status once it describes its current generation.
pub fn gate_status(namespace: &str, gate: &str) -> Result<Value, String> {
    let g = get_json(&["releasegate", "-n", namespace, gate]);
    let generation = g["metadata"]["generation"].as_i64();
    let status = g["status"].clone();
    if status["observedGeneration"].as_i64() == generation && status["decision"].is_string() {
        Ok(status)
    } else {
        Err(format!(
            "generation {generation:?}, status {}",
            serde_json::to_string(&status).unwrap_or_default()
        ))
    }
}

/// Waits for the gate's decision on its current generation to be `decision`.
pub fn wait_decision(namespace: &str, gate: &str, decision: &str) -> Value {
    wait_for(
        &format!("{namespace}/{gate} to decide {decision}"),
        Duration::from_secs(180),
        || {
            let status = gate_status(namespace, gate)?;
            if status["decision"] == decision {
                Ok(status)
            } else {
                Err(format!(
                    "decision {}, failing {}, next actions {}",
                    status["decision"], status["failingChecks"], status["nextActions"]
                ))
            }
        },
    )
}

/// The Passports the operator wrote for a gate (by their owner reference).
pub fn passports_of(namespace: &str, gate: &str) -> Vec<Value> {
    get_json(&["passports", "-n", namespace])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["kind"] == "ReleaseGate" && o["name"] == gate)
        })
        .collect()
}

/// The image digests the Pods of a Deployment really run, from Pod status
/// (`imageID`, what the kubelet reports), for Pods that are Ready.
pub fn running_digests(namespace: &str, selector: &str) -> Vec<String> {
    get_json(&["pods", "-n", namespace, "-l", selector])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| is_ready(p))
        .flat_map(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| digest(c["imageID"].as_str().unwrap_or_default()).to_string())
        .collect()
}

/// Waits until every Pod of the selector is Ready and runs `want` (by digest,
/// from Pod status), `replicas` of them, and no other Pod is left.
pub fn wait_pods_run(namespace: &str, selector: &str, want: &str, replicas: usize) {
    wait_for(
        &format!("{replicas} Ready Pods of {namespace}/{selector} running {want}"),
        Duration::from_secs(240),
        || {
            let all = get_json(&["pods", "-n", namespace, "-l", selector])["items"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0);
            let digests = running_digests(namespace, selector);
            if all == replicas
                && digests.len() == replicas
                && digests.iter().all(|d| d == digest(want))
            {
                Ok(())
            } else {
                Err(format!("{all} Pods, Ready ones run {digests:?}"))
            }
        },
    );
}

/// Pushes CI evidence (connector `ingest`) into a gate, as `gate` does.
pub fn push_evidence(namespace: &str, gate: &str, facts: Value) {
    let now = jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({"spec": {"evidence": [{
        "connector": "ingest",
        "scope": {"source": "ci"},
        "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
        "facts": facts,
    }]}});
    kubectl_ok(&[
        "patch",
        "releasegate",
        "-n",
        namespace,
        gate,
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
}

/// The Policy the scenarios gate with: CI's change approval decides HOLD or
/// ALLOW; after promotion, any container restart recommends a rollback.
pub fn policy_yaml() -> &'static str {
    r#"apiVersion: releasepassport.io/v1alpha1
kind: Policy
metadata:
  name: web
spec:
  rules:
    - id: change-approved
      label: Change approved in CI
      connector: ingest
      fact: change_approved
      condition: {operator: equals, value: true}
      onFail: HOLD
      nextAction: Approve the change for {service} {release} in CI.
  postDeploy:
    watchWindowSeconds: 900
    rules:
      - id: no-restarts
        label: No container restarts after promotion
        connector: kubernetes
        fact: restarts
        condition: {operator: lessThan, value: 1}
        onFail: ROLLBACK_RECOMMENDED
        nextAction: Roll back {service} to {rollback.release}.
---
apiVersion: releasepassport.io/v1alpha1
kind: ConnectorScope
metadata:
  name: web-runtime
spec:
  connector: kubernetes
  serviceAccountName: release-passport-reader
  maxAgeSeconds: 5
  kubernetes:
    workloads:
      - kind: Deployment
        name: web
"#
}

/// `spec.evidence` with CI's change approval, to apply with a gate so that
/// its first evaluation already has it.
pub fn approval_evidence(approved: bool) -> String {
    format!(
        "  evidence:\n    - connector: ingest\n      scope: {{source: ci}}\n      freshness: {{observedAt: \"{}\", maxAgeSeconds: 3600}}\n      facts: [{{name: change_approved, value: {approved}}}]\n",
        jiff::Timestamp::now()
    )
}

/// An enforce-mode gate for the `web` Deployment.
pub fn gate_yaml(release: &str, image: &str, rollback: Option<(&str, &str)>) -> String {
    let rollback = rollback
        .map(|(release, image)| {
            format!("  rollback:\n    release: {release}\n    image: {image}\n")
        })
        .unwrap_or_default();
    format!(
        r#"apiVersion: releasepassport.io/v1alpha1
kind: ReleaseGate
metadata:
  name: web-production
spec:
  service: web
  release: {release}
  environment: production
  mode: enforce
  policyRef: {{name: web}}
  connectorScopes: [{{name: web-runtime}}]
  artifact:
    image: {image}
{rollback}  target: {{kind: Deployment, name: web}}
"#
    )
}

/// The gated `web` Deployment: two replicas of one of our workload images.
pub fn deployment_yaml(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web, releasepassport.io/gate: web-production}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  strategy: {{rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          image: {image}
          imagePullPolicy: Never
          ports: [{{containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /readyz, port: 8080}}, periodSeconds: 1}}
"#
    )
}

/// Gate `web-production` allowing `release`/`image`, and the Deployment
/// running it (admitted by the webhook under that ALLOW).
pub fn deploy_allowed(ns: &str, release: &str, image: &str) {
    apply(ns, policy_yaml());
    apply(ns, &gate_yaml(release, image, None));
    push_evidence(
        ns,
        "web-production",
        serde_json::json!([{"name": "change_approved", "value": true}]),
    );
    wait_decision(ns, "web-production", "ALLOW");
    apply(ns, &deployment_yaml(image));
    wait_pods_run(ns, "app=web", image, 2);
}

/// CI approves the change; once the gate allows it, `kubectl set image`
/// promotes `image`, and the webhook must admit it.
pub fn approve_and_promote(ns: &str, image: &str) {
    push_evidence(
        ns,
        "web-production",
        serde_json::json!([{"name": "change_approved", "value": true}]),
    );
    wait_decision(ns, "web-production", "ALLOW");
    let out = set_image(ns, image);
    assert!(
        out.status.success(),
        "kubectl set image {image} after ALLOW: {}",
        stderr(&out)
    );
}

/// `kubectl set image` of the web Deployment.
pub fn set_image(ns: &str, image: &str) -> Output {
    kubectl(&[
        "set",
        "image",
        "-n",
        ns,
        "deployment/web",
        &format!("web={image}"),
    ])
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
