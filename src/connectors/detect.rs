//! Detected candidates: what a cluster already runs that a connector could
//! read (Argo CD Applications, Argo Rollouts Rollouts, Flagger Canaries,
//! Flux Kustomizations and HelmReleases, Prometheus Operator
//! ServiceMonitors), each with the exact ConnectorScope and reader Role
//! that would turn it into a live source.
//!
//! Detection reads only what its caller's identity may read: API discovery
//! (which every authenticated identity may) says which types are served,
//! then each type is listed in the namespaces asked for. A type the
//! identity may not list is reported as such, never worked around.

use kube::api::{ApiResource, DynamicObject, ListParams};
use serde::Serialize;
use serde_json::{Value, json};

use super::resources::{self, Kind};

/// The reader ServiceAccount of `config/rbac/namespace-reader.yaml`.
pub const DEFAULT_READER: &str = "release-passport-reader";

/// A resource type detection looks for, and the connector that reads it.
#[derive(Clone, Copy, Debug)]
pub struct Detectable {
    /// Connector name, e.g. `argo-rollouts`.
    pub connector: &'static str,
    pub kind: Kind,
}

/// Every type detection looks for.
pub const DETECTABLE: [Detectable; 6] = [
    Detectable {
        connector: "argocd",
        kind: Kind {
            group: "argoproj.io",
            version: "v1alpha1",
            kind: "Application",
            plural: "applications",
        },
    },
    Detectable {
        connector: "argo-rollouts",
        kind: resources::ROLLOUT,
    },
    Detectable {
        connector: "flagger",
        kind: resources::CANARY,
    },
    Detectable {
        connector: "flux",
        kind: resources::KUSTOMIZATION,
    },
    Detectable {
        connector: "flux",
        kind: resources::HELM_RELEASE,
    },
    Detectable {
        connector: "prometheus",
        kind: Kind {
            group: "monitoring.coreos.com",
            version: "v1",
            kind: "ServiceMonitor",
            plural: "servicemonitors",
        },
    },
];

/// One object a connector could read.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// Connector that would read it.
    pub connector: String,
    /// `Rollout`, `Canary`, ...
    pub kind: String,
    /// `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// Where the object is.
    pub namespace: String,
    pub name: String,
    /// The namespace whose gates it serves (the ConnectorScope's).
    pub scope_namespace: String,
    /// The ConnectorScope that turns it into a live source.
    pub connector_scope: Value,
    /// The Role and RoleBinding the reader ServiceAccount needs (empty when none).
    pub rbac: Vec<Value>,
    /// What to fill in or check before applying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The ConnectorScope that already reads this object, if any: then it
    /// is a live source, not a candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured_by: Option<String>,
}

/// A type the cluster serves, and whether the caller could list it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Installed {
    pub connector: String,
    pub kind: String,
    pub api_version: String,
    /// `None` when listed; else why not (the apiserver's refusal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_listed: Option<String>,
}

/// What detection found.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    pub installed: Vec<Installed>,
    pub candidates: Vec<Candidate>,
}

impl Detection {
    /// The matrix rows of the candidates no ConnectorScope reads yet.
    pub fn detected(&self) -> super::matrix::Detected {
        super::matrix::Detected(
            self.candidates
                .iter()
                .filter(|c| c.configured_by.is_none())
                .filter_map(|c| {
                    let kind: crate::api::ConnectorKind =
                        serde_json::from_value(json!(c.connector)).ok()?;
                    super::matrix::ROWS
                        .iter()
                        .find(|r| r.kinds().contains(&kind))
                        .map(|r| r.connector.to_string())
                })
                .collect(),
        )
    }
}

/// Where to look.
#[derive(Clone, Debug)]
pub enum Namespaces {
    /// Every namespace the identity may list in.
    All,
    /// These namespaces only.
    Only(Vec<String>),
}

/// Detects candidates as `client`'s identity.
pub async fn detect(
    client: &kube::Client,
    namespaces: &Namespaces,
    reader: &str,
) -> Result<Detection, kube::Error> {
    let served = served_kinds(client).await?;
    let mut detection = Detection::default();
    for d in DETECTABLE.iter().filter(|d| served.contains(&d.kind)) {
        let mut refusal = None;
        let lists: Vec<(Option<&str>, ApiResource)> = match namespaces {
            Namespaces::All => vec![(None, d.kind.resource())],
            Namespaces::Only(list) => list
                .iter()
                .map(|ns| (Some(ns.as_str()), d.kind.resource()))
                .collect(),
        };
        for (ns, ar) in lists {
            let api: kube::Api<DynamicObject> = match ns {
                Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &ar),
                None => kube::Api::all_with(client.clone(), &ar),
            };
            match api.list(&ListParams::default()).await {
                Ok(list) => {
                    for object in list.items {
                        let value = serde_json::to_value(&object).unwrap_or(Value::Null);
                        detection.candidates.push(candidate(d, &value, reader));
                    }
                }
                Err(kube::Error::Api(status)) if matches!(status.code, 401 | 403) => {
                    refusal = Some(status.message);
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(other) => return Err(other),
            }
        }
        detection.installed.push(Installed {
            connector: d.connector.into(),
            kind: d.kind.kind.into(),
            api_version: format!("{}/{}", d.kind.group, d.kind.version),
            not_listed: refusal,
        });
    }
    mark_configured(client, &mut detection.candidates).await;
    detection.candidates.sort_by(|a, b| {
        (&a.scope_namespace, &a.connector, &a.name).cmp(&(
            &b.scope_namespace,
            &b.connector,
            &b.name,
        ))
    });
    Ok(detection)
}

/// Notes, for each candidate, the ConnectorScope of its namespace that
/// already reads it. ConnectorScopes the identity may not list leave the
/// candidate a candidate.
async fn mark_configured(client: &kube::Client, candidates: &mut [Candidate]) {
    let mut namespaces: Vec<String> = candidates
        .iter()
        .map(|c| c.scope_namespace.clone())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut scopes = Vec::new();
    for ns in namespaces {
        let api: kube::Api<crate::api::ConnectorScope> = kube::Api::namespaced(client.clone(), &ns);
        if let Ok(list) = api.list(&ListParams::default()).await {
            scopes.extend(list.items);
        }
    }
    mark_configured_by(candidates, &scopes);
}

/// Notes, for each candidate, which of `scopes` already reads it (pure).
pub fn mark_configured_by(candidates: &mut [Candidate], scopes: &[crate::api::ConnectorScope]) {
    use kube::ResourceExt as _;
    for scope in scopes {
        let Some(ns) = scope.namespace() else {
            continue;
        };
        let spec = serde_json::to_value(&scope.spec).unwrap_or(Value::Null);
        let read = reads(&spec, &ns);
        for c in candidates
            .iter_mut()
            .filter(|c| c.scope_namespace == ns && c.configured_by.is_none())
        {
            if read.is_some() && read == reads(&c.connector_scope["spec"], &ns) {
                c.configured_by = Some(scope.name_any());
            }
        }
    }
}

/// What object a ConnectorScope spec reads (`connector/namespace/name`);
/// every prometheus scope of a namespace counts as reading its ServiceMonitors.
fn reads(spec: &Value, scope_ns: &str) -> Option<String> {
    let text = |p: &str| spec.pointer(p).and_then(Value::as_str);
    let connector = text("/connector")?;
    let (ns, name) = match connector {
        "argocd" => (
            text("/argocd/namespace").unwrap_or("argocd"),
            text("/argocd/application")?,
        ),
        "argo-rollouts" => (scope_ns, text("/argoRollouts/rollout")?),
        "flagger" => (scope_ns, text("/flagger/canary")?),
        // A Kustomization and a HelmRelease often share a name.
        "flux" => {
            let ns = text("/flux/namespace").unwrap_or(scope_ns);
            let (field, name) = match text("/flux/kustomization") {
                Some(k) => ("kustomization", k),
                None => ("helmRelease", text("/flux/helmRelease")?),
            };
            return Some(format!("flux/{ns}/{field}/{name}"));
        }
        "prometheus" => (scope_ns, "*"),
        _ => return None,
    };
    Some(format!("{connector}/{ns}/{name}"))
}

/// The detectable kinds the apiserver serves (API discovery only).
async fn served_kinds(client: &kube::Client) -> Result<Vec<Kind>, kube::Error> {
    let groups: Vec<&str> = DETECTABLE.iter().map(|d| d.kind.group).collect();
    let discovery = kube::discovery::Discovery::new(client.clone())
        .filter(&groups)
        .run()
        .await?;
    let mut served = Vec::new();
    for group in discovery.groups() {
        for (ar, _) in group.recommended_resources().into_iter().chain(
            group
                .versions()
                .flat_map(|v| group.versioned_resources(v))
                .collect::<Vec<_>>(),
        ) {
            if let Some(d) = DETECTABLE.iter().find(|d| {
                d.kind.group == ar.group
                    && d.kind.version == ar.version
                    && d.kind.plural == ar.plural
            }) && !served.contains(&d.kind)
            {
                served.push(d.kind);
            }
        }
    }
    Ok(served)
}

/// The candidate for one detected object (pure).
pub fn candidate(d: &Detectable, object: &Value, reader: &str) -> Candidate {
    let name = resources::text(object, "/metadata/name")
        .unwrap_or_default()
        .to_string();
    let namespace = resources::text(object, "/metadata/namespace")
        .unwrap_or_default()
        .to_string();
    // Objects that deploy into another namespace serve that namespace's gates.
    let target = match d.kind.kind {
        "Application" => resources::text(object, "/spec/destination/namespace"),
        "Kustomization" | "HelmRelease" => resources::text(object, "/spec/targetNamespace"),
        _ => None,
    }
    .filter(|t| !t.is_empty())
    .unwrap_or(&namespace)
    .to_string();
    // A Kustomization and a HelmRelease of one name get scopes (and Roles) of their own.
    let scope_name = match d.kind.kind {
        "HelmRelease" => format!("{name}-flux-helm"),
        _ => format!("{name}-{}", d.connector),
    };
    let metadata = json!({"name": scope_name, "namespace": target});
    let mut note = None;
    let (spec, rules): (Value, Vec<Value>) = match d.connector {
        "argocd" => (
            json!({"connector": "argocd", "serviceAccountName": reader,
                   "argocd": {"application": name, "namespace": namespace}}),
            vec![
                json!({"apiGroups": ["argoproj.io"], "resources": ["applications"], "resourceNames": [name], "verbs": ["get"]}),
            ],
        ),
        "argo-rollouts" => (
            json!({"connector": "argo-rollouts", "serviceAccountName": reader,
                   "argoRollouts": {"rollout": name}}),
            vec![
                json!({"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "resourceNames": [name], "verbs": ["get"]}),
                json!({"apiGroups": ["argoproj.io"], "resources": ["analysisruns"], "verbs": ["list"]}),
            ],
        ),
        "flagger" => (
            json!({"connector": "flagger", "serviceAccountName": reader, "flagger": {"canary": name}}),
            vec![
                json!({"apiGroups": ["flagger.app"], "resources": ["canaries"], "resourceNames": [name], "verbs": ["get"]}),
            ],
        ),
        "flux" => {
            let field = if d.kind.kind == "Kustomization" {
                "kustomization"
            } else {
                "helmRelease"
            };
            let mut flux = json!({field: name});
            if namespace != target {
                flux["namespace"] = json!(namespace);
            }
            (
                json!({"connector": "flux", "serviceAccountName": reader, "flux": flux}),
                vec![
                    json!({"apiGroups": [d.kind.group], "resources": [d.kind.plural], "resourceNames": [name], "verbs": ["get"]}),
                ],
            )
        }
        _ => {
            // A ServiceMonitor says Prometheus scrapes this service; the
            // scope reads that Prometheus, not the cluster.
            note = Some(format!(
                "Prometheus Operator scrapes {namespace}/{name}: set prometheus.url to the Prometheus that does (e.g. http://prometheus-operated.monitoring.svc:9090) and write the queries your policy needs"
            ));
            (
                json!({"connector": "prometheus", "prometheus": {
                    "url": "http://prometheus-operated.monitoring.svc:9090",
                    "queries": [{"name": "targets_up", "query": format!("min(up{{namespace=\"{namespace}\"}})")}]}}),
                Vec::new(),
            )
        }
    };
    let rbac = if rules.is_empty() {
        Vec::new()
    } else {
        let role_name = format!("release-passport-read-{scope_name}");
        vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": role_name, "namespace": namespace},
                   "rules": rules}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": role_name, "namespace": namespace},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
                   "subjects": [{"kind": "ServiceAccount", "name": reader, "namespace": target}]}),
        ]
    };
    Candidate {
        connector: d.connector.into(),
        kind: d.kind.kind.into(),
        api_version: format!("{}/{}", d.kind.group, d.kind.version),
        namespace,
        name,
        scope_namespace: target,
        connector_scope: json!({
            "apiVersion": format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
            "kind": "ConnectorScope",
            "metadata": metadata,
            "spec": spec,
        }),
        rbac,
        note,
        configured_by: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_becomes_a_scope_and_a_role_limited_to_it() {
        let rollout = json!({"metadata": {"name": "payment-api", "namespace": "payments"}});
        let c = candidate(&DETECTABLE[1], &rollout, "evidence-reader");
        assert_eq!(c.scope_namespace, "payments");
        assert_eq!(
            c.connector_scope["spec"],
            json!({"connector": "argo-rollouts", "serviceAccountName": "evidence-reader", "argoRollouts": {"rollout": "payment-api"}})
        );
        let spec: crate::api::ConnectorScopeSpec =
            serde_json::from_value(c.connector_scope["spec"].clone())
                .expect("a valid ConnectorScope spec");
        assert!(spec.argo_rollouts.is_some());
        assert_eq!(
            c.rbac[0]["rules"][0]["resourceNames"],
            json!(["payment-api"])
        );
        assert_eq!(
            c.rbac[1]["subjects"][0],
            json!({"kind": "ServiceAccount", "name": "evidence-reader", "namespace": "payments"})
        );
    }

    #[test]
    fn a_flux_kustomization_serves_its_target_namespace() {
        let ks = json!({"metadata": {"name": "payment-api", "namespace": "flux-system"},
                        "spec": {"targetNamespace": "payments"}});
        let c = candidate(&DETECTABLE[3], &ks, DEFAULT_READER);
        assert_eq!(c.scope_namespace, "payments");
        assert_eq!(
            c.connector_scope["metadata"]["namespace"],
            json!("payments")
        );
        assert_eq!(
            c.connector_scope["spec"]["flux"],
            json!({"kustomization": "payment-api", "namespace": "flux-system"})
        );
        assert_eq!(c.rbac[0]["metadata"]["namespace"], json!("flux-system"));
        assert_eq!(c.rbac[1]["subjects"][0]["namespace"], json!("payments"));
    }

    #[test]
    fn a_kustomization_and_a_helm_release_of_one_name_are_two_candidates() {
        let object = json!({"metadata": {"name": "payment-api", "namespace": "payments"}});
        let ks = candidate(&DETECTABLE[3], &object, DEFAULT_READER);
        let hr = candidate(&DETECTABLE[4], &object, DEFAULT_READER);
        assert_eq!(hr.kind, "HelmRelease");
        assert_eq!(
            hr.connector_scope["spec"]["flux"],
            json!({"helmRelease": "payment-api"})
        );
        assert_ne!(
            ks.connector_scope["metadata"]["name"],
            hr.connector_scope["metadata"]["name"]
        );
        assert_ne!(
            ks.rbac[0]["metadata"]["name"],
            hr.rbac[0]["metadata"]["name"]
        );
        let reads_ks = reads(&ks.connector_scope["spec"], "payments");
        assert!(reads_ks.is_some());
        assert_ne!(
            reads_ks,
            reads(&hr.connector_scope["spec"], "payments"),
            "a scope reading the Kustomization does not configure the HelmRelease"
        );
    }
}
