//! The custom resources of `releasepassport.io/v1alpha1`.
//!
//! These types are the public contract: CI snippets, Argo CD health checks,
//! dashboards and the admission webhook all read the field names declared
//! here. The spec types are plain data (no Kubernetes I/O), so the decision
//! engine and the passport code use them directly.

mod common;
mod connector_scope;
mod evidence;
mod passport;
mod policy;
mod release_gate;

pub use common::*;
pub use connector_scope::*;
pub use evidence::*;
pub use passport::*;
pub use policy::*;
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
    vec![
        Policy::crd(),
        ConnectorScope::crd(),
        ReleaseGate::crd(),
        Passport::crd(),
    ]
}
