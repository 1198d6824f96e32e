//! What the webhook decides from: reflector stores of ReleaseGates and
//! Passports kept current by watches, and the verified passports memoised by
//! content hash. Answering a request reads memory only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use sha2::Digest;

use super::decide::{PassportProblem, PassportVerifier, check_passport};
use crate::api::{Passport, PassportSpec, ReleaseGate};
use crate::passport::VerifyingKeySet;

/// Entries kept in the verification memo before it is emptied.
const MEMO_LIMIT: usize = 4096;

type Checked = Result<Arc<PassportSpec>, PassportProblem>;

/// In-memory view of gates and passports.
pub struct WebhookCache {
    gates: Store<ReleaseGate>,
    passports: Store<DynamicObject>,
    passport_resource: ApiResource,
    keys: RwLock<Arc<VerifyingKeySet>>,
    memo: Mutex<HashMap<[u8; 32], Checked>>,
}

impl WebhookCache {
    /// A cache over fixed objects (tests, benchmarks): no watches.
    pub fn from_objects(
        gates: Vec<ReleaseGate>,
        passports: Vec<DynamicObject>,
        keys: VerifyingKeySet,
    ) -> Self {
        let mut gate_writer: Writer<ReleaseGate> = Writer::default();
        let passport_resource = ApiResource::erase::<Passport>(&());
        let mut passport_writer = Writer::new(passport_resource.clone());
        gate_writer.apply_watcher_event(&watcher::Event::Init);
        for g in gates {
            gate_writer.apply_watcher_event(&watcher::Event::InitApply(g));
        }
        gate_writer.apply_watcher_event(&watcher::Event::InitDone);
        passport_writer.apply_watcher_event(&watcher::Event::Init);
        for p in passports {
            passport_writer.apply_watcher_event(&watcher::Event::InitApply(p));
        }
        passport_writer.apply_watcher_event(&watcher::Event::InitDone);
        Self::new(
            gate_writer.as_reader(),
            passport_writer.as_reader(),
            passport_resource,
            keys,
        )
    }

    fn new(
        gates: Store<ReleaseGate>,
        passports: Store<DynamicObject>,
        passport_resource: ApiResource,
        keys: VerifyingKeySet,
    ) -> Self {
        Self {
            gates,
            passports,
            passport_resource,
            keys: RwLock::new(Arc::new(keys)),
            memo: Mutex::new(HashMap::new()),
        }
    }

    /// A cache fed by watches of every ReleaseGate and Passport; the returned
    /// future runs the watches (spawn it).
    pub fn watch(
        client: Client,
        keys: VerifyingKeySet,
    ) -> (
        Arc<Self>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (gates, gate_writer) = reflector::store::<ReleaseGate>();
        let passport_resource = ApiResource::erase::<Passport>(&());
        let passport_writer = Writer::new(passport_resource.clone());
        let passports = passport_writer.as_reader();
        // Paginated lists (not `any_semantic`, which lists everything from the
        // watch cache in one response): clusters keep many passports.
        let gate_stream = watcher(
            Api::<ReleaseGate>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(gate_writer)
        .for_each(|e| async move {
            if let Err(e) = e {
                tracing::warn!(error = %e, "webhook: watching ReleaseGates");
            }
        });
        let passport_stream = watcher(
            Api::<DynamicObject>::all_with(client, &passport_resource),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(passport_writer)
        .for_each(|e| async move {
            if let Err(e) = e {
                tracing::warn!(error = %e, "webhook: watching Passports");
            }
        });
        let cache = Arc::new(Self::new(gates, passports, passport_resource, keys));
        let run = async move {
            futures::join!(gate_stream, passport_stream);
        };
        (cache, run)
    }

    /// Resolves once both stores hold a full list.
    pub async fn ready(&self) {
        let _ = self.gates.wait_until_ready().await;
        let _ = self.passports.wait_until_ready().await;
    }

    /// The gate `namespace/name`.
    pub fn gate(&self, namespace: &str, name: &str) -> Option<Arc<ReleaseGate>> {
        self.gates
            .get(&ObjectRef::<ReleaseGate>::new(name).within(namespace))
    }

    /// The stored passport `namespace/name`.
    pub fn passport(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.passports.get(
            &ObjectRef::<DynamicObject>::new_with(name, self.passport_resource.clone())
                .within(namespace),
        )
    }

    /// Replaces the trusted keys (forgets every memoised verification).
    pub fn set_keys(&self, keys: VerifyingKeySet) {
        if let Ok(mut k) = self.keys.write() {
            *k = Arc::new(keys);
        }
        if let Ok(mut m) = self.memo.lock() {
            m.clear();
        }
    }

    fn keys(&self) -> Arc<VerifyingKeySet> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }
}

impl PassportVerifier for WebhookCache {
    /// Verifies once per distinct content: the key is the SHA-256 of the
    /// passport's JSON (keys sorted), so a replaced object with changed
    /// content is verified afresh.
    fn check(&self, spec: &Value) -> Checked {
        let Ok(bytes) = serde_json::to_vec(spec) else {
            return Err(PassportProblem::Malformed("cannot encode".into()));
        };
        let hash: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        if let Ok(memo) = self.memo.lock()
            && let Some(hit) = memo.get(&hash)
        {
            return hit.clone();
        }
        let checked = check_passport(spec, &self.keys());
        if let Ok(mut memo) = self.memo.lock() {
            if memo.len() >= MEMO_LIMIT {
                memo.clear();
            }
            memo.insert(hash, checked.clone());
        }
        checked
    }
}

/// The `spec` of a stored passport.
pub fn passport_spec(object: &DynamicObject) -> Option<&Value> {
    object.data.get("spec")
}
