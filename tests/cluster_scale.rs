//! The controller's write pattern against the real apiserver: what one
//! re-evaluation that changes nothing writes, seen by watches on the
//! apiserver itself (every write to an object is one watch event; a patch
//! that changes nothing is none) and by the apiserver's own request and
//! request-body counters.

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

/// The apiserver's own counters of ReleaseGate status patches: requests,
/// and request body bytes (of every ReleaseGate patch; nothing here patches
/// a gate's spec).
fn status_patches() -> (f64, f64) {
    let text = support::kubectl_ok(&["get", "--raw", "/metrics"]);
    let (mut requests, mut bytes) = (0.0, 0.0);
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        if series.starts_with("apiserver_request_total{")
            && series.contains("resource=\"releasegates\"")
            && series.contains("subresource=\"status\"")
            && series.contains("verb=\"PATCH\"")
        {
            requests += value;
        }
        if series.starts_with("apiserver_request_body_size_bytes_sum{")
            && series.contains("resource=\"releasegates\"")
            && series.contains("verb=\"patch\"")
        {
            bytes += value;
        }
    }
    (requests, bytes)
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
async fn cluster_a_re_evaluation_that_changes_nothing_writes_one_small_status_patch_and_nothing_else()
 {
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
    // A namespace label (not the enforce label) re-evaluates every gate in
    // the namespace; nothing the decision depends on changed. The
    // apiserver's own counters measure the status patch; they count the
    // whole control plane, so a window in which another gate (of another
    // test's namespace) was written too is tried again.
    let mut measured = None;
    let (mut before, mut after) = (first.clone(), first.clone());
    for attempt in 0..4 {
        for seen in [&gate_events, &passport_events, &events] {
            seen.lock().expect("lock").clear();
        }
        before = gates.get(&name).await.expect("gate");
        let counters_before = status_patches();
        Api::<Namespace>::all(client.clone())
            .patch(
                &ns,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"labels": {"scale-test/touched": attempt.to_string()}}}),
                ),
            )
            .await
            .expect("label the namespace");
        after = eventually(WAIT, "the re-evaluation", || {
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
        let counters_after = status_patches();
        let patches = counters_after.0 - counters_before.0;
        if patches == 1.0 {
            measured = Some(counters_after.1 - counters_before.1);
            break;
        }
        assert!(
            patches >= 1.0,
            "the re-evaluation patched the gate's status"
        );
    }
    t1.abort();
    t2.abort();
    t3.abort();
    let bytes = measured.expect("a window in which only this gate's status was patched");
    // The whole status (four conditions, history, records) is well over a
    // kilobyte; the two timestamps are not.
    assert!(
        bytes > 0.0 && bytes < 256.0,
        "the status patch carried {bytes} bytes"
    );

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
    // The one write changed the two freshness timestamps only. (Compared
    // with the status just before the label, not with the first evaluation:
    // a controller of an earlier test binary still shutting down may have
    // evaluated the gate in between.)
    assert_eq!(without_freshness(&after), without_freshness(&before));
    assert!(
        after.status.as_ref().and_then(|s| s.next_evaluation_at)
            >= before.status.as_ref().and_then(|s| s.next_evaluation_at)
    );
}
