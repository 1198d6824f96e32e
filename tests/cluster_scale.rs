//! The controller's write pattern against the real apiserver: what one
//! re-evaluation that changes nothing writes, seen by watches on the
//! apiserver itself (every write to an object is one watch event; a patch
//! that changes nothing is none).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use releasepassport::api::{EvidenceDocument, Passport, Policy, ReleaseGate};
use serde_json::json;
use support::controller::{self as ctl, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// Every watch event of kind `K` in `ns` (names and types), from now on.
fn record<K>(client: &Client, ns: &str) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            let line = match event {
                Ok(watcher::Event::Apply(o)) => format!("apply {}", o.name_any()),
                Ok(watcher::Event::Delete(o)) => format!("delete {}", o.name_any()),
                Ok(watcher::Event::InitDone) => "init-done".to_string(),
                Ok(_) => continue,
                Err(e) => format!("error {e}"),
            };
            out.lock().expect("lock").push(line);
        }
    });
    (seen, task)
}

fn gate(ns: &str) -> ReleaseGate {
    let mut gate: ReleaseGate = support::load_yaml("examples/releasegate.yaml");
    gate.metadata.namespace = Some(ns.into());
    gate.spec.connector_scopes = Vec::new();
    let observed = jiff::Timestamp::now();
    gate.spec.evidence = serde_json::from_value::<Vec<EvidenceDocument>>(json!([
        {"connector": "ci-argocd", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "ci-prometheus", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "error_rate", "value": "0.4%"}]},
        {"connector": "ingest", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "active_sev1_incidents", "value": 0}, {"name": "change_approval_linked", "value": true}]}
    ]))
    .expect("evidence");
    gate
}

/// The status as JSON without the two timestamps every evaluation moves.
fn without_freshness(gate: &ReleaseGate) -> serde_json::Value {
    let mut status = serde_json::to_value(&gate.status).expect("status");
    if let Some(map) = status.as_object_mut() {
        map.remove("evaluatedAt");
        map.remove("nextEvaluationAt");
    }
    status
}

#[tokio::test]
async fn cluster_a_re_evaluation_that_changes_nothing_writes_one_status_patch_and_nothing_else() {
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let _controller = ctl::start(
        &format!("rp-test-scale-{}", std::process::id()),
        "scale-tests",
        &["--resync-seconds", "3600"],
    );
    let ns = support::namespace(&client, "scale-quiet").await;
    let pp = PostParams::default();
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&pp, &support::ci_policy())
        .await
        .expect("policy");
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    let created = gates.create(&pp, &gate(&ns)).await.expect("gate");
    let name = created.name_any();

    // The first evaluation: a passport and a Ready status.
    let first = eventually(WAIT, "the first evaluation", || {
        let gates = gates.clone();
        let name = name.clone();
        async move {
            let g = gates.get(&name).await.ok()?;
            let s = g.status.as_ref()?;
            (s.passport_name.is_some() && s.observed_generation == g.metadata.generation)
                .then_some(g)
        }
    })
    .await;

    // From here on, every write in the namespace is a watch event.
    let (gate_events, t1) = record::<ReleaseGate>(&client, &ns);
    let (passport_events, t2) = record::<Passport>(&client, &ns);
    let (events, t3) = record::<Event>(&client, &ns);
    for seen in [&gate_events, &passport_events, &events] {
        eventually(WAIT, "the watches listed", || {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .ok()?
                    .iter()
                    .any(|l| l == "init-done")
                    .then_some(())
            }
        })
        .await;
    }
    // Settle: the first evaluation's Events may still be on their way.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for seen in [&gate_events, &passport_events, &events] {
        seen.lock().expect("lock").clear();
    }
    let before = gates.get(&name).await.expect("gate");

    // A namespace label (not the enforce label) re-evaluates every gate in
    // the namespace; nothing the decision depends on changed.
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"scale-test/touched": "true"}}})),
        )
        .await
        .expect("label the namespace");
    let after = eventually(WAIT, "the re-evaluation", || {
        let gates = gates.clone();
        let name = name.clone();
        let previous = before.status.as_ref().and_then(|s| s.evaluated_at);
        async move {
            let g = gates.get(&name).await.ok()?;
            (g.status.as_ref()?.evaluated_at > previous).then_some(g)
        }
    })
    .await;
    // Whatever else the re-evaluation would write has had time to arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    t1.abort();
    t2.abort();
    t3.abort();

    let gate_writes = gate_events.lock().expect("lock").clone();
    assert_eq!(
        gate_writes,
        vec![format!("apply {name}")],
        "exactly one write to the gate"
    );
    assert_eq!(
        passport_events.lock().expect("lock").clone(),
        Vec::<String>::new(),
        "no Passport written or deleted"
    );
    assert_eq!(
        events.lock().expect("lock").clone(),
        Vec::<String>::new(),
        "no Event"
    );
    // The one write changed the two freshness timestamps only.
    assert_eq!(without_freshness(&after), without_freshness(&before));
    assert_eq!(without_freshness(&after), without_freshness(&first));
    assert!(
        after.status.as_ref().and_then(|s| s.next_evaluation_at)
            >= before.status.as_ref().and_then(|s| s.next_evaluation_at)
    );
}
