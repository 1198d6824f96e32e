//! End-to-end suite on the one-node cluster (`e2e/cluster.sh`): the operator
//! runs as Pods from its own image (`e2e/image.sh operator`), installed by
//! `helm install` of charts/release-passport; the webhook is reached by the
//! apiserver through its Service; Deployments roll out real Pods of the test
//! workload (`e2e/node/workload`). Run it with `make e2e` (part of `make
//! test`), which builds the image first; the scenarios are `#[ignore]`d so
//! that a plain `cargo test` does not start a node.

mod harness;
mod layout;

use std::time::Duration;

use harness::*;
use serde_json::json;

#[test]
#[ignore = "needs the one-node cluster and the operator image: make e2e"]
fn both_replicas_ready_one_leads_and_a_standby_takes_over_without_duplicate_passports() {
    let _serial = serial();
    suite();
    let pods = wait_operator_ready();
    let leader = wait_for("a lease holder", Duration::from_secs(60), || {
        let holder = lease_holder();
        if pods.contains(&holder) {
            Ok(holder)
        } else {
            Err(format!("holder {holder:?}, pods {pods:?}"))
        }
    });
    let standby = pods
        .iter()
        .find(|p| **p != leader)
        .cloned()
        .expect("a standby");

    let ns = TestNamespace::new("e2e-leader");
    apply(&ns.0, policy_yaml());
    // Shadow gates created with CI's evidence: one evaluation, one Passport.
    let shadow_gate = |name: &str| {
        gate_yaml("v1", &image("workload-v1"), None)
            .replace("name: web-production", &format!("name: {name}"))
            .replace("mode: enforce", "mode: shadow")
            + &approval_evidence(true)
    };
    apply(&ns.0, &shadow_gate("before-failover"));
    wait_decision(&ns.0, "before-failover", "ALLOW");
    assert_eq!(passports_of(&ns.0, "before-failover").len(), 1);

    // The leader goes away; the standby takes the lease.
    kubectl_ok(&["delete", "pod", "-n", RELEASE_NS, &leader]);
    wait_for(
        "the standby to hold the lease",
        Duration::from_secs(120),
        || {
            let holder = lease_holder();
            if holder == standby {
                Ok(())
            } else {
                // Everything that tells a slow takeover from a stuck one.
                let lease =
                    get_json(&["lease", "-n", RELEASE_NS, "release-passport-controller"])["spec"]
                        .to_string();
                let pods: Vec<String> = operator_pods()
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {} deleting={} ready={}",
                            p["metadata"]["name"].as_str().unwrap_or("?"),
                            p["status"]["phase"].as_str().unwrap_or("?"),
                            p["metadata"]["deletionTimestamp"].is_string(),
                            p["status"]["containerStatuses"][0]["ready"]
                        )
                    })
                    .collect();
                Err(format!(
                    "holder {holder:?}; deleted leader {leader}, standby {standby}; lease {lease}; pods {pods:?}"
                ))
            }
        },
    );
    let takeover = jiff::Timestamp::now();

    // The next gate is decided, by the new leader.
    apply(&ns.0, &shadow_gate("after-failover"));
    let status = wait_decision(&ns.0, "after-failover", "ALLOW");
    let passport = get_json(&[
        "passport",
        "-n",
        &ns.0,
        status["passportName"].as_str().expect("passport name"),
    ]);
    let actor = passport["spec"]["actor"].as_str().unwrap_or_default();
    assert!(
        actor.ends_with(&standby),
        "the passport after the failover was signed by {actor}, not the new leader {standby}"
    );

    // The new leader re-evaluated the earlier gate too, and wrote no second
    // Passport for the same decision.
    wait_for(
        "the new leader to re-evaluate the earlier gate",
        Duration::from_secs(120),
        || {
            let status = gate_status(&ns.0, "before-failover")?;
            let at: jiff::Timestamp = status["evaluatedAt"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .map_err(|e| format!("evaluatedAt: {e}"))?;
            if at > takeover {
                Ok(())
            } else {
                Err(format!("evaluated at {at}"))
            }
        },
    );
    assert_eq!(passports_of(&ns.0, "before-failover").len(), 1);
    assert_eq!(passports_of(&ns.0, "after-failover").len(), 1);
    wait_operator_ready();
}

#[test]
#[ignore = "needs the one-node cluster and the operator image: make e2e"]
fn enforce_denies_set_image_under_hold_through_the_service_and_rolls_out_after_allow() {
    let _serial = serial();
    suite();
    wait_operator_ready();
    // The apiserver calls the webhook through the chart's Service.
    let config = get_json(&[
        "validatingwebhookconfiguration",
        &format!("{RELEASE}-webhook"),
    ]);
    let client = &config["webhooks"][0]["clientConfig"];
    assert_eq!(client["service"]["name"], format!("{RELEASE}-webhook"));
    assert_eq!(client["service"]["namespace"], RELEASE_NS);
    assert!(
        client["url"].is_null(),
        "the webhook must be called through its Service"
    );

    let ns = TestNamespace::new("e2e-enforce");
    let (v1, v2) = (image("workload-v1"), image("workload-v2"));
    deploy_allowed(&ns.0, "v1", &v1);

    // CI applies the next release; the change is not approved yet: HOLD.
    apply(&ns.0, &gate_yaml("v2", &v2, Some(("v1", &v1))));
    push_evidence(
        &ns.0,
        "web-production",
        json!([{"name": "change_approved", "value": false}]),
    );
    let held = wait_decision(&ns.0, "web-production", "HOLD");
    let denied = set_image(&ns.0, &v2);
    assert!(
        !denied.status.success(),
        "kubectl set image was admitted under HOLD"
    );
    // The apiserver's own policy (the images the gate covers, CEL over the
    // gate's status) answers before the webhook; either refusal names HOLD.
    let message = stderr(&denied);
    assert!(
        (message.contains("denied the request") || message.contains("denied request"))
            && message.contains("HOLD"),
        "expected a HOLD denial, got: {message}"
    );
    assert!(
        message.contains(held["passportName"].as_str().unwrap_or("?")),
        "the denial names the passport: {message}"
    );
    // What only the webhook checks, through its Service: pushed evidence
    // observed an hour in the future is refused.
    let future = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let patch = json!({"spec": {"evidence": [{
        "connector": "ingest",
        "scope": {"source": "ci"},
        "freshness": {"observedAt": future, "maxAgeSeconds": 3600},
        "facts": [{"name": "change_approved", "value": true}],
    }]}});
    let refused = kubectl(&[
        "patch",
        "releasegate",
        "-n",
        &ns.0,
        "web-production",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
    let message = stderr(&refused);
    assert!(
        !refused.status.success()
            && message.contains("denied the request")
            && message.contains("must not be observed in the future"),
        "expected the webhook to refuse evidence from the future, got: {message}"
    );
    // Nothing changed: the Pods still run v1.
    assert!(
        running_digests(&ns.0, "app=web")
            .iter()
            .all(|d| d == digest(&v1))
    );

    // The change is approved: ALLOW, and the rollout happens for real.
    approve_and_promote(&ns.0, &v2);
    wait_pods_run(&ns.0, "app=web", &v2, 2);
    let replica_sets = get_json(&["replicasets", "-n", &ns.0, "-l", "app=web"]);
    assert_eq!(
        replica_sets["items"].as_array().map(|a| a.len()),
        Some(2),
        "the rollout went through a new ReplicaSet"
    );
}

#[test]
#[ignore = "needs the one-node cluster and the operator image: make e2e"]
fn crash_looping_release_is_recommended_for_rollback_and_rolling_back_is_admitted() {
    let _serial = serial();
    suite();
    wait_operator_ready();
    let ns = TestNamespace::new("e2e-rollback");
    let (v2, v3) = (image("workload-v2"), image("workload-v3-crash"));
    deploy_allowed(&ns.0, "v2", &v2);

    // v3 is allowed and promoted; its Pods crash.
    apply(&ns.0, &gate_yaml("v3", &v3, Some(("v2", &v2))));
    approve_and_promote(&ns.0, &v3);

    // The post-deploy watch reads the real restarts.
    let status = wait_decision(&ns.0, "web-production", "ROLLBACK_RECOMMENDED");
    let actions = status["nextActions"].to_string();
    assert!(
        actions.contains("Roll back web to v2"),
        "the next action names the previous release: {actions}"
    );
    let restarts: i64 = get_json(&["pods", "-n", &ns.0, "-l", "app=web"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    assert!(restarts > 0, "the kubelet reports restarts");

    // Rolling back is admitted, and the Pods return to v2.
    let rollback = set_image(&ns.0, &v2);
    assert!(
        rollback.status.success(),
        "rollback refused: {}",
        stderr(&rollback)
    );
    wait_pods_run(&ns.0, "app=web", &v2, 2);
}

#[test]
#[ignore = "needs the one-node cluster and the operator image: make e2e"]
fn workloads_outside_the_webhook_scope_roll_out_while_the_operator_is_down() {
    let _serial = serial();
    suite();
    wait_operator_ready();
    let gated = TestNamespace::new("e2e-gated");
    let v1 = image("workload-v1");
    deploy_allowed(&gated.0, "v1", &v1);

    // Both operator Pods go away, and stay away.
    kubectl_ok(&[
        "scale",
        "deployment",
        "-n",
        RELEASE_NS,
        RELEASE,
        "--replicas=0",
    ]);
    wait_for("no operator Pod", Duration::from_secs(120), || {
        let n = operator_pods().len();
        if n == 0 {
            Ok(())
        } else {
            Err(format!("{n} Pods"))
        }
    });
    // The webhook is unreachable, yet a gated change to an image the gate
    // never allowed is refused: by the apiserver's own admission policy
    // (the chart's admissionPolicies, reading the gate's status), or by the
    // webhook's failurePolicy Fail.
    let refused = set_image(&gated.0, &image("workload-v2"));
    assert!(
        !refused.status.success(),
        "a gated change was admitted with the operator down"
    );
    let message = stderr(&refused);
    assert!(
        message.contains("[rule images-covered]") || message.contains("failed calling webhook"),
        "expected the apiserver's policy or its webhook failure, got: {message}"
    );

    // An unlabelled Deployment, and a labelled one in an excluded namespace,
    // are never sent to the webhook: they create and roll out.
    let free = TestNamespace::new("e2e-unscoped");
    let unlabelled = deployment_yaml(&v1).replace(", releasepassport.io/gate: web-production", "");
    apply(&free.0, &unlabelled);
    wait_pods_run(&free.0, "app=web", &v1, 2);
    let v2 = image("workload-v2");
    assert!(set_image(&free.0, &v2).status.success());
    wait_pods_run(&free.0, "app=web", &v2, 2);
    apply(
        "kube-system",
        &deployment_yaml(&v1).replace("name: web\n", "name: e2e-excluded\n"),
    );
    let excluded = get_json(&["deployment", "-n", "kube-system", "e2e-excluded"]);
    assert_eq!(
        excluded["metadata"]["labels"]["releasepassport.io/gate"],
        "web-production"
    );
    kubectl_ok(&[
        "rollout",
        "status",
        "-n",
        "kube-system",
        "deployment/e2e-excluded",
        "--timeout=240s",
    ]);
    kubectl_ok(&["delete", "deployment", "-n", "kube-system", "e2e-excluded"]);

    kubectl_ok(&[
        "scale",
        "deployment",
        "-n",
        RELEASE_NS,
        RELEASE,
        "--replicas=2",
    ]);
    wait_operator_ready();
}

#[test]
#[ignore = "needs the one-node cluster and the operator image: make e2e"]
fn deleting_a_release_gate_garbage_collects_its_passports() {
    let _serial = serial();
    suite();
    wait_operator_ready();
    let ns = TestNamespace::new("e2e-gc");
    apply(&ns.0, policy_yaml());
    apply(
        &ns.0,
        &(gate_yaml("v1", &image("workload-v1"), None) + &approval_evidence(false)),
    );
    wait_decision(&ns.0, "web-production", "HOLD");
    push_evidence(
        &ns.0,
        "web-production",
        json!([{"name": "change_approved", "value": true}]),
    );
    wait_decision(&ns.0, "web-production", "ALLOW");
    // One Passport per decision, each owned by the gate.
    let passports = passports_of(&ns.0, "web-production");
    assert_eq!(passports.len(), 2, "HOLD and ALLOW");
    let all = get_json(&["passports", "-n", &ns.0])["items"]
        .as_array()
        .map(|a| a.len());
    assert_eq!(all, Some(2));

    kubectl_ok(&["delete", "releasegate", "-n", &ns.0, "web-production"]);
    // kube-controller-manager's garbage collector follows the owner references.
    wait_for(
        "the Passports to be collected",
        Duration::from_secs(120),
        || {
            let left = get_json(&["passports", "-n", &ns.0])["items"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or(0);
            if left == 0 {
                Ok(())
            } else {
                Err(format!("{left} Passports left"))
            }
        },
    );
}

#[test]
#[ignore = "needs the one-node cluster and the operator image: make e2e"]
fn operator_runs_as_65532_on_a_read_only_root_and_its_services_answer() {
    let _serial = serial();
    let suite = suite();
    let pods = wait_operator_ready();

    // The image holds what the Dockerfile's final stage describes.
    layout::image_matches_dockerfile(&suite.operator_archive);

    for name in &pods {
        let process = layout::container_process(&suite.cluster, RELEASE_NS, name, "controller");
        assert_eq!(process.uid, 65532, "{name} runs as UID {}", process.uid);
        assert_eq!(process.gid, 65532, "{name} runs as GID {}", process.gid);
        assert!(
            process.root_read_only,
            "{name}: the root filesystem is mounted {}",
            process.root_options
        );
        assert_eq!(process.exe, "/usr/local/bin/releasepassport");
        assert!(!process.has_shell, "{name}: the image has a shell");
    }

    // The PodDisruptionBudget, as kube-controller-manager's disruption
    // controller counts it: one replica may go, never both.
    let pdb = get_json(&["poddisruptionbudget", "-n", RELEASE_NS, RELEASE]);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    wait_for(
        "the PDB to count both replicas",
        Duration::from_secs(60),
        || {
            let status =
                get_json(&["poddisruptionbudget", "-n", RELEASE_NS, RELEASE])["status"].clone();
            if status["currentHealthy"] == 2 && status["disruptionsAllowed"] == 1 {
                Ok(())
            } else {
                Err(status.to_string())
            }
        },
    );

    // Through the Services: their ClusterIPs, routed into the node by kube-proxy.
    let admin = layout::service_endpoint(RELEASE_NS, RELEASE, "admin");
    assert_eq!(layout::http_get(admin, "/readyz").0, 200);
    let (code, metrics) = layout::http_get(admin, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("releasepassport_leader"),
        "metrics: {metrics:.300}"
    );
    let console = layout::service_endpoint(RELEASE_NS, &format!("{RELEASE}-console"), "console");
    let (code, _) = layout::http_get(console, "/console");
    assert!(matches!(code, 200 | 303), "console answered {code}");
    // And through the apiserver's Service proxy.
    let ready = kubectl_ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/{RELEASE_NS}/services/{RELEASE}:admin/proxy/readyz"),
    ]);
    assert!(
        ready.contains("ok") || ready.contains("ready"),
        "readyz via proxy: {ready}"
    );
    // The webhook Service selects both replicas' webhook port.
    let slices = get_json(&[
        "endpointslices",
        "-n",
        RELEASE_NS,
        "-l",
        &format!("kubernetes.io/service-name={RELEASE}-webhook"),
    ]);
    let ready_endpoints = slices["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["conditions"]["ready"] == true)
        .count();
    assert_eq!(ready_endpoints, 2);
}
