//! `releasepassport webhook-config`: the ValidatingWebhookConfiguration.

use std::process::Command;

use serde_json::Value;

fn render(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args(["webhook-config", "-o", "json"])
        .args(args)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn the_default_configuration_is_narrow_and_fails_closed() {
    let config = render(&[]);
    assert_eq!(config["apiVersion"], "admissionregistration.k8s.io/v1");
    assert_eq!(config["kind"], "ValidatingWebhookConfiguration");
    assert_eq!(config["metadata"]["name"], "releasepassport-webhook");
    let w = &config["webhooks"][0];
    assert_eq!(w["name"], "gate.releasepassport.io");
    assert_eq!(w["failurePolicy"], "Fail");
    assert_eq!(w["timeoutSeconds"], 5);
    assert_eq!(w["sideEffects"], "NoneOnDryRun");
    assert_eq!(w["admissionReviewVersions"], serde_json::json!(["v1"]));
    assert_eq!(
        w["objectSelector"],
        serde_json::json!({"matchExpressions": [{"key": "releasepassport.io/gate", "operator": "Exists"}]})
    );
    assert_eq!(
        w["namespaceSelector"]["matchExpressions"][0],
        serde_json::json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": ["kube-system", "kube-node-lease", "release-passport-system"]})
    );
    assert_eq!(
        w["rules"],
        serde_json::json!([
            {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
             "resources": ["deployments", "statefulsets", "daemonsets"], "scope": "Namespaced"},
            {"apiGroups": ["argoproj.io"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"],
             "resources": ["rollouts"], "scope": "Namespaced"}
        ])
    );
    assert_eq!(
        w["clientConfig"]["service"],
        serde_json::json!({"name": "releasepassport-webhook", "namespace": "release-passport-system",
            "path": "/validate", "port": 443})
    );
    assert!(w["clientConfig"].get("caBundle").is_none());
}

#[test]
fn url_ca_bundle_failure_policy_timeout_and_exclusions_are_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.crt");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .expect("ca");
    let config = render(&[
        "--url",
        "https://127.0.0.1:8443/validate",
        "--ca-bundle-file",
        ca.to_str().expect("path"),
        "--failure-policy",
        "ignore",
        "--timeout-seconds",
        "3",
        "--namespace",
        "rp",
        "--exclude-namespace",
        "monitoring",
    ]);
    let w = &config["webhooks"][0];
    assert_eq!(w["failurePolicy"], "Ignore");
    assert_eq!(w["timeoutSeconds"], 3);
    assert_eq!(w["clientConfig"]["url"], "https://127.0.0.1:8443/validate");
    assert!(w["clientConfig"].get("service").is_none());
    let bundle = w["clientConfig"]["caBundle"].as_str().expect("caBundle");
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(bundle)
        .expect("base64");
    assert!(String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE"));
    assert_eq!(
        w["namespaceSelector"]["matchExpressions"][0]["values"],
        serde_json::json!(["kube-system", "kube-node-lease", "rp", "monitoring"])
    );
}

#[test]
fn a_timeout_outside_what_the_apiserver_accepts_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args(["webhook-config", "--timeout-seconds", "31"])
        .output()
        .expect("run");
    assert!(!out.status.success());
}

#[test]
fn yaml_is_the_default_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args(["webhook-config"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kind: ValidatingWebhookConfiguration"),
        "{text}"
    );
}
