//! With the operator stopped, the apiserver itself still refuses forged
//! approvals and waivers: the checks are its own admission policies and
//! RBAC, not our webhook. No controller runs in this test binary (cargo runs
//! test binaries one after another, and every controller a test starts exits
//! with its test process), and every refusal below names the
//! ValidatingAdmissionPolicy that made it.

mod support;

use std::process::Output;

use support::identities::{self as ids, Identity};

const DIGEST: &str = "sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn approval(ns: &str, name: &str, gate: &str, approver: Option<&str>) -> String {
    let approver = approver
        .map(|a| format!(", approver: {a}"))
        .unwrap_or_default();
    format!(
        "apiVersion: releasepassport.io/v1alpha1\nkind: ReleaseApproval\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{gate: {gate}, release: v2.18.4, digest: \"{DIGEST}\"{approver}}}\n"
    )
}

fn waiver(ns: &str, name: &str, author: Option<&str>, expires_in_hours: i64) -> String {
    let author = author.map(|a| format!(", author: {a}")).unwrap_or_default();
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(expires_in_hours);
    format!(
        "apiVersion: releasepassport.io/v1alpha1\nkind: ReleaseWaiver\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{gate: gate-a, ruleId: error-rate, digest: \"{DIGEST}\", reason: \"known flake\", expiresAt: \"{expires}\"{author}}}\n"
    )
}

/// Creates `manifest` as `who`, retrying while a fresh RoleBinding reaches
/// the authorizer; returns the final answer.
fn create_as(who: &Identity, manifest: &str, refused_by_rbac_is_final: bool) -> Output {
    for attempt in 0.. {
        let out = who.kubectl_stdin(&["create", "-f", "-"], manifest);
        let err = stderr(&out);
        let rbac = err.contains("cannot create resource");
        if out.status.success() || !rbac || refused_by_rbac_is_final || attempt >= 100 {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    unreachable!()
}

fn refused_by_policy(out: &Output, what: &str, policy: &str, rule: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "{what} was admitted");
    assert!(
        err.contains(&format!("ValidatingAdmissionPolicy '{policy}'")) && err.contains(rule),
        "{what}: refused by {policy} naming {rule}: {err}"
    );
}

/// No admission webhook of the cluster sees approvals or waivers: whatever
/// refuses them below is the apiserver's own.
fn no_webhook_sees_approvals_or_waivers() {
    let text = support::kubectl_ok(&["get", "validatingwebhookconfigurations", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&text).expect("webhook configurations");
    let resources: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
        .flat_map(|w| w["rules"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["resources"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    assert!(
        !resources.iter().any(|r| r == "*"
            || r.starts_with("releaseapprovals")
            || r.starts_with("releasewaivers")),
        "a webhook sees approvals or waivers: {resources:?}"
    );
}

#[tokio::test]
async fn cluster_with_the_operator_stopped_the_apiserver_refuses_forged_approvals_and_waivers() {
    let client = support::client().await;
    support::install_crds(&client).await;
    no_webhook_sees_approvals_or_waivers();
    let ns = support::namespace(&client, "trust-down").await;
    let pipeline = ids::service_account(&ns, "ci");
    ids::grant(&ns, "releasepassport-pipeline", &pipeline);
    let (alice, bob) = (ids::user("alice"), ids::user("bob"));
    ids::grant(&ns, "releasepassport-approver", &bob);
    // alice may approve gate-a only: a Role with the verb on that gate by name.
    let role = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: approve-gate-a, namespace: {ns}}}\nrules:\n- apiGroups: [releasepassport.io]\n  resources: [releasegates]\n  resourceNames: [gate-a]\n  verbs: [approve]\n- apiGroups: [releasepassport.io]\n  resources: [releaseapprovals]\n  verbs: [create, get, list]\n"
    );
    let file = std::env::temp_dir().join(format!("rp-role-{}.yaml", std::process::id()));
    std::fs::write(&file, role).expect("role manifest");
    support::kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
    support::kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-approves-gate-a",
        "-n",
        &ns,
        "--role",
        "approve-gate-a",
        "--user",
        "alice",
    ]);

    // The pipeline holds no right to approve or waive at all.
    let out = create_as(&pipeline, &approval(&ns, "ci", "gate-a", None), true);
    assert!(
        stderr(&out).contains("cannot create resource \"releaseapprovals\""),
        "{}",
        stderr(&out)
    );
    let out = create_as(&pipeline, &waiver(&ns, "ci", None, 1), true);
    assert!(
        stderr(&out).contains("cannot create resource \"releasewaivers\""),
        "{}",
        stderr(&out)
    );

    // Forged authors.
    let out = create_as(
        &alice,
        &approval(&ns, "alice-as-bob", "gate-a", Some("bob")),
        false,
    );
    refused_by_policy(
        &out,
        "an approval in bob's name by alice",
        "releasepassport-approvals",
        "[rule approver-is-requester]",
    );
    let out = create_as(&bob, &waiver(&ns, "bob-as-alice", Some("alice"), 1), false);
    refused_by_policy(
        &out,
        "a waiver in alice's name by bob",
        "releasepassport-waivers",
        "[rule author-is-requester]",
    );
    // The verb is checked per gate.
    let out = create_as(
        &alice,
        &approval(&ns, "alice-gate-b", "gate-b", None),
        false,
    );
    refused_by_policy(
        &out,
        "alice approving a gate she holds no approve verb on",
        "releasepassport-approvals",
        "[rule approve-verb]",
    );
    // Waivers are bounded.
    let out = create_as(&bob, &waiver(&ns, "bob-60-days", None, 24 * 60), false);
    refused_by_policy(
        &out,
        "a waiver lasting 60 days",
        "releasepassport-waivers",
        "[rule waiver-expiry]",
    );

    // What is allowed is recorded under the authenticated name.
    let out = create_as(
        &alice,
        &approval(&ns, "alice-gate-a", "gate-a", None),
        false,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let approver = support::kubectl_ok(&[
        "get",
        "releaseapproval",
        "alice-gate-a",
        "-n",
        &ns,
        "-o",
        "jsonpath={.spec.approver}",
    ]);
    assert_eq!(approver, "alice");

    // A waiver cannot be extended, not even by a cluster admin: the CRD's
    // own rule, in the apiserver.
    let out = create_as(&bob, &waiver(&ns, "bob-1h", None, 1), false);
    assert!(out.status.success(), "{}", stderr(&out));
    let extend = serde_json::json!({"spec": {"expiresAt": "2030-01-01T00:00:00Z"}}).to_string();
    let out = support::kubectl(&[
        "-n",
        &ns,
        "patch",
        "releasewaiver",
        "bob-1h",
        "--type=merge",
        "-p",
        &extend,
    ]);
    assert!(!out.status.success(), "a waiver was extended");
    assert!(
        stderr(&out).contains("a ReleaseWaiver is immutable"),
        "{}",
        stderr(&out)
    );
}
