//! What the webhook decides from: reflector stores of ReleaseGates and
//! Passports kept current by watches, the trusted public keys (the
//! controller's own key and every key listed in the public-key ConfigMap,
//! reloaded by a watch), and the verified passports memoised per stored
//! object. Answering a request reads memory only.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde_json::Value;

use super::decide::{PassportProblem, PassportVerifier, StoredPassport, check_passport};
use crate::api::{Passport, PassportSpec, ReleaseGate};
use crate::passport::VerifyingKeySet;

/// Entries kept in the verification memo; when full, entries for objects the
/// store no longer holds are dropped first.
const MEMO_LIMIT: usize = 4096;

type Checked = Result<Arc<PassportSpec>, PassportProblem>;

/// A Passport as stored, its `spec` kept as raw JSON (the signature covers
/// the JSON as stored, not a re-serialised typed value).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct StoredObject {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<Value>,
}

impl Resource for StoredObject {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Passport::kind(&())
    }
    fn group(_: &()) -> Cow<'_, str> {
        Passport::group(&())
    }
    fn version(_: &()) -> Cow<'_, str> {
        Passport::version(&())
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Passport::plural(&())
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The trusted keys and what was verified with them, replaced together.
struct Trust {
    keys: Arc<VerifyingKeySet>,
    /// Keyed by the address of the stored object; the entry holds the `Arc`,
    /// so the address cannot be reused by another object while it is here.
    memo: HashMap<usize, (Arc<StoredObject>, Checked)>,
}

/// In-memory view of gates, passports and trusted keys.
pub struct WebhookCache {
    gates: Store<ReleaseGate>,
    passports: Store<StoredObject>,
    trust: RwLock<Trust>,
    keys_loaded: tokio::sync::watch::Sender<bool>,
}

impl WebhookCache {
    /// A cache over fixed objects (tests, benchmarks): no watches.
    pub fn from_objects(
        gates: Vec<ReleaseGate>,
        passports: Vec<DynamicObject>,
        keys: VerifyingKeySet,
    ) -> Self {
        let mut gate_writer: Writer<ReleaseGate> = Writer::default();
        let mut passport_writer: Writer<StoredObject> = Writer::default();
        gate_writer.apply_watcher_event(&watcher::Event::Init);
        for g in gates {
            gate_writer.apply_watcher_event(&watcher::Event::InitApply(g));
        }
        gate_writer.apply_watcher_event(&watcher::Event::InitDone);
        passport_writer.apply_watcher_event(&watcher::Event::Init);
        for p in passports {
            let object = StoredObject {
                spec: p.data.get("spec").cloned(),
                metadata: p.metadata,
            };
            passport_writer.apply_watcher_event(&watcher::Event::InitApply(object));
        }
        passport_writer.apply_watcher_event(&watcher::Event::InitDone);
        let cache = Self::new(gate_writer.as_reader(), passport_writer.as_reader(), keys);
        cache.keys_loaded.send_replace(true);
        cache
    }

    fn new(
        gates: Store<ReleaseGate>,
        passports: Store<StoredObject>,
        keys: VerifyingKeySet,
    ) -> Self {
        Self {
            gates,
            passports,
            trust: RwLock::new(Trust {
                keys: Arc::new(keys),
                memo: HashMap::new(),
            }),
            keys_loaded: tokio::sync::watch::Sender::new(false),
        }
    }

    /// A cache fed by watches of every ReleaseGate and Passport, and of the
    /// public-key ConfigMap `key_configmap` in `namespace`. `own` (the
    /// controller's signing key) is always trusted; every key the ConfigMap
    /// lists is trusted too, and a change to it replaces the set. The
    /// returned future runs the watches (spawn it).
    pub fn watch(
        client: Client,
        own: VerifyingKeySet,
        namespace: &str,
        key_configmap: &str,
    ) -> (
        Arc<Self>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (gates, gate_writer) = reflector::store::<ReleaseGate>();
        let (passports, passport_writer) = reflector::store::<StoredObject>();
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
            Api::<StoredObject>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(passport_writer)
        .for_each(|e| async move {
            if let Err(e) = e {
                tracing::warn!(error = %e, "webhook: watching Passports");
            }
        });
        let cache = Arc::new(Self::new(gates, passports, own.clone()));
        let keys = watch_keys(
            client,
            namespace.to_string(),
            key_configmap.to_string(),
            own,
            cache.clone(),
        );
        let run = async move {
            futures::join!(gate_stream, passport_stream, keys);
        };
        (cache, run)
    }

    /// Resolves once both stores hold a full list and the trusted keys have
    /// been read from the ConfigMap (or found absent).
    pub async fn ready(&self) {
        let _ = self.gates.wait_until_ready().await;
        let _ = self.passports.wait_until_ready().await;
        let _ = self
            .keys_loaded
            .subscribe()
            .wait_for(|loaded| *loaded)
            .await;
    }

    /// The gate `namespace/name`.
    pub fn gate(&self, namespace: &str, name: &str) -> Option<Arc<ReleaseGate>> {
        self.gates
            .get(&ObjectRef::<ReleaseGate>::new(name).within(namespace))
    }

    /// The stored passport `namespace/name`.
    pub fn passport(&self, namespace: &str, name: &str) -> Option<Arc<StoredObject>> {
        self.passports
            .get(&ObjectRef::<StoredObject>::new(name).within(namespace))
    }

    /// Replaces the trusted keys and forgets every memoised verification, in
    /// one step: a verification started with the old keys is not memoised.
    pub fn set_keys(&self, keys: VerifyingKeySet) {
        let mut trust = self.trust.write().unwrap_or_else(|e| e.into_inner());
        trust.keys = Arc::new(keys);
        trust.memo.clear();
    }

    /// Ids of the trusted keys, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let trust = self.trust.read().unwrap_or_else(|e| e.into_inner());
        trust.keys.key_ids().into_iter().map(String::from).collect()
    }

    fn memo_get(&self, object: &Arc<StoredObject>) -> Result<Checked, Arc<VerifyingKeySet>> {
        let trust = self.trust.read().unwrap_or_else(|e| e.into_inner());
        match trust.memo.get(&(Arc::as_ptr(object) as usize)) {
            Some((held, checked)) if Arc::ptr_eq(held, object) => Ok(checked.clone()),
            _ => Err(trust.keys.clone()),
        }
    }

    fn memo_put(&self, object: &Arc<StoredObject>, keys: &Arc<VerifyingKeySet>, checked: &Checked) {
        let mut trust = self.trust.write().unwrap_or_else(|e| e.into_inner());
        if !Arc::ptr_eq(&trust.keys, keys) {
            return;
        }
        if trust.memo.len() >= MEMO_LIMIT {
            // Objects only the memo still holds were replaced or deleted.
            trust
                .memo
                .retain(|_, (held, _)| Arc::strong_count(held) > 1);
            if trust.memo.len() >= MEMO_LIMIT {
                trust.memo.clear();
            }
        }
        trust.memo.insert(
            Arc::as_ptr(object) as usize,
            (object.clone(), checked.clone()),
        );
    }
}

/// A stored passport object, for [`PassportVerifier::check`].
pub fn stored_passport(object: &Arc<StoredObject>) -> Option<StoredPassport<'_>> {
    Some(StoredPassport {
        name: object.metadata.name.as_deref()?,
        spec: object.spec.as_ref()?,
        object: Some(object),
    })
}

impl PassportVerifier for WebhookCache {
    /// Verifies once per stored object: the reflector replaces the object
    /// (a new `Arc`) on every change, so changed content is verified afresh.
    fn check(&self, passport: &StoredPassport<'_>) -> Checked {
        let Some(object) = passport.object else {
            let keys = self
                .trust
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys
                .clone();
            return check_passport(passport.spec, &keys);
        };
        match self.memo_get(object) {
            Ok(hit) => hit,
            Err(keys) => {
                let checked = check_passport(passport.spec, &keys);
                self.memo_put(object, &keys, &checked);
                checked
            }
        }
    }
}

/// Keeps the cache's trusted keys equal to `own` plus the keys listed in
/// the ConfigMap `namespace/name` (a watch of that one object).
async fn watch_keys(
    client: Client,
    namespace: String,
    name: String,
    own: VerifyingKeySet,
    cache: Arc<WebhookCache>,
) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut listed: Option<BTreeMap<String, String>> = None;
    let mut initial: Option<BTreeMap<String, String>> = None;
    let mut events = watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let changed = match event {
            Ok(watcher::Event::Init) => {
                initial = None;
                false
            }
            Ok(watcher::Event::InitApply(cm)) => {
                initial = Some(cm.data.unwrap_or_default());
                false
            }
            Ok(watcher::Event::InitDone) => {
                listed = initial.take();
                true
            }
            Ok(watcher::Event::Apply(cm)) => {
                listed = Some(cm.data.unwrap_or_default());
                true
            }
            Ok(watcher::Event::Delete(_)) => {
                listed = None;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, configmap = %name, "webhook: watching the public-key ConfigMap");
                false
            }
        };
        if changed {
            let keys = trusted_set(&own, listed.as_ref(), &name);
            tracing::info!(configmap = %name, key_ids = ?keys.key_ids(), "webhook: trusted passport signing keys");
            cache.set_keys(keys);
            cache.keys_loaded.send_replace(true);
        }
    }
}

/// `own` plus the keys the ConfigMap data lists (own wins on a shared id).
pub fn trusted_set(
    own: &VerifyingKeySet,
    listed: Option<&BTreeMap<String, String>>,
    configmap: &str,
) -> VerifyingKeySet {
    let mut keys = VerifyingKeySet::new();
    if let Some(data) = listed {
        let (from_configmap, problems) = crate::controller::keys::trusted_keys(data);
        for problem in problems {
            tracing::warn!(configmap, "webhook: public-key ConfigMap: {problem}");
        }
        add_all(&mut keys, &from_configmap);
    }
    add_all(&mut keys, own);
    keys
}

fn add_all(into: &mut VerifyingKeySet, from: &VerifyingKeySet) {
    for id in from.key_ids() {
        if let Some(key) = from.get(id) {
            into.insert_with_id(id, *key);
        }
    }
}
