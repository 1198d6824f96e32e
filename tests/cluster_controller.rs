//! The controller end to end, on the real control plane: ReleaseGates become
//! signed Passports; evidence is read through the namespace's own
//! ServiceAccount; staleness, bad policies and fixes flow through without a
//! restart.

mod support;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use releasepassport::passport::{self, VerifyingKeySet};
use serde_json::json;
use support::controller::{self as ctl, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// One controller for this test binary, started on first use.
async fn setup(prefix: &str) -> (Client, String) {
    static CONTROLLER: OnceLock<Mutex<ctl::ControllerProcess>> = OnceLock::new();
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    CONTROLLER.get_or_init(|| {
        Mutex::new(ctl::start(
            &format!("rp-test-controller-{}", std::process::id()),
            "controller-tests",
            &["--resync-seconds", "30"],
        ))
    });
    let ns = support::namespace(&client, prefix).await;
    (client, ns)
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// The reader ServiceAccount, with (or without) a Role that lets it read workloads.
async fn reader(client: &Client, ns: &str, with_role: bool) {
    let pp = PostParams::default();
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "release-passport-reader"}}))
            .expect("sa");
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&pp, &sa)
        .await
        .expect("sa");
    if !with_role {
        return;
    }
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "release-passport-reader"},
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]}
        ]
    }))
    .expect("role");
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&pp, &role)
        .await
        .expect("role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "release-passport-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "release-passport-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "release-passport-reader", "namespace": ns}]
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&pp, &binding)
        .await
        .expect("binding");
}

/// The payment-api Deployment, its status set as a kubelet-less cluster needs.
async fn ready_deployment(client: &Client, ns: &str) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "payment-api", "labels": {"app": "payment-api"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "payment-api"}},
            "template": {
                "metadata": {"labels": {"app": "payment-api"}},
                "spec": {"containers": [{"name": "api", "image": format!("registry.example.com/payment-api@{}", digest('1'))}]}
            }
        }
    }))
    .expect("deployment");
    let created = api
        .create(&PostParams::default(), &d)
        .await
        .expect("deployment");
    let status = json!({"status": {
        "observedGeneration": created.metadata.generation,
        "replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]
    }});
    api.patch_status(
        "payment-api",
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .expect("deployment status");
}

fn evidence(
    error_rate: &str,
    approval_linked: bool,
    observed: jiff::Timestamp,
    max_age: i64,
) -> Vec<EvidenceDocument> {
    serde_json::from_value(json!([
        {"connector": "ci-argocd", "freshness": {"observedAt": observed, "maxAgeSeconds": max_age},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "ci-prometheus", "freshness": {"observedAt": observed, "maxAgeSeconds": max_age},
         "facts": [{"name": "error_rate", "value": error_rate}]},
        {"connector": "ingest", "freshness": {"observedAt": observed, "maxAgeSeconds": max_age},
         "facts": [{"name": "active_sev1_incidents", "value": 0}, {"name": "change_approval_linked", "value": approval_linked}]}
    ]))
    .expect("evidence")
}

/// The seed's release: payment-api v2.18.4 in production, shadow mode.
fn seed_gate(ns: &str) -> ReleaseGate {
    let mut gate: ReleaseGate = support::load_yaml("examples/releasegate.yaml");
    gate.metadata.namespace = Some(ns.into());
    gate.spec.connector_scopes = vec![LocalObjectReference {
        name: "payment-api-runtime".into(),
    }];
    gate.spec.evidence = evidence("2.7%", false, now(), 3600);
    gate
}

async fn seed_objects(client: &Client, ns: &str) {
    let pp = PostParams::default();
    Api::<Policy>::namespaced(client.clone(), ns)
        .create(&pp, &support::ci_policy())
        .await
        .expect("policy");
    Api::<ConnectorScope>::namespaced(client.clone(), ns)
        .create(
            &pp,
            &support::load_yaml("examples/connectorscope-kubernetes.yaml"),
        )
        .await
        .expect("scope");
}

/// Waits until the gate's status describes `passport != previous`, and returns it.
async fn next_passport(
    client: &Client,
    ns: &str,
    gate: &str,
    previous: Option<&str>,
) -> (ReleaseGateStatus, Passport) {
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    let status = eventually(WAIT, "a new passport on the gate", || {
        let gates = gates.clone();
        async move {
            let g = gates.get(gate).await.ok()?;
            let s = g.status?;
            let name = s.passport_name.clone()?;
            (Some(name.as_str()) != previous && s.observed_generation == g.metadata.generation)
                .then_some(s)
        }
    })
    .await;
    let name = status.passport_name.clone().expect("passport name");
    let passport = Api::<Passport>::namespaced(client.clone(), ns)
        .get(&name)
        .await
        .expect("passport exists");
    (status, passport)
}

fn condition<'a>(
    status: &'a ReleaseGateStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("condition {type_}"))
}

#[tokio::test]
async fn cluster_seed_release_holds_then_allows_once_the_evidence_is_fixed() {
    let (client, ns) = setup("seed").await;
    reader(&client, &ns, true).await;
    ready_deployment(&client, &ns).await;
    seed_objects(&client, &ns).await;
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    gates
        .create(&PostParams::default(), &seed_gate(&ns))
        .await
        .expect("gate");

    let (status, hold) = next_passport(&client, &ns, "payment-api-production", None).await;
    assert_eq!(hold.spec.decision, Decision::Hold);
    assert_eq!(status.decision, Some(Decision::Hold));
    assert_eq!(
        status.failing_checks,
        ["error-rate", "rollback-image", "change-approval"]
    );
    assert_eq!(
        hold.spec.next_actions,
        [
            "Re-sync the GitOps application and wait for fresh runtime evidence.",
            "Attach rollback artifact for payment-api v2.17.9.",
            "Link the Jira change approval, then re-run the shadow gate.",
        ]
    );
    // The runtime evidence was read through the namespace's reader.
    let deployment_ready = hold
        .spec
        .policy_results
        .iter()
        .find(|r| r.id == "deployment-ready")
        .expect("rule");
    assert_eq!(deployment_ready.state, ResultState::Pass);
    assert_eq!(condition(&status, "Promotable").status, "False");
    assert_eq!(condition(&status, "Ready").status, "True");

    // Fix the evidence the way CI would: lower error rate, rollback image.
    let fix = json!({"spec": {
        "evidence": evidence("0.4%", false, now(), 3600),
        "rollback": {"release": "v2.17.9", "image": format!("registry.example.com/payment-api@{}", digest('9'))},
    }});
    gates
        .patch(
            "payment-api-production",
            &PatchParams::default(),
            &Patch::Merge(&fix),
        )
        .await
        .expect("fix evidence");
    let (_, waiting) = next_passport(
        &client,
        &ns,
        "payment-api-production",
        hold.metadata.name.as_deref(),
    )
    .await;
    assert_eq!(waiting.spec.decision, Decision::RequireApproval);
    // An approver (not the user who applied the release) approves this digest.
    support::identities::approve_as_alice(
        &ns,
        "payment-api-production",
        "v2.18.4",
        &waiting.spec.artifact.digest,
    );
    let (status, allow) = next_passport(
        &client,
        &ns,
        "payment-api-production",
        waiting.metadata.name.as_deref(),
    )
    .await;
    assert_eq!(allow.spec.approvals.len(), 1);
    assert_eq!(allow.spec.approvals[0].actor, "alice");
    assert!(allow.spec.approvals[0].counted);
    assert_eq!(
        allow.spec.decision,
        Decision::Allow,
        "{:?}",
        allow.spec.policy_results
    );
    assert!(status.failing_checks.is_empty());
    assert_eq!(condition(&status, "Promotable").status, "True");
    assert_eq!(condition(&status, "EvidenceComplete").status, "True");

    // History stays: both passports exist, owned by the gate, and each
    // verifies with the published public key.
    let pem = ctl::public_key(&client).await;
    let mut keys = VerifyingKeySet::new();
    keys.insert(passport::load_verifying_key_pem(&pem).expect("public key"));
    let all = Api::<Passport>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list");
    assert_eq!(all.items.len(), 3, "one passport per distinct decision");
    for p in &all.items {
        let value = serde_json::to_value(&p.spec).expect("json");
        passport::verify_value(&value, &keys)
            .unwrap_or_else(|e| panic!("{:?} verifies: {e}", p.metadata.name));
        let owner = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ReleaseGate", "payment-api-production")
        );
    }

    // A decision change is one Event on the gate: DecisionChanged, with the
    // decisions in its message (no second Event with the decision's reason).
    let events = eventually(WAIT, "decision Events", || {
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        async move {
            let events: Vec<(String, String, String)> = api
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .map(|e| {
                    (
                        e.reason.unwrap_or_default(),
                        e.type_.unwrap_or_default(),
                        e.message.unwrap_or_default(),
                    )
                })
                .collect();
            let changed = |needle: &str| {
                events
                    .iter()
                    .any(|(r, _, m)| r == "DecisionChanged" && m.contains(needle))
            };
            (changed("Decision HOLD for") && changed("→ ALLOW")).then_some(events)
        }
    })
    .await;
    assert!(
        events
            .iter()
            .any(|(r, t, m)| r == "DecisionChanged" && t == "Warning" && m.contains("HOLD for")),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|(r, _, _)| r == "Hold" || r == "Allow"),
        "a decision change is told once: {events:#?}"
    );
}

#[tokio::test]
async fn cluster_reader_without_a_role_is_forbidden_and_the_operator_does_not_read_with_its_own_rights()
 {
    let (client, ns) = setup("forbidden").await;
    reader(&client, &ns, false).await;
    ready_deployment(&client, &ns).await;
    let mut policy: Policy = support::ci_policy();
    // Make the runtime rule required: without it the release cannot pass.
    for rule in &mut policy.spec.rules {
        if rule.id == "deployment-ready" {
            rule.required = true;
        }
    }
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    Api::<ConnectorScope>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &support::load_yaml("examples/connectorscope-kubernetes.yaml"),
        )
        .await
        .expect("scope");
    let mut gate = seed_gate(&ns);
    gate.spec.evidence = evidence("0.4%", true, now(), 3600);
    gate.spec.rollback = Some(Rollback {
        release: "v2.17.9".into(),
        image: Some(format!("registry.example.com/payment-api@{}", digest('9'))),
    });
    Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &gate)
        .await
        .expect("gate");

    let (status, pp) = next_passport(&client, &ns, "payment-api-production", None).await;
    assert_eq!(pp.spec.decision, Decision::Hold);
    assert_eq!(status.failing_checks, ["deployment-ready"]);
    let result = pp
        .spec
        .policy_results
        .iter()
        .find(|r| r.id == "deployment-ready")
        .expect("rule");
    assert_eq!(result.state, ResultState::Missing);

    let scopes: Api<ConnectorScope> = Api::namespaced(client.clone(), &ns);
    let scope_status = eventually(WAIT, "ConnectorScope health", || {
        let scopes = scopes.clone();
        async move {
            scopes
                .get("payment-api-runtime")
                .await
                .ok()?
                .status
                .filter(|s| s.health.is_some())
        }
    })
    .await;
    assert_eq!(scope_status.health, Some(ConnectorHealth::Forbidden));
    // The refusal is the apiserver's own answer for the reader's identity.
    let message = scope_status.message.unwrap_or_default();
    assert!(
        message.contains(&format!("User \"system:serviceaccount:{ns}:release-passport-reader\" cannot get resource \"deployments\"")),
        "{message}"
    );
}

#[tokio::test]
async fn cluster_stale_evidence_holds_without_user_action_and_fresh_evidence_allows_again() {
    let (client, ns) = setup("stale").await;
    let mut policy: Policy = support::ci_policy();
    policy.spec.rules.retain(|r| r.id != "deployment-ready");
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    let mut gate = seed_gate(&ns);
    gate.spec.connector_scopes.clear();
    gate.spec.rollback = Some(Rollback {
        release: "v2.17.9".into(),
        image: Some(format!("registry.example.com/payment-api@{}", digest('9'))),
    });
    // Evidence that is fresh for a few seconds only.
    gate.spec.evidence = evidence("0.4%", true, now(), 4);
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    gates
        .create(&PostParams::default(), &gate)
        .await
        .expect("gate");

    let (_, first) = next_passport(&client, &ns, "payment-api-production", None).await;
    assert_eq!(
        first.spec.decision,
        Decision::Allow,
        "{:?}",
        first.spec.policy_results
    );

    // Nobody touches the gate: the controller re-evaluates when evidence expires.
    let (status, stale) = next_passport(
        &client,
        &ns,
        "payment-api-production",
        first.metadata.name.as_deref(),
    )
    .await;
    assert_eq!(stale.spec.decision, Decision::Hold);
    assert!(
        stale
            .spec
            .policy_results
            .iter()
            .any(|r| r.state == ResultState::Stale)
    );
    assert_eq!(
        condition(&status, "EvidenceComplete").reason,
        "EvidenceStale"
    );

    // CI pushes fresh evidence: allowed again.
    let fresh = json!({"spec": {"evidence": evidence("0.4%", true, now(), 3600)}});
    gates
        .patch(
            "payment-api-production",
            &PatchParams::default(),
            &Patch::Merge(&fresh),
        )
        .await
        .expect("fresh");
    let (_, again) = next_passport(
        &client,
        &ns,
        "payment-api-production",
        stale.metadata.name.as_deref(),
    )
    .await;
    assert_eq!(again.spec.decision, Decision::Allow);
}

#[tokio::test]
async fn cluster_bad_policy_sets_a_condition_and_an_event_while_other_gates_keep_being_served() {
    let (client, ns) = setup("badpolicy").await;
    let mut bad: Policy = support::ci_policy();
    bad.metadata.name = Some("broken".into());
    bad.spec.rules[0].expression = Some("facts.argocd.sync_status ==".into());
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &bad)
        .await
        .expect("policy accepted by the apiserver");
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &support::ci_policy())
        .await
        .expect("good policy");

    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    let mut broken_gate = seed_gate(&ns);
    broken_gate.metadata.name = Some("uses-broken-policy".into());
    broken_gate.spec.policy_ref.name = "broken".into();
    broken_gate.spec.connector_scopes.clear();
    gates
        .create(&PostParams::default(), &broken_gate)
        .await
        .expect("gate");
    let mut good_gate = seed_gate(&ns);
    good_gate.spec.connector_scopes.clear();
    gates
        .create(&PostParams::default(), &good_gate)
        .await
        .expect("gate");

    let ready = eventually(
        WAIT,
        "Ready=False on the gate with the broken policy",
        || {
            let gates = gates.clone();
            async move {
                let s = gates.get("uses-broken-policy").await.ok()?.status?;
                s.conditions
                    .into_iter()
                    .find(|c| c.type_ == "Ready" && c.status == "False")
            }
        },
    )
    .await;
    assert_eq!(ready.reason, "InvalidPolicy");
    assert!(
        ready.message.contains("argocd-synced"),
        "names the rule: {}",
        ready.message
    );

    let policy_valid = eventually(WAIT, "Valid=False on the Policy", || {
        let api: Api<Policy> = Api::namespaced(client.clone(), &ns);
        async move {
            api.get("broken")
                .await
                .ok()?
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Valid" && c.status == "False")
        }
    })
    .await;
    assert_eq!(policy_valid.reason, "InvalidPolicy");

    let event = eventually(WAIT, "an InvalidPolicy Event", || {
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        async move {
            api.list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("InvalidPolicy")
                        && e.involved_object.name.as_deref() == Some("uses-broken-policy")
                })
        }
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));

    // The other gate in the same namespace still gets its passport.
    let (_, pp) = next_passport(&client, &ns, "payment-api-production", None).await;
    assert_eq!(pp.spec.decision, Decision::Hold);

    // Fixing the policy re-evaluates the gate without a restart.
    let fix = json!({"spec": {"rules": support::ci_policy().spec.rules}});
    Api::<Policy>::namespaced(client.clone(), &ns)
        .patch("broken", &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .expect("fix policy");
    let (status, _) = next_passport(&client, &ns, "uses-broken-policy", None).await;
    assert_eq!(condition(&status, "Ready").status, "True");
}

#[tokio::test]
async fn cluster_post_deploy_failure_once_the_target_runs_the_release_recommends_rollback() {
    let (client, ns) = setup("postdeploy").await;
    reader(&client, &ns, true).await;
    seed_objects(&client, &ns).await;
    // The Deployment already runs the release's image (digest '3f5d...' of the example gate).
    let gate_template = seed_gate(&ns);
    let image = gate_template.spec.artifact.image.clone();
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "payment-api"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "payment-api"}},
                 "template": {"metadata": {"labels": {"app": "payment-api"}},
                              "spec": {"containers": [{"name": "api", "image": image}]}}}
    }))
    .expect("deployment");
    let created = api
        .create(&PostParams::default(), &d)
        .await
        .expect("deployment");
    let status = json!({"status": {"observedGeneration": created.metadata.generation, "replicas": 1,
        "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1}});
    api.patch_status(
        "payment-api",
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .expect("status");

    // Pre-deploy evidence passes, but the runtime error rate after promotion is 3%.
    let mut gate = gate_template;
    gate.spec.rollback = Some(Rollback {
        release: "v2.17.9".into(),
        image: Some(format!("registry.example.com/payment-api@{}", digest('9'))),
    });
    gate.spec.evidence = evidence("3%", true, now(), 3600);
    Api::<ReleaseGate>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &gate)
        .await
        .expect("gate");

    let (status, pp) = next_passport(&client, &ns, "payment-api-production", None).await;
    assert_eq!(
        pp.spec.decision,
        Decision::RollbackRecommended,
        "{:?}",
        pp.spec.policy_results
    );
    assert!(
        status
            .failing_checks
            .contains(&"post-deploy-error-rate".to_string()),
        "{:?}",
        status.failing_checks
    );
    assert!(
        pp.spec
            .next_actions
            .iter()
            .any(|a| a.contains("Roll back payment-api to v2.17.9")),
        "{:?}",
        pp.spec.next_actions
    );
    assert_eq!(status.deployed_image.as_deref(), Some(image.as_str()));
    let (deployed, until) = (
        status.deployed_at.expect("deployedAt"),
        status.watch_until.expect("watchUntil"),
    );
    assert_eq!(
        until.duration_since(deployed).as_secs(),
        900,
        "the gate's watch window"
    );
}
