//! The operator's attestations, checked by independent verifiers: envelopes
//! the real controller wrote verify with cosign and securesystemslib (and
//! forgeries do not), and with `--attach-attestations` the controller
//! attaches them, with credentials from a Secret, to the image in a real OCI
//! registry (the CNCF distribution registry on loopback, with htpasswd
//! authentication), where `cosign verify-attestation` checks them.

mod support;
mod verifiers;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};
use releasepassport::api::*;
use releasepassport::oci::{Credentials, RegistryClient, RegistryOptions};
use serde_json::{Value, json};
use support::controller as ctl;

const USER: &str = "ci-attest";
const WAIT: Duration = Duration::from_secs(120);

/// A distribution registry on loopback; killed on drop.
struct Registry {
    child: Child,
    host: String,
    password: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let host = format!("127.0.0.1:{port}");
        let mut seed = [0u8; 18];
        getrandom::fill(&mut seed).expect("random");
        let password = BASE64.encode(seed).replace(['+', '/'], "x");
        let line = Command::new(verifiers::tool("htpasswd"))
            .args([USER, &password])
            .output()
            .expect("htpasswd");
        assert!(line.status.success(), "{}", verifiers::text(&line));
        std::fs::write(dir.path().join("htpasswd"), &line.stdout).expect("write htpasswd");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: release-passport-tests\nauth:\n  htpasswd:\n    realm: release-passport-tests\n    path: {htpasswd}\n",
            root = dir.path().join("data").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(verifiers::tool("registry"))
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the registry");
        let registry = Registry {
            child,
            host,
            password,
            _dir: dir,
        };
        // Up when /v2/ asks for credentials.
        for _ in 0..200 {
            if std::net::TcpStream::connect(&registry.host).is_ok() {
                return registry;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the registry did not start on {}", registry.host);
    }

    /// A home directory whose Docker config holds the registry's credentials.
    fn docker_home(&self) -> (tempfile::TempDir, std::path::PathBuf) {
        let home = tempfile::tempdir().expect("tempdir");
        let docker = home.path().join(".docker");
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(docker.join("config.json"), self.docker_config().to_string()).unwrap();
        (home, docker)
    }

    fn docker_config(&self) -> Value {
        json!({"auths": {&self.host: {"auth": BASE64.encode(format!("{USER}:{}", self.password))}}})
    }

    fn client(&self) -> RegistryClient {
        let credentials =
            Credentials::from_docker_config(&serde_json::to_vec(&self.docker_config()).unwrap())
                .expect("credentials");
        RegistryClient::new(
            credentials,
            RegistryOptions {
                plain_http: vec![self.host.clone()],
                timeout: Duration::from_secs(10),
            },
        )
        .expect("client")
    }

    /// Pushes a small image (one layer) and returns `host/repo@sha256:…`.
    async fn push_image(&self, repository: &str, content: &str) -> String {
        let client = self.client();
        let mut session = client.session(&self.host, &self.host, repository);
        let layer = session.push_blob(content.as_bytes()).await.expect("layer");
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer]}
        }))
        .unwrap();
        let config_digest = session.push_blob(&config).await.expect("config");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": content.len(), "digest": layer}]
        }))
        .unwrap();
        let digest = session
            .put_manifest(
                "latest",
                "application/vnd.oci.image.manifest.v1+json",
                &manifest,
            )
            .await
            .expect("manifest");
        format!("{}/{repository}@{digest}", self.host)
    }

    /// Puts an attestation manifest holding exactly `envelope` under the
    /// cosign tag of `image`, bypassing every check of `attach` (forgeries).
    async fn put_raw_attestation(&self, image: &str, envelope: &Value) {
        let (name, digest) = image.rsplit_once('@').expect("digest");
        let repository = name.split_once('/').expect("repository").1;
        let client = self.client();
        let mut session = client.session(&self.host, &self.host, repository);
        let layer = serde_json::to_vec(envelope).unwrap();
        let layer_digest = session.push_blob(&layer).await.expect("layer");
        let config = serde_json::to_vec(&json!({"architecture": "", "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {}}))
        .unwrap();
        let config_digest = session.push_blob(&config).await.expect("config");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "size": layer.len(), "digest": layer_digest,
                        "annotations": {"dev.cosignproject.cosign/signature": "", "predicateType": verifiers::VSA}}]
        }))
        .unwrap();
        let tag = format!("sha256-{}.att", digest.trim_start_matches("sha256:"));
        session
            .put_manifest(
                &tag,
                "application/vnd.oci.image.manifest.v1+json",
                &manifest,
            )
            .await
            .expect("attestation manifest");
    }

    /// The layers of the attestation manifest of `image`.
    async fn attestation_layers(&self, image: &str) -> Vec<Value> {
        let (name, digest) = image.rsplit_once('@').expect("digest");
        let repository = name.split_once('/').expect("repository").1;
        let client = self.client();
        let mut session = client.session(&self.host, &self.host, repository);
        let tag = format!("sha256-{}.att", digest.trim_start_matches("sha256:"));
        match session.manifest(&tag).await.expect("manifest") {
            Some(m) => serde_json::from_slice::<Value>(&m.bytes).unwrap()["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            None => vec![],
        }
    }
}

/// `cosign verify-attestation` of an image in the registry, with its credentials.
fn cosign_verify_image(registry: &Registry, public_key: &Path, image: &str) -> Output {
    let (home, docker) = registry.docker_home();
    Command::new(verifiers::tool("cosign"))
        .args(["verify-attestation", "--key"])
        .arg(public_key)
        .args([
            "--insecure-ignore-tlog",
            "--type",
            verifiers::VSA,
            "--allow-http-registry",
            image,
        ])
        .env("HOME", home.path())
        .env("DOCKER_CONFIG", &docker)
        .output()
        .expect("run cosign")
}

/// `kyverno apply` of the ClusterPolicy recipe (its registry and key
/// replaced) to a Pod running `image`, with registry access.
fn kyverno_apply(registry: &Registry, dir: &Path, public_key: &str, image: &str) -> Output {
    let recipe = std::fs::read_to_string(
        verifiers::root().join("examples/attestation/kyverno-clusterpolicy.yaml"),
    )
    .unwrap();
    let mut lines: Vec<String> = Vec::new();
    let mut in_key = false;
    for line in recipe.lines() {
        let trimmed = line.trim_start();
        if trimmed == "-----BEGIN PUBLIC KEY-----" {
            in_key = true;
            let indent = &line[..line.len() - trimmed.len()];
            lines.extend(public_key.trim().lines().map(|l| format!("{indent}{l}")));
        }
        if !in_key {
            lines.push(line.replace("registry.example.com/*", &format!("{}/*", registry.host)));
        }
        if trimmed == "-----END PUBLIC KEY-----" {
            in_key = false;
        }
    }
    let policy = dir.join("kyverno-policy.yaml");
    std::fs::write(&policy, lines.join("\n") + "\n").unwrap();
    let pod = dir.join("pod.yaml");
    std::fs::write(
        &pod,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: payment-api\n  namespace: payments\nspec:\n  containers:\n    - name: api\n      image: {image}\n"
        ),
    )
    .unwrap();
    let (home, docker) = registry.docker_home();
    Command::new(verifiers::tool("kyverno"))
        .arg("apply")
        .arg(&policy)
        .arg("--resource")
        .arg(&pod)
        .arg("--registry")
        .env("HOME", home.path())
        .env("DOCKER_CONFIG", &docker)
        .output()
        .expect("run kyverno")
}

/// The controller (one per test process), attaching to the test registry.
fn controller(registry: &Registry) -> &'static std::sync::Mutex<ctl::ControllerProcess> {
    static CONTROLLER: OnceLock<std::sync::Mutex<ctl::ControllerProcess>> = OnceLock::new();
    CONTROLLER.get_or_init(|| {
        std::sync::Mutex::new(ctl::start(
            &format!("rp-test-attest-{}", std::process::id()),
            "attestation-tests",
            &[
                "--resync-seconds",
                "30",
                "--no-webhook",
                "--attach-attestations",
                "--registry-credentials-secret",
                "registry-push",
                "--registry-plain-http",
                &registry.host,
            ],
        ))
    })
}

async fn credentials_secret(client: &Client, registry: &Registry) {
    let api: Api<Secret> = Api::namespaced(client.clone(), ctl::OPERATOR_NAMESPACE);
    let _ = api.delete("registry-push", &Default::default()).await;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "registry-push"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": BASE64.encode(registry.docker_config().to_string())}
    }))
    .unwrap();
    ctl::eventually(WAIT, "the credentials Secret created", || {
        let (api, secret) = (api.clone(), secret.clone());
        async move { api.create(&PostParams::default(), &secret).await.ok() }
    })
    .await;
}

/// A Policy reading only pushed CI facts: ALLOW below 2% errors, HOLD above.
async fn policy(client: &Client, ns: &str) {
    let policy: Policy = serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "Policy",
        "metadata": {"name": "payment-api-production"},
        "spec": {"rules": [
            {"id": "error-rate", "label": "Error rate below 2%", "connector": "ingest", "fact": "error_rate",
             "condition": {"operator": "lessThan", "value": "2%"}, "onFail": "HOLD", "required": true,
             "nextAction": "Bring the error rate of {service} below 2%."},
            {"id": "tests", "label": "CI tests passed", "connector": "ingest", "fact": "tests_passed",
             "condition": {"operator": "equals", "value": true}, "onFail": "BLOCK", "required": true}
        ]}
    }))
    .unwrap();
    Api::<Policy>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
}

/// `releasepassport gate` for the image with pushed facts; returns the
/// passport JSON it wrote.
async fn gate(ns: &str, dir: &Path, image: &str, error_rate: &str) -> Value {
    let env = support::cluster();
    let evidence = dir.join(format!("evidence-{error_rate}.json"));
    std::fs::write(
        &evidence,
        json!({"connector": "ingest",
               "freshness": {"observedAt": jiff::Timestamp::now(), "maxAgeSeconds": 3600},
               "facts": [{"name": "error_rate", "value": error_rate}, {"name": "tests_passed", "value": true}]})
        .to_string(),
    )
    .unwrap();
    let out_file = dir.join("passport.json");
    let args: Vec<String> = [
        "gate",
        "--kubeconfig",
        env.kubeconfig.to_str().unwrap(),
        "--namespace",
        ns,
        "--service",
        "payment-api",
        "--release",
        "v2.18.4",
        "--environment",
        "production",
        "--mode",
        "shadow",
        "--image",
        image,
        "--timeout",
        "90s",
        "--evidence",
        evidence.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_releasepassport"))
            .args(&args)
            .output()
            .expect("gate")
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", verifiers::text(&out));
    serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap()
}

async fn attached_condition(client: &Client, ns: &str, name: &str) -> Option<Value> {
    let p: Passport = Api::<Passport>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .ok()?;
    let c = p
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Attached")?;
    Some(serde_json::to_value(c).unwrap())
}

/// The gate's current passport, once the operator has attached it: its
/// name and its `Attached` condition.
async fn wait_attached(client: &Client, ns: &str) -> (String, Value) {
    let name = passport_name(client, ns).await;
    let condition = ctl::eventually(WAIT, "the passport attached", || {
        let (client, ns, name) = (client.clone(), ns.to_string(), name.clone());
        async move {
            attached_condition(&client, &ns, &name)
                .await
                .filter(|c| c["status"] == "True")
        }
    })
    .await;
    (name, condition)
}

/// The gate's current passport, as its status names it.
async fn passport_name(client: &Client, ns: &str) -> String {
    let gate: ReleaseGate = Api::<ReleaseGate>::namespaced(client.clone(), ns)
        .get("payment-api-production")
        .await
        .expect("gate");
    gate.status
        .and_then(|s| s.passport_name)
        .expect("passport name")
}

#[tokio::test]
async fn cluster_operator_attestations_verify_independently_and_are_attached_to_the_image() {
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let registry = Registry::start();
    credentials_secret(&client, &registry).await;
    let _controller = controller(&registry);
    let ns = support::namespace(&client, "attest").await;
    policy(&client, &ns).await;
    let image = registry
        .push_image("payments/payment-api", "payment-api v2.18.4")
        .await;
    let digest = image.rsplit_once('@').unwrap().1.to_string();
    let dir = tempfile::tempdir().unwrap();
    let public_key = dir.path().join("releasepassport.pub");
    std::fs::write(&public_key, ctl::public_key(&client).await).unwrap();
    let wrong_key = verifiers::root().join("tests/fixtures/keys/other.pub");

    // 1. A HOLD, written by the operator: independent verifiers accept its
    //    envelope and refuse forgeries of it.
    let hold = gate(&ns, dir.path(), &image, "2.7%").await;
    assert_eq!(hold["decision"], "HOLD");
    verifiers::assert_independent_verifiers(
        dir.path(),
        &hold["envelope"],
        &public_key,
        &wrong_key,
        &digest,
        "HOLD",
    );
    let (hold_name, condition) = wait_attached(&client, &ns).await;
    assert!(
        condition["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{}/payments/payment-api:sha256-", registry.host)),
        "{condition}"
    );

    // 2. An ALLOW of the same gate replaces the HOLD under the image's tag.
    let allow = gate(&ns, dir.path(), &image, "0.4%").await;
    assert_eq!(allow["decision"], "ALLOW");
    verifiers::assert_independent_verifiers(
        dir.path(),
        &allow["envelope"],
        &public_key,
        &wrong_key,
        &digest,
        "ALLOW",
    );
    let (allow_name, condition) = wait_attached(&client, &ns).await;
    assert_ne!(allow_name, hold_name);
    assert!(
        condition["message"]
            .as_str()
            .unwrap()
            .contains("replacing 1 earlier"),
        "{condition}"
    );
    let layers = registry.attestation_layers(&image).await;
    assert_eq!(layers.len(), 1, "{layers:?}");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    assert_eq!(layers[0]["annotations"]["predicateType"], verifiers::VSA);
    assert_eq!(
        layers[0]["annotations"]["releasepassport.io/gate"],
        format!("{ns}/payment-api-production")
    );

    // 3. cosign verify-attestation reads it from the registry: the ALLOW.
    let out = cosign_verify_image(&registry, &public_key, &image);
    assert!(
        out.status.success(),
        "cosign verify-attestation: {}",
        verifiers::text(&out)
    );
    let line: Value = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap())
        .expect("cosign JSON");
    let statement: Value =
        serde_json::from_slice(&BASE64.decode(line["payload"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(statement["predicate"]["verificationResult"], "PASSED");
    assert_eq!(
        statement["predicate"]["https://releasepassport.io/passport/v1"]["decision"],
        "ALLOW"
    );
    // ... and refuses a wrong key,
    let out = cosign_verify_image(&registry, &wrong_key, &image);
    assert!(
        !out.status.success(),
        "cosign accepted a wrong key: {}",
        verifiers::text(&out)
    );
    // a tampered payload (another image carrying only the tampered envelope),
    let other = registry
        .push_image("payments/payment-api", "payment-api v2.18.5")
        .await;
    let tampered = verifiers::tampered(
        &allow["envelope"],
        "\"decision\":\"ALLOW\"",
        "\"decision\":\"BLOCK\"",
    );
    let forged = registry
        .push_image("payments/payment-api", "payment-api forged")
        .await;
    let forged_digest = forged.rsplit_once('@').unwrap().1;
    let retargeted = verifiers::tampered(
        &tampered,
        digest.trim_start_matches("sha256:"),
        forged_digest.trim_start_matches("sha256:"),
    );
    registry.put_raw_attestation(&forged, &retargeted).await;
    let out = cosign_verify_image(&registry, &public_key, &forged);
    assert!(
        !out.status.success(),
        "cosign accepted a tampered payload: {}",
        verifiers::text(&out)
    );
    // and a genuine Statement about another digest attached to this image.
    registry
        .put_raw_attestation(&other, &allow["envelope"])
        .await;
    let out = cosign_verify_image(&registry, &public_key, &other);
    assert!(
        !out.status.success(),
        "cosign accepted a Statement for another digest: {}",
        verifiers::text(&out)
    );
    assert!(
        verifiers::text(&out).contains("no matching subject digest"),
        "{}",
        verifiers::text(&out)
    );

    // 4. Kyverno: the ClusterPolicy recipe, applied by the Kyverno CLI with
    //    its own image verification against the registry. The ALLOW image
    //    passes; a Pod of an image whose passport is a HOLD, one carrying a
    //    tampered or a retargeted attestation, and the policy with another
    //    key all fail.
    let hold_image = registry
        .push_image("payments/payment-api", "payment-api v2.19.0")
        .await;
    let hold2 = gate(&ns, dir.path(), &hold_image, "3.1%").await;
    assert_eq!(hold2["decision"], "HOLD");
    wait_attached(&client, &ns).await;
    let operator_key = std::fs::read_to_string(&public_key).unwrap();
    let other_key = std::fs::read_to_string(&wrong_key).unwrap();
    for (what, pod_image, key, passes) in [
        (
            "the ALLOW image",
            image.as_str(),
            operator_key.as_str(),
            true,
        ),
        (
            "the HOLD image",
            hold_image.as_str(),
            operator_key.as_str(),
            false,
        ),
        (
            "a tampered attestation",
            forged.as_str(),
            operator_key.as_str(),
            false,
        ),
        (
            "a Statement about another digest",
            other.as_str(),
            operator_key.as_str(),
            false,
        ),
        ("another key", image.as_str(), other_key.as_str(), false),
    ] {
        let out = kyverno_apply(&registry, dir.path(), key, pod_image);
        assert_eq!(
            out.status.success(),
            passes,
            "kyverno apply, {what}: {}",
            verifiers::text(&out)
        );
        let text = verifiers::text(&out);
        let refused = !text.contains("fail: 0, warn: 0, error: 0");
        assert_eq!(refused, !passes, "{what}: {text}");
    }

    // 5. `releasepassport attach` takes the image from the signed document:
    //    a readable copy naming another image does not redirect it.
    let mut foreign = allow.clone();
    foreign["artifact"]["image"] = Value::from(other.clone());
    let file = dir.path().join("foreign.json");
    std::fs::write(&file, foreign.to_string()).unwrap();
    let config = dir.path().join("docker-config.json");
    std::fs::write(&config, registry.docker_config().to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .arg("attach")
        .arg(&file)
        .arg("--public-key")
        .arg(&public_key)
        .arg("--registry-config")
        .arg(&config)
        .args(["--plain-http", &registry.host, "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", verifiers::text(&out));
    let attached: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(attached["image"], image.as_str());
    assert_eq!(attached["unchanged"], true, "{attached}");
    // Without the credentials the registry refuses, and the message says so.
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .arg("attach")
        .arg(&file)
        .arg("--public-key")
        .arg(&public_key)
        .args(["--plain-http", &registry.host])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", verifiers::text(&out));
    assert!(
        verifiers::text(&out).contains("authentication"),
        "{}",
        verifiers::text(&out)
    );
    assert!(!verifiers::text(&out).contains(&registry.password));
}
