//! The custom resources of `releasepassport.io/v1alpha1`.
//!
//! These types are the public contract: CI snippets, Argo CD health checks,
//! dashboards and the admission webhook all read the field names declared
//! here. The spec types are plain data (no Kubernetes I/O), so the decision
//! engine and the passport code use them directly.

// `#[kube(printcolumn(..))]` repeats `type_ = ..` per column by design.
#![allow(clippy::duplicated_attributes)]

mod common;
mod connector_scope;
mod evidence;
mod passport;
mod policy;
mod provider_scopes;
mod release_gate;

pub use common::*;
pub use connector_scope::*;
pub use evidence::*;
pub use passport::*;
pub use policy::*;
pub use provider_scopes::*;
pub use release_gate::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every Release Passport resource.
pub const GROUP: &str = "releasepassport.io";
/// API version served and stored.
pub const VERSION: &str = "v1alpha1";
/// Label that puts a workload under a ReleaseGate (and in scope of the webhook).
pub const GATE_LABEL: &str = "releasepassport.io/gate";

/// Every CRD of the project, in a stable order (also the order of `crds/`).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        Policy::crd(),
        ConnectorScope::crd(),
        ReleaseGate::crd(),
        Passport::crd(),
    ];
    for crd in &mut crds {
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
