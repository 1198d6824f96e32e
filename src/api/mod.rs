//! The custom resources of `releasepassport.io/v1alpha1`.
//!
//! These types are the public contract: CI snippets, Argo CD health checks,
//! dashboards and the admission webhook all read the field names declared
//! here. The spec types are plain data (no Kubernetes I/O), so the decision
//! engine and the passport code use them directly.

// `#[kube(printcolumn(..))]` repeats `type_ = ..` per column by design.
#![allow(clippy::duplicated_attributes)]

mod approval;
mod common;
mod connector_scope;
mod evidence;
mod passport;
mod policy;
mod provider_scopes;
mod release_gate;
mod request;
mod waiver;

pub use approval::*;
pub use common::*;
pub use connector_scope::*;
pub use evidence::*;
pub use passport::*;
pub use policy::*;
pub use provider_scopes::*;
pub use release_gate::*;
pub use request::*;
pub use waiver::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every Release Passport resource.
pub const GROUP: &str = "releasepassport.io";
/// API version served and stored.
pub const VERSION: &str = "v1alpha1";
/// Label that puts a workload under a ReleaseGate (and in scope of the webhook).
pub const GATE_LABEL: &str = "releasepassport.io/gate";
/// Namespace label, set by the platform, that makes enforce the minimum mode
/// of every gate in the namespace and requires every workload image change
/// there to be covered by a gate.
pub const ENFORCE_LABEL: &str = "releasepassport.io/enforce";
/// The custom verb on `releasegates` needed to create a ReleaseApproval for a gate.
pub const APPROVE_VERB: &str = "approve";
/// The custom verb on `releasegates` needed to create a ReleaseWaiver for a gate.
pub const WAIVE_VERB: &str = "waive";
/// The custom verb on `releasegates` needed to create a gate, change anything
/// but its release, artifact, rollback and evidence, or take a workload out of it.
pub const CONFIGURE_VERB: &str = "configure";
/// The built-in connector of the gate's own facts; never a pushed name.
const GATE_CONNECTOR: &str = "releasegate";

/// Every CRD of the project, in a stable order (also the order of `crds/`).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        Policy::crd(),
        ConnectorScope::crd(),
        ReleaseGate::crd(),
        Passport::crd(),
        ReleaseApproval::crd(),
        ReleaseWaiver::crd(),
        ReleaseRequest::crd(),
    ];
    let reserved = pulled_connector_names();
    for crd in &mut crds {
        if crd.spec.names.kind == "ReleaseGate" {
            reserve_pulled_names(crd, &reserved);
        }
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                kubernetes_formats(schema);
            }
        }
    }
    crds
}

/// Replaces the integer formats schemars derives from Rust types (`uint8`,
/// `uint32`, ...) with the ones Kubernetes knows (`int32`, `int64`); the
/// apiserver warns about any other format. Ranges stay enforced by
/// `minimum`/`maximum`.
fn kubernetes_formats(
    schema: &mut k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
) {
    if let Some(format) = schema.format.clone() {
        let replacement = match format.as_str() {
            "uint8" | "uint16" | "int8" | "int16" | "uint32" => Some("int32"),
            "uint64" | "uint" => Some("int64"),
            _ => None,
        };
        if let Some(r) = replacement {
            schema.format = Some(r.to_string());
            if schema.minimum.is_none() && format.starts_with('u') {
                schema.minimum = Some(0.0);
            }
        }
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        kubernetes_formats(child);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) =
        schema.items.as_mut()
    {
        kubernetes_formats(items);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(extra)) =
        schema.additional_properties.as_mut()
    {
        kubernetes_formats(extra);
    }
}

/// Connector names pushed evidence may not use: every connector the operator
/// pulls (the values of `ConnectorScope.spec.connector` other than the pushed
/// ones, `ingest` and `trivy`) and the gate's own `releasegate`. Read from the ConnectorScope schema, so
/// a new connector is reserved as soon as it exists.
pub fn pulled_connector_names() -> Vec<String> {
    fn values(schema: &serde_json::Value, out: &mut Vec<String>) {
        let Some(map) = schema.as_object() else {
            return;
        };
        if let Some(serde_json::Value::String(c)) = map.get("const") {
            out.push(c.clone());
        }
        if let Some(serde_json::Value::Array(e)) = map.get("enum") {
            out.extend(e.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
        for key in ["oneOf", "anyOf"] {
            for variant in map
                .get(key)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                values(variant, out);
            }
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(ConnectorKind)).unwrap_or_default();
    let mut names = Vec::new();
    values(&schema, &mut names);
    names.retain(|n| {
        !ConnectorKind::ALL
            .iter()
            .any(|k| k.is_pushed() && k.as_str() == n.as_str())
    });
    names.dedup();
    names.push(GATE_CONNECTOR.to_string());
    names
}

/// Adds to `spec.evidence[].connector` of the ReleaseGate CRD the rule that
/// pushed evidence never uses a pulled connector's name.
fn reserve_pulled_names(crd: &mut CustomResourceDefinition, reserved: &[String]) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        JSONSchemaPropsOrArray, ValidationRule,
    };
    let list = reserved
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let connector = crd
        .spec
        .versions
        .iter_mut()
        .filter_map(|v| v.schema.as_mut()?.open_api_v3_schema.as_mut())
        .filter_map(|root| root.properties.as_mut()?.get_mut("spec"))
        .filter_map(|spec| spec.properties.as_mut()?.get_mut("evidence"))
        .filter_map(|evidence| match evidence.items.as_mut()? {
            JSONSchemaPropsOrArray::Schema(item) => item.properties.as_mut()?.get_mut("connector"),
            JSONSchemaPropsOrArray::Schemas(_) => None,
        });
    for schema in connector {
        schema
            .x_kubernetes_validations
            .get_or_insert_with(Vec::new)
            .push(ValidationRule {
                rule: format!("!(self in [{list}])"),
                message: Some(format!(
                    "pushed evidence cannot use the name of a connector the operator pulls ({}): push it as ingest or under a name of your own; a rule that needs the pulled fact sets provenance: pulled",
                    reserved.join(", ")
                )),
                reason: Some("FieldValueForbidden".into()),
                ..Default::default()
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connector_but_ingest_is_reserved_from_pushed_evidence() {
        let reserved = pulled_connector_names();
        for kind in ConnectorKind::ALL {
            assert_eq!(
                reserved.iter().any(|n| n == kind.as_str()),
                !kind.is_pushed(),
                "{kind}: {reserved:?}"
            );
        }
        assert!(reserved.iter().any(|n| n == GATE_CONNECTOR));
        assert!(!reserved.iter().any(|n| n == "ingest" || n == "trivy"));
        // The list is read from the wire names, so it has exactly those.
        let pushed = ConnectorKind::ALL.iter().filter(|k| k.is_pushed()).count();
        assert_eq!(reserved.len(), ConnectorKind::ALL.len() - pushed + 1);
    }

    #[test]
    fn the_release_gate_crd_refuses_every_reserved_name() {
        let crd = all_crds()
            .into_iter()
            .find(|c| c.spec.names.kind == "ReleaseGate")
            .expect("ReleaseGate CRD");
        let text = serde_json::to_string(&crd).expect("json");
        for name in pulled_connector_names() {
            assert!(
                text.contains(&format!("'{name}'")),
                "{name} not in the rule"
            );
        }
    }
}
