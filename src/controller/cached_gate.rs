//! A ReleaseGate as the controller's cache holds it: packed.
//!
//! The controller caches every gate of the cluster, and a deserialised gate
//! (spec, evidence, status, history) costs several KiB in many small
//! allocations. The cache holds instead what the watches and triggers read
//! — name, namespace, uid, resourceVersion, generation, the Policy, the
//! ConnectorScopes and the current Passport — plus the gate's JSON, without
//! its managed fields, deflated into one allocation. A reconcile unpacks
//! its gate (tens of microseconds); nothing else does. `tests/cache_memory.rs`
//! holds the cost of a cached gate to a budget.

use std::borrow::Cow;
use std::io::{Read as _, Write as _};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer};

use crate::api::ReleaseGate;

/// A cached gate; see the module.
#[derive(Clone, Debug)]
pub struct CachedGate {
    /// Name, namespace, uid, resourceVersion, generation and deletion time.
    pub metadata: ObjectMeta,
    /// The Policy the gate names.
    pub policy: String,
    /// The ConnectorScopes the gate names.
    pub scopes: Box<[String]>,
    /// The Passport its status names.
    pub passport: Option<String>,
    packed: Box<[u8]>,
}

/// A packed gate that does not unpack (never expected: the cache packed it).
#[derive(Debug, thiserror::Error)]
#[error("unpacking the cached ReleaseGate {name}: {reason}")]
pub struct UnpackError {
    pub name: String,
    pub reason: String,
}

impl CachedGate {
    /// Packs `gate`, leaving out its managed fields and last-applied annotation.
    pub fn pack(mut gate: ReleaseGate) -> Result<Self, serde_json::Error> {
        super::stores::strip(&mut gate);
        let json = serde_json::to_vec(&gate)?;
        let mut encoder = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(json.len() / 3),
            flate2::Compression::fast(),
        );
        encoder.write_all(&json).map_err(serde_json::Error::io)?;
        let packed = encoder.finish().map_err(serde_json::Error::io)?;
        let meta = &gate.metadata;
        Ok(Self {
            metadata: ObjectMeta {
                name: meta.name.clone(),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                generation: meta.generation,
                deletion_timestamp: meta.deletion_timestamp.clone(),
                ..ObjectMeta::default()
            },
            policy: gate.spec.policy_ref.name.clone(),
            scopes: gate
                .spec
                .connector_scopes
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            passport: gate.status.as_ref().and_then(|s| s.passport_name.clone()),
            packed: packed.into_boxed_slice(),
        })
    }

    /// The gate as it was packed.
    pub fn unpack(&self) -> Result<ReleaseGate, UnpackError> {
        let fail = |reason: String| UnpackError {
            name: self.metadata.name.clone().unwrap_or_default(),
            reason,
        };
        let mut json = Vec::with_capacity(self.packed.len() * 4);
        flate2::read::DeflateDecoder::new(&self.packed[..])
            .read_to_end(&mut json)
            .map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&json).map_err(|e| fail(e.to_string()))
    }

    /// Bytes the packed gate takes.
    pub fn packed_len(&self) -> usize {
        self.packed.len()
    }
}

impl<'de> Deserialize<'de> for CachedGate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let gate = ReleaseGate::deserialize(deserializer)?;
        CachedGate::pack(gate).map_err(serde::de::Error::custom)
    }
}

impl Resource for CachedGate {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        ReleaseGate::kind(&())
    }
    fn group(_: &()) -> Cow<'_, str> {
        ReleaseGate::group(&())
    }
    fn version(_: &()) -> Cow<'_, str> {
        ReleaseGate::version(&())
    }
    fn plural(_: &()) -> Cow<'_, str> {
        ReleaseGate::plural(&())
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> ReleaseGate {
        let text = include_str!("../../tests/fixtures/scale/gate.json");
        serde_json::from_str(text).expect("fixture gate")
    }

    #[test]
    fn a_packed_gate_unpacks_to_the_same_gate_without_its_managed_fields() {
        let original = gate();
        assert!(original.metadata.managed_fields.is_some());
        let cached: CachedGate =
            serde_json::from_str(include_str!("../../tests/fixtures/scale/gate.json"))
                .expect("cached");
        let unpacked = cached.unpack().expect("unpacks");
        let mut expected = original.clone();
        expected.metadata.managed_fields = None;
        assert_eq!(
            serde_json::to_value(&unpacked).expect("json"),
            serde_json::to_value(&expected).expect("json")
        );
        assert_eq!(cached.metadata.name.as_deref(), Some("gate-00001"));
        assert_eq!(cached.metadata.generation, original.metadata.generation);
        assert_eq!(cached.policy, original.spec.policy_ref.name);
        assert_eq!(cached.passport.as_deref(), Some("gate-00001-c225bf319d"));
        assert!(cached.metadata.managed_fields.is_none());
        assert!(cached.packed_len() < 1500, "{}", cached.packed_len());
    }

    #[test]
    fn a_damaged_pack_is_an_error_naming_the_gate() {
        let mut cached = CachedGate::pack(gate()).expect("packs");
        cached.packed = vec![0xff; 8].into_boxed_slice();
        let error = cached.unpack().expect_err("damaged");
        assert!(error.to_string().contains("gate-00001"), "{error}");
    }
}
