//! A release that waits for one approval (REQUIRE_APPROVAL: everything
//! passes but the change approval), for the tests that approve it through
//! the console.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, PostParams};
use releasepassport::api::*;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(90);

pub const IMAGE: &str = "registry.example.com/payment-api@sha256:4444444444444444444444444444444444444444444444444444444444444444";
pub const ROLLBACK_IMAGE: &str = "registry.example.com/payment-api@sha256:5555555555555555555555555555555555555555555555555555555555555555";
pub const GATE: &str = "payment-api-production";

/// Everything passes but the change approval: REQUIRE_APPROVAL.
pub async fn seed(client: &Client, ns: &str) {
    let mut policy = super::ci_policy();
    policy.spec.rules.retain(|r| r.id != "deployment-ready");
    policy.metadata.name = Some("payment-api-policy".into());
    Api::<Policy>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    let now = jiff::Timestamp::now();
    let gate: ReleaseGate = serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
        "metadata": {"name": GATE},
        "spec": {
            "service": "payment-api", "release": "v2.18.4", "environment": "production", "mode": "shadow",
            "policyRef": {"name": "payment-api-policy"},
            "artifact": {"image": IMAGE, "sourceSha": "9c1e4b7f2a8d3e6c5b4a3f2e1d0c9b8a7f6e5d4c"},
            "rollback": {"release": "v2.17.9", "image": ROLLBACK_IMAGE},
            "evidence": [
                {"connector": "ci-argocd", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
                 "facts": [{"name": "sync_status", "value": "Synced"}]},
                {"connector": "ci-prometheus", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
                 "facts": [{"name": "error_rate", "value": "0.4%"}]},
                {"connector": "ingest", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
                 "facts": [{"name": "active_sev1_incidents", "value": 0},
                           {"name": "change_approval_linked", "value": false}]}
            ]
        }
    }))
    .expect("gate");
    Api::<ReleaseGate>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &gate)
        .await
        .expect("create gate");
}

pub async fn decided(client: &Client, ns: &str, want: Decision) -> ReleaseGate {
    let api: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    super::controller::eventually(LIMIT, &format!("{ns}/{GATE} to decide {want}"), || {
        let api = api.clone();
        async move {
            let g = api.get(GATE).await.ok()?;
            (g.status.as_ref()?.decision? == want).then_some(g)
        }
    })
    .await
}
