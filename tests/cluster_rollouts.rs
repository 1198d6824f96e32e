//! Argo Rollouts, Flagger and Flux on the real local control plane, with
//! their upstream CRDs as their Go modules publish them
//! (`e2e/crds/upstream.sh`), objects whose status is written the way their
//! controllers write it, read through the namespace's reader
//! ServiceAccount by impersonation. Then detection: `releasepassport
//! connectors --detect` lists them as candidates with the ConnectorScope and
//! Role that make each a live source, and those objects, applied as
//! printed, are enough for the connector to read it.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use releasepassport::api::{
    ConnectorHealth, ConnectorScopeSpec, EvidenceDocument, ReleaseGateSpec,
};
use releasepassport::connectors::{ConnectorError, Connectors, ScopeRequest};
use serde_json::{Value, json};

const SHA: &str = "c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5e6";
const DIGEST: &str = "sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const READER: &str = "release-passport-reader";

/// Applies the upstream CRDs once per test process and waits until served.
fn upstream_crds() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        support::cluster();
        for set in [
            "argo-rollouts",
            "flagger",
            "flux",
            "flux-helm",
            "prometheus-operator",
        ] {
            let out = Command::new("bash")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/crds/upstream.sh"))
                .args(["path", set])
                .output()
                .expect("running e2e/crds/upstream.sh");
            assert!(
                out.status.success(),
                "fetching the {set} CRDs: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            for file in String::from_utf8_lossy(&out.stdout).lines() {
                support::kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", file]);
            }
        }
        for crd in [
            "rollouts.argoproj.io",
            "analysisruns.argoproj.io",
            "canaries.flagger.app",
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "helmreleases.helm.toolkit.fluxcd.io",
            "servicemonitors.monitoring.coreos.com",
        ] {
            support::kubectl_ok(&[
                "wait",
                "--for=condition=Established",
                &format!("crd/{crd}"),
                "--timeout=120s",
            ]);
        }
    });
}

fn api(
    client: &kube::Client,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// Creates an object with its status, as its controller writes it: through
/// the status subresource where the CRD has one (Rollout, Canary,
/// Kustomization), else with the object (AnalysisRun). Returns its uid.
async fn create_with_status(api: &Api<DynamicObject>, mut object: Value, status: Value) -> String {
    let name = object["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    object["status"] = status.clone();
    let object: DynamicObject = serde_json::from_value(object).expect("object");
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .expect("creating the object");
    match api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        Ok(_) => {}
        // No status subresource: the status was stored with the object.
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let stored = api.get(&name).await.expect("reading the object back");
            assert!(
                stored.data.get("status").is_some_and(|s| !s.is_null()),
                "{name} lost its status"
            );
        }
        Err(e) => panic!("writing the status of {name}: {e}"),
    }
    created.metadata.uid.expect("uid")
}

/// A namespace with the reader ServiceAccount (no Role yet).
async fn namespace(client: &kube::Client, prefix: &str) -> String {
    let ns = support::namespace(client, prefix).await;
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": READER}})).expect("sa");
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .expect("creating the reader ServiceAccount");
    ns
}

async fn rollout_objects(client: &kube::Client, ns: &str) {
    let rollouts = api(client, ns, "argoproj.io", "v1alpha1", "Rollout", "rollouts");
    let uid = create_with_status(
        &rollouts,
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "payment-api", "namespace": ns},
            "spec": {
                "replicas": 5,
                "selector": {"matchLabels": {"app": "payment-api"}},
                "template": {"metadata": {"labels": {"app": "payment-api"}},
                             "spec": {"containers": [{"name": "api", "image": format!("registry.example.com/payment-api@{DIGEST}"), "ports": [{"containerPort": 8080}]}]}},
                "strategy": {"canary": {
                    "canaryService": "payment-api-canary", "stableService": "payment-api-stable",
                    "analysis": {"templates": [{"templateName": "success-rate"}], "startingStep": 1},
                    "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "10m"}}, {"setWeight": 80}]
                }}
            }
        }),
        json!({
            "phase": "Paused", "message": "CanaryPauseStep",
            "observedGeneration": "1", "currentStepIndex": 1, "currentStepHash": "5b9c6d8f7",
            "currentPodHash": "6d4f8b7c9d", "stableRS": "7f8c9d6b5a",
            "replicas": 5, "updatedReplicas": 1, "readyReplicas": 5, "availableReplicas": 5,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-05-03T09:20:00Z"}],
            "controllerPause": true,
            "canary": {
                "weights": {"canary": {"weight": 20, "podTemplateHash": "6d4f8b7c9d", "serviceName": "payment-api-canary"},
                            "stable": {"weight": 80, "podTemplateHash": "7f8c9d6b5a", "serviceName": "payment-api-stable"}},
                "currentBackgroundAnalysisRunStatus": {"name": "payment-api-6d4f8b7c9d-2", "status": "Failed", "message": "Metric \"success-rate\" assessed Failed due to failed (1) > failureLimit (0)"}
            },
            "conditions": [
                {"type": "Paused", "status": "True", "reason": "RolloutPaused", "message": "Rollout is paused", "lastTransitionTime": "2026-05-03T09:20:00Z", "lastUpdateTime": "2026-05-03T09:20:00Z"},
                {"type": "Progressing", "status": "True", "reason": "RolloutPaused", "message": "Rollout is paused", "lastTransitionTime": "2026-05-03T09:20:00Z", "lastUpdateTime": "2026-05-03T09:20:00Z"}
            ],
            "selector": "app=payment-api"
        }),
    )
    .await;
    let runs = api(
        client,
        ns,
        "argoproj.io",
        "v1alpha1",
        "AnalysisRun",
        "analysisruns",
    );
    for (name, phase) in [
        ("payment-api-6d4f8b7c9d-1", "Successful"),
        ("payment-api-6d4f8b7c9d-2", "Failed"),
    ] {
        create_with_status(
            &runs,
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                "metadata": {"name": name, "namespace": ns,
                    "labels": {"rollout-type": "Background", "rollouts-pod-template-hash": "6d4f8b7c9d"},
                    "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "payment-api", "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"metrics": [{"name": "success-rate", "interval": "1m", "successCondition": "result[0] >= 0.95", "failureLimit": 0,
                    "provider": {"prometheus": {"address": "http://prometheus.monitoring:9090", "query": "sum(rate(http_requests_total{app=\"payment-api\",code!~\"5..\"}[1m])) / sum(rate(http_requests_total{app=\"payment-api\"}[1m]))"}}}]}
            }),
            json!({"phase": phase, "startedAt": "2026-05-03T09:15:00Z",
                   "metricResults": [{"name": "success-rate", "phase": phase, "count": 1,
                       "successful": if phase == "Successful" { 1 } else { 0 }, "failed": if phase == "Failed" { 1 } else { 0 },
                       "measurements": [{"phase": phase, "value": if phase == "Failed" { "[0.91]" } else { "[0.99]" }, "startedAt": "2026-05-03T09:15:00Z", "finishedAt": "2026-05-03T09:15:01Z"}]}]}),
        )
        .await;
    }
}

async fn canary_object(client: &kube::Client, ns: &str) {
    let canaries = api(client, ns, "flagger.app", "v1beta1", "Canary", "canaries");
    create_with_status(
        &canaries,
        json!({
            "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "payment-api", "namespace": ns},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "payment-api"},
                "service": {"port": 8080},
                "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                             "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]}
            }
        }),
        json!({
            "phase": "Progressing", "canaryWeight": 20, "failedChecks": 2, "iterations": 0,
            "lastAppliedSpec": "5d8f9c7b6", "lastPromotedSpec": "7c6b5a4d3", "lastTransitionTime": "2026-05-03T09:25:00Z",
            "conditions": [{"type": "Promoted", "status": "Unknown", "reason": "Progressing",
                            "message": "New revision detected, progressing canary analysis.",
                            "lastUpdateTime": "2026-05-03T09:25:00Z", "lastTransitionTime": "2026-05-03T09:20:00Z"}]
        }),
    )
    .await;
}

async fn kustomization_object(client: &kube::Client, ns: &str, source_ns: &str) {
    let kustomizations = api(
        client,
        source_ns,
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
    );
    create_with_status(
        &kustomizations,
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "payment-api", "namespace": source_ns},
            "spec": {"interval": "10m", "path": "./deploy/production", "prune": true, "targetNamespace": ns,
                     "sourceRef": {"kind": "GitRepository", "name": "payment-api"}}
        }),
        json!({
            "observedGeneration": 1,
            "lastAppliedRevision": format!("main@sha1:{SHA}"),
            "lastAttemptedRevision": format!("main@sha1:{SHA}"),
            "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                            "message": format!("Applied revision: main@sha1:{SHA}"),
                            "lastTransitionTime": "2026-05-03T09:00:30Z", "observedGeneration": 1}]
        }),
    )
    .await;
}

/// A HelmRelease in `source_ns` installing the release's chart into `ns`,
/// with the status helm-controller writes after a successful upgrade.
async fn helm_release_object(client: &kube::Client, ns: &str, source_ns: &str) {
    let releases = api(
        client,
        source_ns,
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
    );
    create_with_status(
        &releases,
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "payment-api-chart", "namespace": source_ns},
            "spec": {"interval": "10m", "releaseName": "payment-api", "targetNamespace": ns,
                     "chart": {"spec": {"chart": "payment-api", "version": "2.18.4",
                                        "sourceRef": {"kind": "HelmRepository", "name": "payments"}}}}
        }),
        json!({
            "observedGeneration": 1,
            "lastAttemptedGeneration": 1,
            "lastAttemptedRevision": "2.18.4",
            "lastAttemptedConfigDigest": "sha256:7c1f0e5a4b3d2c1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e",
            "lastAttemptedReleaseAction": "upgrade",
            "storageNamespace": ns,
            "history": [{
                "name": "payment-api", "namespace": ns, "version": 3, "status": "deployed",
                "chartName": "payment-api", "chartVersion": "2.18.4", "appVersion": "v2.18.4",
                "configDigest": "sha256:7c1f0e5a4b3d2c1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e",
                "digest": "sha256:1b2c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5e6f708192a3b4c5d6e7f8091",
                "firstDeployed": "2026-04-02T08:00:00Z", "lastDeployed": "2026-05-03T09:00:40Z"
            }],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "UpgradeSucceeded",
                 "message": format!("Helm upgrade succeeded for release {ns}/payment-api.v3 with chart payment-api@2.18.4"),
                 "lastTransitionTime": "2026-05-03T09:00:40Z", "observedGeneration": 1},
                {"type": "Released", "status": "True", "reason": "UpgradeSucceeded",
                 "message": format!("Helm upgrade succeeded for release {ns}/payment-api.v3 with chart payment-api@2.18.4"),
                 "lastTransitionTime": "2026-05-03T09:00:40Z", "observedGeneration": 1}
            ]
        }),
    )
    .await;
}

fn gate() -> ReleaseGateSpec {
    serde_json::from_value(json!({
        "service": "payment-api", "release": "v2.18.4", "environment": "production",
        "policyRef": {"name": "payment-api-production"},
        "artifact": {"image": format!("registry.example.com/payment-api@{DIGEST}"), "sourceSha": SHA}
    }))
    .expect("gate")
}

async fn collect(
    client: &kube::Client,
    ns: &str,
    spec: Value,
) -> Result<EvidenceDocument, ConnectorError> {
    let connectors = Connectors::new(
        client.clone(),
        support::config().await,
        Duration::from_secs(10),
    )
    .expect("connectors");
    let spec: ConnectorScopeSpec = serde_json::from_value(spec).expect("ConnectorScope spec");
    let gate = gate();
    let req = ScopeRequest {
        namespace: ns,
        name: "payment-api-rollout",
        spec: &spec,
        service: "payment-api",
        environment: "production",
        gate: Some(&gate),
        gate_name: "payment-api-production",
        release: "v2.18.4",
        previous_release: None,
        now: jiff::Timestamp::now(),
    };
    connectors.collect(&req).await.map(|d| d.expect("evidence"))
}

fn facts(doc: &EvidenceDocument) -> BTreeMap<String, Value> {
    doc.facts
        .iter()
        .filter_map(|f| f.value.clone().map(|v| (f.name.clone(), v)))
        .collect()
}

/// `releasepassport connectors --detect` as the admin kubeconfig.
fn detect(args: &[&str]) -> Value {
    let env = support::cluster();
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args(["connectors", "--detect", "--output", "json"])
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .expect("running releasepassport connectors");
    assert!(
        out.status.success(),
        "connectors --detect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn candidate<'v>(detection: &'v Value, connector: &str, name: &str) -> &'v Value {
    detection["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .find(|c| c["connector"] == connector && c["name"] == name)
        .unwrap_or_else(|| panic!("no {connector} candidate {name} in {detection:#}"))
}

/// Applies a candidate's Role and RoleBinding exactly as printed.
fn apply_rbac(candidate: &Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rbac.json");
    std::fs::write(
        &file,
        json!({"apiVersion": "v1", "kind": "List", "items": candidate["rbac"]}).to_string(),
    )
    .expect("write");
    support::kubectl_ok(&["apply", "-f", file.to_str().expect("path")]);
}

#[tokio::test]
async fn rollouts_canaries_kustomizations_and_helm_releases_are_detected_and_read_through_the_printed_scope_and_role()
 {
    upstream_crds();
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = namespace(&client, "rollouts").await;
    let flux_ns = support::namespace(&client, "flux-system").await;
    rollout_objects(&client, &ns).await;
    canary_object(&client, &ns).await;
    kustomization_object(&client, &ns, &flux_ns).await;
    helm_release_object(&client, &ns, &flux_ns).await;

    // Before any Role, the reader ServiceAccount may read none of them.
    let rollout_spec = json!({"connector": "argo-rollouts", "serviceAccountName": READER, "argoRollouts": {"rollout": "payment-api"}});
    let err = collect(&client, &ns, rollout_spec.clone())
        .await
        .expect_err("no Role yet");
    assert_eq!(err.health(), ConnectorHealth::Forbidden, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("system:serviceaccount:{ns}:{READER}")),
        "{err}"
    );

    // Detection lists them, with the scope it would create.
    let detection = detect(&["-n", &ns]);
    let rollout = candidate(&detection, "argo-rollouts", "payment-api");
    assert_eq!(rollout["connectorScope"]["spec"], rollout_spec);
    assert_eq!(
        rollout["connectorScope"]["metadata"]["namespace"],
        json!(ns)
    );
    let canary = candidate(&detection, "flagger", "payment-api");
    assert_eq!(
        canary["connectorScope"]["spec"],
        json!({"connector": "flagger", "serviceAccountName": READER, "flagger": {"canary": "payment-api"}})
    );
    let detection_flux = detect(&["-n", &flux_ns]);
    let kustomization = candidate(&detection_flux, "flux", "payment-api");
    assert_eq!(
        kustomization["scopeNamespace"],
        json!(ns),
        "a Kustomization serves its targetNamespace"
    );
    assert_eq!(
        kustomization["connectorScope"]["spec"],
        json!({"connector": "flux", "serviceAccountName": READER, "flux": {"kustomization": "payment-api", "namespace": flux_ns}})
    );
    let helm_release = candidate(&detection_flux, "flux", "payment-api-chart");
    assert_eq!(helm_release["kind"], json!("HelmRelease"));
    assert_eq!(
        helm_release["scopeNamespace"],
        json!(ns),
        "a HelmRelease serves its targetNamespace"
    );
    assert_eq!(
        helm_release["connectorScope"]["spec"],
        json!({"connector": "flux", "serviceAccountName": READER, "flux": {"helmRelease": "payment-api-chart", "namespace": flux_ns}})
    );
    // In the matrix, what runs here unread is a detected candidate.
    let row = |d: &Value, name: &str| {
        d["matrix"]
            .as_array()
            .expect("matrix")
            .iter()
            .find(|r| r["connector"] == name)
            .cloned()
            .expect("row")
    };
    assert_eq!(
        row(&detection, "Argo Rollouts")["status"],
        json!("Detected candidate")
    );
    assert_eq!(
        row(&detection, "Flagger")["status"],
        json!("Detected candidate")
    );
    assert_eq!(
        row(&detection_flux, "Flux")["status"],
        json!("Detected candidate")
    );
    assert_eq!(
        row(&detection, "Flux")["status"],
        json!("Native pull"),
        "no Kustomization in {ns}"
    );
    let all = detect(&["--all-namespaces"]);
    candidate(&all, "flux", "payment-api");
    candidate(&all, "argo-rollouts", "payment-api");

    // The printed Role and scope are exactly enough.
    for c in [rollout, canary, kustomization, helm_release] {
        apply_rbac(c);
    }
    // Once a ConnectorScope reads the Rollout, it is no longer a candidate.
    let scope_file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(scope_file.path(), rollout["connectorScope"].to_string()).expect("write");
    support::kubectl_ok(&["apply", "-f", scope_file.path().to_str().expect("path")]);
    let after = detect(&["-n", &ns]);
    let configured = candidate(&after, "argo-rollouts", "payment-api");
    assert_eq!(
        configured["configuredBy"],
        rollout["connectorScope"]["metadata"]["name"]
    );
    assert_eq!(row(&after, "Argo Rollouts")["status"], json!("Native pull"));
    assert_eq!(
        row(&after, "Flagger")["status"],
        json!("Detected candidate")
    );

    let doc = collect(&client, &ns, rollout_spec)
        .await
        .expect("argo-rollouts");
    let f = facts(&doc);
    assert_eq!(f["phase"], json!("Paused"));
    assert_eq!(f["paused"], json!(true));
    assert_eq!(f["aborted"], json!(false));
    assert_eq!(f["current_step"], json!(1));
    assert_eq!(f["total_steps"], json!(5));
    assert_eq!(f["canary_weight"], json!(20));
    assert_eq!(f["stable"], json!(false));
    assert_eq!(f["analysis_runs"], json!(2));
    assert_eq!(f["analysis_runs_failed"], json!(1));
    assert_eq!(f["image_matches"], json!(true));
    assert_eq!(f["observed"], json!(true));

    let doc = collect(&client, &ns, canary["connectorScope"]["spec"].clone())
        .await
        .expect("flagger");
    let f = facts(&doc);
    assert_eq!(f["phase"], json!("Progressing"));
    assert_eq!(f["failed_checks"], json!(2));
    assert_eq!(f["canary_weight"], json!(20));
    assert_eq!(f["promoted"], json!(false));
    assert_eq!(f["promoted_reason"], json!("Progressing"));

    let doc = collect(
        &client,
        &ns,
        kustomization["connectorScope"]["spec"].clone(),
    )
    .await
    .expect("flux");
    let f = facts(&doc);
    assert_eq!(f["ready"], json!(true));
    assert_eq!(f["ready_reason"], json!("ReconciliationSucceeded"));
    assert_eq!(f["reconciled"], json!(true));
    assert_eq!(
        f["last_applied_revision"],
        json!(format!("main@sha1:{SHA}"))
    );
    assert_eq!(f["revision_matches"], json!(true));
    assert_eq!(doc.scope["objectNamespace"], flux_ns);

    let doc = collect(&client, &ns, helm_release["connectorScope"]["spec"].clone())
        .await
        .expect("flux HelmRelease");
    let f = facts(&doc);
    assert_eq!(f["ready"], json!(true));
    assert_eq!(f["ready_reason"], json!("UpgradeSucceeded"));
    assert_eq!(f["reconciled"], json!(true));
    assert_eq!(f["chart_version"], json!("2.18.4"));
    assert_eq!(f["app_version"], json!("v2.18.4"));
    assert_eq!(f["release_status"], json!("deployed"));
    assert_eq!(
        f["release_matches"],
        json!(true),
        "v2.18.4 is the gate's release"
    );
    assert_eq!(doc.scope["object"], json!("HelmRelease/payment-api-chart"));

    // The console's Integrations page: detection as the namespace's reader
    // ServiceAccount, once the team lets it list Rollouts and Canaries.
    support::kubectl_ok(&[
        "create",
        "role",
        "detect",
        "-n",
        &ns,
        "--verb=list",
        "--resource=rollouts.argoproj.io,canaries.flagger.app",
    ]);
    support::kubectl_ok(&[
        "create",
        "rolebinding",
        "detect",
        "-n",
        &ns,
        "--role=detect",
        &format!("--serviceaccount={ns}:{READER}"),
    ]);
    let scope: releasepassport::api::ConnectorScope =
        serde_json::from_value(rollout["connectorScope"].clone()).expect("ConnectorScope");
    let state = releasepassport::console::state::ConsoleState::from_objects(
        vec![],
        vec![],
        vec![],
        vec![scope],
        vec![],
        Default::default(),
    );
    let connectors = Connectors::new(
        client.clone(),
        support::config().await,
        Duration::from_secs(10),
    )
    .expect("connectors");
    releasepassport::console::detection::refresh(&state, &connectors).await;
    let html = releasepassport::console::views::integrations::render(
        &state,
        &std::collections::BTreeSet::from([ns.clone()]),
    )
    .into_string();
    let matrix = &html[html.find("id=\"matrix\"").expect("matrix")..];
    let flagger_row = &matrix[matrix
        .find("<strong>Flagger</strong>")
        .expect("Flagger row")..];
    assert!(
        flagger_row[..flagger_row.find("</tr>").expect("row end")].contains("Detected candidate"),
        "{flagger_row}"
    );
    let rollouts_row = &matrix[matrix
        .find("<strong>Argo Rollouts</strong>")
        .expect("Argo Rollouts row")..];
    assert!(
        rollouts_row[..rollouts_row.find("</tr>").expect("row end")].contains("Native pull"),
        "configured: {rollouts_row}"
    );
    let candidates = &html[html.find("id=\"candidates\"").expect("candidates table")..];
    assert!(
        candidates.contains(&format!("Canary {ns}/payment-api")),
        "{candidates}"
    );
    assert!(
        candidates.contains("canary: payment-api"),
        "the scope to apply: {candidates}"
    );
    assert!(candidates.contains(" (configured)"), "{candidates}");
    // Other namespaces' candidates are not shown.
    let other = releasepassport::console::views::integrations::render(
        &state,
        &std::collections::BTreeSet::from(["elsewhere".to_string()]),
    )
    .into_string();
    assert!(
        !other.contains("id=\"candidates\""),
        "a namespace the viewer cannot read leaked"
    );
}

#[tokio::test]
async fn detection_never_reads_more_than_the_identity_may() {
    upstream_crds();
    let client = support::client().await;
    let ns = namespace(&client, "detect-rbac").await;
    rollout_objects(&client, &ns).await;
    // As the reader ServiceAccount, which may list nothing yet.
    let mut config = support::config().await;
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:{READER}"));
    let reader = kube::Client::try_from(config).expect("client");
    let detection = releasepassport::connectors::detect::detect(
        &reader,
        &releasepassport::connectors::detect::Namespaces::Only(vec![ns.clone()]),
        READER,
    )
    .await
    .expect("discovery is open to every identity");
    assert!(detection.candidates.is_empty(), "{detection:?}");
    let rollouts = detection
        .installed
        .iter()
        .find(|i| i.kind == "Rollout")
        .expect("the Rollout CRD is installed");
    assert!(
        rollouts
            .not_listed
            .as_deref()
            .is_some_and(|m| m.contains("cannot list resource \"rollouts\"")),
        "{rollouts:?}"
    );
}

#[tokio::test]
async fn a_missing_rollout_or_crd_version_is_invalid_not_unreachable() {
    upstream_crds();
    let client = support::client().await;
    let ns = namespace(&client, "rollouts-missing").await;
    // Get on any Rollout of the namespace.
    support::kubectl_ok(&[
        "create",
        "role",
        "read-rollouts",
        "-n",
        &ns,
        "--verb=get",
        "--resource=rollouts.argoproj.io",
    ]);
    support::kubectl_ok(&[
        "create",
        "rolebinding",
        "read-rollouts",
        "-n",
        &ns,
        "--role=read-rollouts",
        &format!("--serviceaccount={ns}:{READER}"),
    ]);
    let err = collect(&client, &ns, json!({"connector": "argo-rollouts", "serviceAccountName": READER, "argoRollouts": {"rollout": "nope"}}))
        .await
        .expect_err("missing");
    assert_eq!(err.health(), ConnectorHealth::Invalid, "{err}");
    assert!(err.to_string().contains("Rollout nope not found"), "{err}");
    let err = collect(
        &client,
        &ns,
        json!({"connector": "argo-rollouts", "argoRollouts": {"rollout": "payment-api"}}),
    )
    .await
    .expect_err("no ServiceAccount");
    assert_eq!(err.health(), ConnectorHealth::CredentialRequired, "{err}");
}
