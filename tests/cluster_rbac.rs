//! The operator under its own least-privilege RBAC (config/rbac/operator.yaml),
//! authenticated with a real ServiceAccount token: it can do its job, and it
//! can impersonate only the configured reader ServiceAccounts.

mod support;

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use serde_json::json;
use support::controller::{self as ctl, OPERATOR_NAMESPACE, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// A kubeconfig that authenticates as the operator's ServiceAccount, with a
/// token from the TokenRequest API (through the real kubectl).
fn operator_kubeconfig() -> std::path::PathBuf {
    let env = support::cluster();
    support::kubectl_ok(&["apply", "-f", "config/rbac/operator.yaml"]);
    let token = support::kubectl_ok(&[
        "create",
        "token",
        "release-passport",
        "-n",
        OPERATOR_NAMESPACE,
        "--duration",
        "1h",
    ]);
    let admin = std::fs::read_to_string(&env.kubeconfig).expect("admin kubeconfig");
    let ca = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
        .expect("CA in kubeconfig")
        .to_string();
    let path = std::env::temp_dir().join(format!("rp-operator-{}.kubeconfig", std::process::id()));
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: release-passport\n  user:\n    token: {}\ncontexts:\n- name: local\n  context: {{cluster: local, user: release-passport}}\ncurrent-context: local\n",
        env.server,
        token.trim()
    );
    std::fs::write(&path, config).expect("write kubeconfig");
    path
}

#[tokio::test]
async fn cluster_operator_rbac_is_enough_to_decide_and_cannot_impersonate_other_service_accounts() {
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let ns = support::namespace(&client, "rbac").await;

    // The team's reader (with the template Role) and another ServiceAccount
    // with the same rights that the operator must not be able to use.
    support::kubectl_ok(&[
        "apply",
        "-n",
        &ns,
        "-f",
        "config/rbac/namespace-reader.yaml",
    ]);
    support::kubectl_ok(&["create", "serviceaccount", "intruder", "-n", &ns]);
    support::kubectl_ok(&[
        "create",
        "rolebinding",
        "intruder",
        "-n",
        &ns,
        "--role",
        "release-passport-reader",
        "--serviceaccount",
        &format!("{ns}:intruder"),
    ]);
    support::kubectl_ok(&[
        "create",
        "deployment",
        "payment-api",
        "-n",
        &ns,
        "--image",
        "registry.example.com/payment-api@sha256:1111111111111111111111111111111111111111111111111111111111111111",
    ]);

    let pp = PostParams::default();
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&pp, &support::ci_policy())
        .await
        .expect("policy");
    let scopes: Api<ConnectorScope> = Api::namespaced(client.clone(), &ns);
    scopes
        .create(
            &pp,
            &support::load_yaml("examples/connectorscope-kubernetes.yaml"),
        )
        .await
        .expect("reader scope");
    let mut intruder: ConnectorScope =
        support::load_yaml("examples/connectorscope-kubernetes.yaml");
    intruder.metadata.name = Some("as-intruder".into());
    intruder.spec.service_account_name = Some("intruder".into());
    scopes.create(&pp, &intruder).await.expect("intruder scope");

    let mut gate: ReleaseGate = support::load_yaml("examples/releasegate.yaml");
    gate.spec.connector_scopes = vec![
        LocalObjectReference {
            name: "payment-api-runtime".into(),
        },
        LocalObjectReference {
            name: "as-intruder".into(),
        },
    ];
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    gates.create(&pp, &gate).await.expect("gate");

    let kubeconfig = operator_kubeconfig();
    let controller = ctl::start_as(
        &kubeconfig,
        "unused",
        "rbac-tests",
        &["--no-leader-election"],
    );

    // It decides, signs and writes under its own RBAC.
    let status = eventually(
        WAIT,
        "a passport written by the least-privilege operator",
        || {
            let gates = gates.clone();
            async move {
                gates
                    .get("payment-api-production")
                    .await
                    .ok()?
                    .status
                    .filter(|s| s.passport_name.is_some())
            }
        },
    )
    .await;
    assert!(status.decision.is_some(), "log:\n{}", controller.log());

    let health = |name: &'static str| {
        let scopes = scopes.clone();
        async move {
            eventually(WAIT, "ConnectorScope health", || {
                let scopes = scopes.clone();
                async move {
                    scopes
                        .get(name)
                        .await
                        .ok()?
                        .status
                        .filter(|s| s.health.is_some())
                }
            })
            .await
        }
    };
    let reader = health("payment-api-runtime").await;
    assert_eq!(
        reader.health,
        Some(ConnectorHealth::Healthy),
        "{:?}",
        reader.message
    );
    let refused = health("as-intruder").await;
    assert_eq!(refused.health, Some(ConnectorHealth::Forbidden));
    let message = refused.message.unwrap_or_default();
    assert!(
        message.contains("cannot impersonate"),
        "the apiserver refused the impersonation: {message}"
    );

    // Touch the gate so the test leaves no reconcile in flight.
    gates
        .patch(
            "payment-api-production",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"done": "yes"}}})),
        )
        .await
        .expect("annotate");
}
