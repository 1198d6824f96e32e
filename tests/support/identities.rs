//! Real, distinct identities of the local control plane: the users of its
//! static token file (alice and bob approve, carol administers the platform,
//! dave releases and approves) and ServiceAccounts with TokenRequest tokens.
//! Each acts through its own kubeconfig, never as the admin with `--as`.

use std::path::PathBuf;
use std::process::{Command, Output};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Someone the apiserver authenticates.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The user name the apiserver sees (`alice`, `system:serviceaccount:ns:ci`).
    pub username: String,
    pub kubeconfig: PathBuf,
}

fn kubeconfig_for(label: &str, token: &str) -> PathBuf {
    let env = super::cluster();
    let admin = std::fs::read_to_string(&env.kubeconfig).expect("admin kubeconfig");
    let ca = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .expect("CA in kubeconfig")
        .to_string();
    let path = std::env::temp_dir().join(format!(
        "rp-identity-{}-{}.kubeconfig",
        label.replace(':', "_"),
        std::process::id()
    ));
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: me\n  user:\n    token: {token}\ncontexts:\n- name: local\n  context: {{cluster: local, user: me}}\ncurrent-context: local\n",
        env.server
    );
    std::fs::write(&path, config).expect("write kubeconfig");
    path
}

/// The token of a user of the static token file.
pub fn static_token(name: &str) -> String {
    let env = super::cluster();
    let dir = env
        .kubeconfig
        .parent()
        .expect("cluster directory")
        .to_path_buf();
    let tokens = std::fs::read_to_string(dir.join("pki/tokens.csv")).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: this control plane predates the static token users; restart it (bash e2e/cluster.sh down && bash e2e/cluster.sh up)",
            dir.join("pki/tokens.csv").display()
        )
    });
    tokens
        .lines()
        .find_map(|l| {
            let mut fields = l.split(',');
            let token = fields.next()?;
            (fields.next()? == name).then(|| token.to_string())
        })
        .unwrap_or_else(|| panic!("no user {name} in the static token file"))
}

/// A user of the static token file (`alice`, `bob`, `carol`, `dave`).
pub fn user(name: &str) -> Identity {
    let token = static_token(name);
    let identity = Identity {
        username: name.to_string(),
        kubeconfig: kubeconfig_for(name, &token),
    };
    let out = identity.kubectl(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout) == name,
        "the apiserver does not authenticate {name} ({}): restart the local control plane so it reads the static token file (bash e2e/cluster.sh down && bash e2e/cluster.sh up)",
        String::from_utf8_lossy(&out.stderr)
    );
    identity
}

/// A ServiceAccount (created if needed) with a token from the TokenRequest API.
pub fn service_account(namespace: &str, name: &str) -> Identity {
    let _ = super::kubectl(&["create", "serviceaccount", name, "-n", namespace]);
    let token = super::kubectl_ok(&["create", "token", name, "-n", namespace, "--duration", "1h"]);
    Identity {
        username: format!("system:serviceaccount:{namespace}:{name}"),
        kubeconfig: kubeconfig_for(&format!("{namespace}-{name}"), token.trim()),
    }
}

impl Identity {
    /// The real kubectl, as this identity.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let env = super::cluster();
        Command::new(&env.kubectl)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("running kubectl")
    }

    /// kubectl with a manifest on standard input.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write as _;
        let env = super::cluster();
        let mut child = Command::new(&env.kubectl)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write manifest");
        child.wait_with_output().expect("kubectl output")
    }

    /// A kube-rs client authenticated as this identity.
    pub async fn client(&self) -> Client {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("config");
        Client::try_from(config).expect("client")
    }
}

/// Binds one of the shipped persona ClusterRoles to `identity` in `namespace`.
pub fn grant(namespace: &str, role: &str, identity: &Identity) {
    let binding = format!("{role}-{}", identity.username.replace(':', "-"));
    let subject = match identity.username.strip_prefix("system:serviceaccount:") {
        Some(sa) => format!("--serviceaccount={sa}"),
        None => format!("--user={}", identity.username),
    };
    let _ = super::kubectl(&[
        "create",
        "rolebinding",
        &binding,
        "-n",
        namespace,
        "--clusterrole",
        role,
        &subject,
    ]);
}

/// A ReleaseApproval manifest of `gate` for `release` and `digest`.
pub fn approval_manifest(
    namespace: &str,
    name: &str,
    gate: &str,
    release: &str,
    digest: &str,
) -> String {
    format!(
        "apiVersion: releasepassport.io/v1alpha1\nkind: ReleaseApproval\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {{gate: {gate}, release: \"{release}\", digest: \"{digest}\", reference: CHG-1042}}\n"
    )
}

/// alice (an approver, not the releaser) approves `release` of `gate` at `digest`.
pub fn approve_as_alice(namespace: &str, gate: &str, release: &str, digest: &str) {
    let alice = user("alice");
    grant(namespace, "releasepassport-approver", &alice);
    let name = format!("{gate}-{}-alice", &digest[digest.len() - 8..]);
    let manifest = approval_manifest(namespace, &name, gate, release, digest);
    // A fresh RoleBinding reaches the authorizer within moments: retry a refusal briefly.
    for attempt in 0.. {
        let out = alice.kubectl_stdin(&["create", "-f", "-"], &manifest);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() || err.contains("AlreadyExists") {
            return;
        }
        assert!(attempt < 100, "alice's approval: {err}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
