//! Runs the real `releasepassport controller` binary against the local
//! control plane, the way it runs in a cluster (its own process, its own
//! leader lease), and stops it when the test is done.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, PostParams};

/// Namespace of the operator's own objects in the tests.
pub const OPERATOR_NAMESPACE: &str = "release-passport-system";

/// A controller process; killed on drop. Its standard input is a pipe: when
/// the test process ends for any reason, the pipe closes and the controller
/// exits (`--exit-on-stdin-close`).
pub struct ControllerProcess {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl ControllerProcess {
    /// Kills the process at once, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The controller's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Ensures the operator namespace exists.
pub async fn operator_namespace(client: &Client) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": OPERATOR_NAMESPACE}}))
            .expect("namespace");
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating {OPERATOR_NAMESPACE}: {e}"),
    }
}

/// Starts a controller with its own lease name and identity, as cluster admin.
pub fn start(lease: &str, identity: &str, extra: &[&str]) -> ControllerProcess {
    let env = super::cluster();
    start_as(&env.kubeconfig, lease, identity, extra)
}

/// Starts a controller with the given kubeconfig (e.g. a ServiceAccount token).
pub fn start_as(
    kubeconfig: &std::path::Path,
    lease: &str,
    identity: &str,
    extra: &[&str],
) -> ControllerProcess {
    start_with_env(kubeconfig, lease, identity, extra, &[])
}

/// Starts a controller with extra environment variables.
pub fn start_with_env(
    kubeconfig: &std::path::Path,
    lease: &str,
    identity: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> ControllerProcess {
    let log = std::env::temp_dir().join(format!(
        "rp-controller-{identity}-{}.log",
        std::process::id()
    ));
    let file = std::fs::File::create(&log).expect("controller log file");
    let child = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args([
            "controller",
            "--kubeconfig",
            kubeconfig.to_str().expect("kubeconfig path"),
            "--namespace",
            OPERATOR_NAMESPACE,
            "--generate-key",
            "--lease-name",
            lease,
            "--identity",
            identity,
            "--admin-addr",
            "127.0.0.1:0",
            "--exit-on-stdin-close",
        ])
        .args(extra)
        .env("RUST_LOG", "info,kube=warn")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("starting releasepassport controller");
    ControllerProcess { child, log }
}

/// The published public key (PEM), once the controller has published it.
pub async fn public_key(client: &Client) -> String {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    for _ in 0..300 {
        if let Ok(Some(cm)) = api.get_opt("releasepassport-public-key").await
            && let Some(pem) = cm.data.and_then(|d| d.get("public-key.pem").cloned())
        {
            return pem;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the controller never published its public key");
}

/// Polls `check` until it returns `Some`, for at most `limit` (a bound on a
/// wait, not an assertion about speed).
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > limit {
            panic!("gave up waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
