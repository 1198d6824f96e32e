//! The ValidatingWebhookConfiguration the webhook is registered with.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::api::GATE_LABEL;

/// Name of the (single) webhook inside the configuration.
pub const WEBHOOK_NAME: &str = "gate.releasepassport.io";
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
    /// webhook lets them through unchecked).
    pub failure_policy: String,
    pub timeout_seconds: i32,
    /// PEM of the CA that signed the serving certificate.
    pub ca_bundle_pem: Option<String>,
}

/// The configuration: apps/v1 Deployments, StatefulSets, DaemonSets and
/// argoproj.io/v1alpha1 Rollouts on CREATE and UPDATE, only objects carrying
/// the gate label, never the excluded namespaces.
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
    ValidatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(opts.name.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "release-passport".to_string(),
            )])),
            ..Default::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: WEBHOOK_NAME.into(),
            admission_review_versions: vec!["v1".into()],
            client_config,
            failure_policy: Some(opts.failure_policy.clone()),
            match_policy: Some("Equivalent".into()),
            timeout_seconds: Some(opts.timeout_seconds),
            // Events are recorded, but never for dry runs.
            side_effects: "NoneOnDryRun".into(),
            object_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: GATE_LABEL.into(),
                    operator: "Exists".into(),
                    values: None,
                }]),
                match_labels: None,
            }),
            namespace_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "kubernetes.io/metadata.name".into(),
                    operator: "NotIn".into(),
                    values: Some(excluded),
                }]),
                match_labels: None,
            }),
            rules: Some(vec![
                rule("apps", "v1", &["deployments", "statefulsets", "daemonsets"]),
                rule("argoproj.io", "v1alpha1", &["rollouts"]),
            ]),
            match_conditions: None,
        }]),
    }
}
