//! The ValidatingWebhookConfiguration the webhook is registered with: three
//! webhooks on the same endpoint, one per scope, each with its own failure
//! policy:
//! - `gate.releasepassport.io`: gated workloads (the gate label) outside
//!   enforced namespaces (`--failure-policy`, default `Fail`);
//! - `enforced.gate.releasepassport.io`: gated workloads in namespaces the
//!   platform labelled `releasepassport.io/enforce=true`
//!   (`--enforced-failure-policy`, default `Fail`);
//! - `evidence.releasepassport.io`: ReleaseGates, whose pushed evidence must
//!   not be observed in the future (`--evidence-failure-policy`, default
//!   `Ignore`: the operator repeats the check at every evaluation).
//!
//! Unlabelled workloads never reach the webhook; in enforced namespaces the
//! apiserver's own admission policies refuse them (`config/admission/`).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::api::{ENFORCE_LABEL, GATE_LABEL, GROUP, VERSION};

/// Name of the webhook for gated workloads outside enforced namespaces.
pub const WEBHOOK_NAME: &str = "gate.releasepassport.io";
/// Name of the webhook for gated workloads in enforced namespaces.
pub const ENFORCED_WEBHOOK_NAME: &str = "enforced.gate.releasepassport.io";
/// Name of the webhook for ReleaseGates' pushed evidence.
pub const EVIDENCE_WEBHOOK_NAME: &str = "evidence.releasepassport.io";
/// Path the server answers on.
pub const PATH: &str = "/validate";
/// Namespaces never sent to the webhook, besides the operator's own.
pub const ALWAYS_EXCLUDED: [&str; 2] = ["kube-system", "kube-node-lease"];

/// How the apiserver reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Service in the cluster (the usual case).
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
    /// A URL (`https://host:port/validate`), e.g. outside the cluster.
    Url(String),
}

/// What `render` needs.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub name: String,
    /// The operator's namespace (excluded).
    pub operator_namespace: String,
    /// More namespaces to exclude.
    pub exclude_namespaces: Vec<String>,
    pub endpoint: Endpoint,
    /// `Fail` (a down webhook blocks gated changes) or `Ignore` (a down
    /// webhook lets them through unchecked), outside enforced namespaces.
    pub failure_policy: String,
    /// The same, for gated workloads in enforced namespaces.
    pub enforced_failure_policy: String,
    /// The same, for ReleaseGates (their pushed evidence).
    pub evidence_failure_policy: String,
    pub timeout_seconds: i32,
    /// PEM of the CA that signed the serving certificate.
    pub ca_bundle_pem: Option<String>,
}

/// The configuration: apps/v1 Deployments, StatefulSets, DaemonSets and
/// argoproj.io/v1alpha1 Rollouts on CREATE and UPDATE, only objects carrying
/// the gate label, never the excluded namespaces, split by whether the
/// namespace is enforced; and ReleaseGates on CREATE and UPDATE.
pub fn render(opts: &RenderOptions) -> ValidatingWebhookConfiguration {
    let rule = |group: &str, version: &str, resources: &[&str]| RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec![version.into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
        scope: Some("Namespaced".into()),
    };
    let mut excluded: Vec<String> = ALWAYS_EXCLUDED.iter().map(|s| s.to_string()).collect();
    excluded.push(opts.operator_namespace.clone());
    for ns in &opts.exclude_namespaces {
        if !excluded.contains(ns) {
            excluded.push(ns.clone());
        }
    }
    let client_config = WebhookClientConfig {
        ca_bundle: opts
            .ca_bundle_pem
            .as_ref()
            .map(|pem| ByteString(pem.as_bytes().to_vec())),
        service: match &opts.endpoint {
            Endpoint::Service {
                namespace,
                name,
                port,
            } => Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(PATH.into()),
                port: Some(*port),
            }),
            Endpoint::Url(_) => None,
        },
        url: match &opts.endpoint {
            Endpoint::Url(url) => Some(url.clone()),
            Endpoint::Service { .. } => None,
        },
    };
    let requirement =
        |key: &str, operator: &str, values: Option<Vec<String>>| LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values,
        };
    let not_excluded = requirement(
        "kubernetes.io/metadata.name",
        "NotIn",
        Some(excluded.clone()),
    );
    let namespaces = |enforced: bool| LabelSelector {
        match_expressions: Some(vec![
            not_excluded.clone(),
            requirement(
                ENFORCE_LABEL,
                if enforced { "In" } else { "NotIn" },
                Some(vec!["true".into()]),
            ),
        ]),
        match_labels: None,
    };
    let workloads = vec![
        rule("apps", "v1", &["deployments", "statefulsets", "daemonsets"]),
        rule("argoproj.io", "v1alpha1", &["rollouts"]),
    ];
    let webhook = |name: &str, failure_policy: &str| ValidatingWebhook {
        name: name.into(),
        admission_review_versions: vec!["v1".into()],
        client_config: client_config.clone(),
        failure_policy: Some(failure_policy.into()),
        match_policy: Some("Equivalent".into()),
        timeout_seconds: Some(opts.timeout_seconds),
        // Events are recorded, but never for dry runs.
        side_effects: "NoneOnDryRun".into(),
        object_selector: None,
        namespace_selector: None,
        rules: None,
        match_conditions: None,
    };
    let gated = LabelSelector {
        match_expressions: Some(vec![requirement(GATE_LABEL, "Exists", None)]),
        match_labels: None,
    };
    ValidatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(opts.name.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "release-passport".to_string(),
            )])),
            ..Default::default()
        },
        webhooks: Some(vec![
            ValidatingWebhook {
                object_selector: Some(gated.clone()),
                namespace_selector: Some(namespaces(false)),
                rules: Some(workloads.clone()),
                ..webhook(WEBHOOK_NAME, &opts.failure_policy)
            },
            ValidatingWebhook {
                object_selector: Some(gated),
                namespace_selector: Some(namespaces(true)),
                rules: Some(workloads),
                ..webhook(ENFORCED_WEBHOOK_NAME, &opts.enforced_failure_policy)
            },
            ValidatingWebhook {
                namespace_selector: Some(LabelSelector {
                    match_expressions: Some(vec![not_excluded]),
                    match_labels: None,
                }),
                rules: Some(vec![rule(GROUP, VERSION, &["releasegates"])]),
                ..webhook(EVIDENCE_WEBHOOK_NAME, &opts.evidence_failure_policy)
            },
        ]),
    }
}
