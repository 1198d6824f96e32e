//! Two controller processes, one lease: exactly one writes; when the leader
//! dies the standby takes over once the lease expires; no passport is
//! written twice.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use serde_json::json;
use support::controller::{self as ctl, OPERATOR_NAMESPACE, eventually};

async fn holder(api: &Api<Lease>, name: &str) -> Option<String> {
    api.get_opt(name).await.ok()??.spec?.holder_identity
}

fn gate(ns: &str, error_rate: &str) -> ReleaseGate {
    let mut gate: ReleaseGate = support::load_yaml("examples/releasegate.yaml");
    gate.metadata.namespace = Some(ns.into());
    gate.spec.connector_scopes.clear();
    gate.spec.evidence = serde_json::from_value(json!([
        {"connector": "ci-prometheus", "freshness": {"observedAt": jiff::Timestamp::now(), "maxAgeSeconds": 3600},
         "facts": [{"name": "error_rate", "value": error_rate}]}
    ]))
    .expect("evidence");
    gate
}

#[tokio::test]
async fn cluster_one_leader_writes_and_the_standby_takes_over_when_it_dies() {
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let ns = support::namespace(&client, "leader").await;
    let lease_name = format!("rp-leader-test-{}", std::process::id());
    let leases: Api<Lease> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let args = ["--lease-duration-seconds", "6"];

    let mut a = ctl::start(&lease_name, "leader-a", &args);
    eventually(Duration::from_secs(60), "leader-a holds the lease", || {
        let leases = leases.clone();
        let lease_name = lease_name.clone();
        async move { (holder(&leases, &lease_name).await.as_deref() == Some("leader-a")).then_some(()) }
    })
    .await;
    let b = ctl::start(&lease_name, "leader-b", &args);
    eventually(Duration::from_secs(60), "leader-b stands by", || {
        let log = b.log();
        async move { log.contains("standing by").then_some(()) }
    })
    .await;

    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &support::ci_policy())
        .await
        .expect("policy");
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    gates
        .create(&PostParams::default(), &gate(&ns, "2.7%"))
        .await
        .expect("gate");
    let passports: Api<Passport> = Api::namespaced(client.clone(), &ns);
    eventually(Duration::from_secs(60), "the first passport", || {
        let passports = passports.clone();
        async move {
            (!passports
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty())
            .then_some(())
        }
    })
    .await;
    let wrote = format!("namespace={ns}");
    assert!(
        a.log()
            .lines()
            .any(|l| l.contains("wrote passport") && l.contains(&wrote)),
        "the leader wrote it"
    );
    assert!(
        !b.log().lines().any(|l| l.contains("wrote passport")),
        "the standby wrote nothing:\n{}",
        b.log()
    );

    // The leader dies without releasing the lease.
    a.kill();
    let killed = Instant::now();
    eventually(
        Duration::from_secs(60),
        "leader-b takes the lease over",
        || {
            let leases = leases.clone();
            let lease_name = lease_name.clone();
            async move {
                (holder(&leases, &lease_name).await.as_deref() == Some("leader-b")).then_some(())
            }
        },
    )
    .await;
    eprintln!(
        "handover after the leader died: {} ms (lease duration 6 s)",
        killed.elapsed().as_millis()
    );

    // The new leader serves the next change.
    let change = json!({"spec": {"evidence": gate(&ns, "0.3%").spec.evidence}});
    gates
        .patch(
            "payment-api-production",
            &PatchParams::default(),
            &Patch::Merge(&change),
        )
        .await
        .expect("change");
    eventually(
        Duration::from_secs(60),
        "the new leader writes the next passport",
        || {
            let log = b.log();
            let wrote = wrote.clone();
            async move {
                log.lines()
                    .any(|l| l.contains("wrote passport") && l.contains(&wrote))
                    .then_some(())
            }
        },
    )
    .await;
    let all = passports
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    let mut names: Vec<_> = all.iter().filter_map(|p| p.metadata.name.clone()).collect();
    names.dedup();
    assert_eq!(
        names.len(),
        2,
        "one passport per evaluation outcome, none duplicated: {names:?}"
    );
}
