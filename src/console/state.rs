//! What the console reads: reflector stores of gates, passports, policies,
//! connector scopes and the project's Events, kept current by watches. A page
//! is rendered from memory; only login (TokenReview), access checks
//! (SubjectAccessReview) and the simulator's evidence reads call out.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use crate::api::{ConnectorScope, Passport, Policy, ReleaseGate};
use crate::passport::VerifyingKeySet;

/// Events about the project's own objects.
pub const EVENT_FIELD_SELECTOR: &str = "involvedObject.apiVersion=releasepassport.io/v1alpha1";

/// In-memory view of everything the console shows.
pub struct ConsoleState {
    pub gates: Store<ReleaseGate>,
    pub passports: Store<Passport>,
    pub policies: Store<Policy>,
    pub scopes: Store<ConnectorScope>,
    pub events: Store<Event>,
    keys: RwLock<Arc<VerifyingKeySet>>,
    /// Detected candidates by namespace, as that namespace's reader
    /// ServiceAccount sees them (refreshed by [`crate::console::detection`]).
    detected: RwLock<std::collections::BTreeMap<String, Vec<crate::connectors::detect::Candidate>>>,
}

fn filled<K>(objects: Vec<K>) -> Store<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let mut writer: Writer<K> = Writer::default();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    writer.as_reader()
}

fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl std::future::Future<Output = ()> + Send + 'static,
)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store::<K>();
    let kind = K::kind(&Default::default()).to_string();
    let run = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .for_each(move |e| {
            let kind = kind.clone();
            async move {
                if let Err(e) = e {
                    tracing::warn!(error = %e, %kind, "console: watching");
                }
            }
        });
    (reader, run)
}

impl ConsoleState {
    /// A state over fixed objects (tests, benchmarks): no watches.
    pub fn from_objects(
        gates: Vec<ReleaseGate>,
        passports: Vec<Passport>,
        policies: Vec<Policy>,
        scopes: Vec<ConnectorScope>,
        events: Vec<Event>,
        keys: VerifyingKeySet,
    ) -> Self {
        Self {
            gates: filled(gates),
            passports: filled(passports),
            policies: filled(policies),
            scopes: filled(scopes),
            events: filled(events),
            keys: RwLock::new(Arc::new(keys)),
            detected: Default::default(),
        }
    }

    /// A state fed by watches; the returned future runs them (spawn it).
    pub fn watch(
        client: Client,
        keys: VerifyingKeySet,
    ) -> (
        Arc<Self>,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (gates, g) = watch(
            Api::<ReleaseGate>::all(client.clone()),
            watcher::Config::default(),
        );
        let (passports, p) = watch(
            Api::<Passport>::all(client.clone()),
            watcher::Config::default(),
        );
        let (policies, po) = watch(
            Api::<Policy>::all(client.clone()),
            watcher::Config::default(),
        );
        let (scopes, s) = watch(
            Api::<ConnectorScope>::all(client.clone()),
            watcher::Config::default(),
        );
        let (events, e) = watch(
            Api::<Event>::all(client),
            watcher::Config::default().fields(EVENT_FIELD_SELECTOR),
        );
        let state = Arc::new(Self {
            gates,
            passports,
            policies,
            scopes,
            events,
            keys: RwLock::new(Arc::new(keys)),
            detected: Default::default(),
        });
        let run = async move {
            futures::join!(g, p, po, s, e);
        };
        (state, run)
    }

    /// Records what detection found in `namespace`.
    pub fn set_detected(
        &self,
        namespace: &str,
        candidates: Vec<crate::connectors::detect::Candidate>,
    ) {
        if let Ok(mut detected) = self.detected.write() {
            detected.insert(namespace.to_string(), candidates);
        }
    }

    /// Detected candidates of the visible namespaces (an object served to
    /// several namespaces' gates shows once per namespace that found it).
    pub fn detected_in(
        &self,
        visible: &BTreeSet<String>,
    ) -> Vec<crate::connectors::detect::Candidate> {
        self.detected
            .read()
            .map(|d| {
                d.iter()
                    .filter(|(ns, _)| visible.contains(*ns))
                    .flat_map(|(_, c)| c.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Resolves once every store holds a full list.
    pub async fn ready(&self) {
        let _ = self.gates.wait_until_ready().await;
        let _ = self.passports.wait_until_ready().await;
        let _ = self.policies.wait_until_ready().await;
        let _ = self.scopes.wait_until_ready().await;
        let _ = self.events.wait_until_ready().await;
    }

    /// The keys a passport's signature is checked against.
    pub fn keys(&self) -> Arc<VerifyingKeySet> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Replaces the trusted keys.
    pub fn set_keys(&self, keys: VerifyingKeySet) {
        if let Ok(mut k) = self.keys.write() {
            *k = Arc::new(keys);
        }
    }

    /// Every namespace that holds a gate, passport, policy or scope.
    pub fn namespaces(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for g in self.gates.state() {
            out.extend(g.namespace());
        }
        for p in self.passports.state() {
            out.extend(p.namespace());
        }
        for p in self.policies.state() {
            out.extend(p.namespace());
        }
        for s in self.scopes.state() {
            out.extend(s.namespace());
        }
        out
    }

    pub fn gate(&self, namespace: &str, name: &str) -> Option<Arc<ReleaseGate>> {
        self.gates
            .get(&ObjectRef::<ReleaseGate>::new(name).within(namespace))
    }

    pub fn passport(&self, namespace: &str, name: &str) -> Option<Arc<Passport>> {
        self.passports
            .get(&ObjectRef::<Passport>::new(name).within(namespace))
    }

    pub fn policy(&self, namespace: &str, name: &str) -> Option<Arc<Policy>> {
        self.policies
            .get(&ObjectRef::<Policy>::new(name).within(namespace))
    }

    pub fn scope(&self, namespace: &str, name: &str) -> Option<Arc<ConnectorScope>> {
        self.scopes
            .get(&ObjectRef::<ConnectorScope>::new(name).within(namespace))
    }

    /// Gates in the given namespaces, sorted by namespace and name.
    pub fn gates_in(&self, namespaces: &BTreeSet<String>) -> Vec<Arc<ReleaseGate>> {
        let mut v: Vec<_> = self
            .gates
            .state()
            .into_iter()
            .filter(|g| g.namespace().is_some_and(|n| namespaces.contains(&n)))
            .collect();
        v.sort_by_key(|o| (o.namespace(), o.name_any()));
        v
    }

    /// Passports in the given namespaces, newest first.
    pub fn passports_in(&self, namespaces: &BTreeSet<String>) -> Vec<Arc<Passport>> {
        let mut v: Vec<_> = self
            .passports
            .state()
            .into_iter()
            .filter(|p| p.namespace().is_some_and(|n| namespaces.contains(&n)))
            .collect();
        v.sort_by(|a, b| {
            b.spec
                .generated_at
                .cmp(&a.spec.generated_at)
                .then_with(|| a.name_any().cmp(&b.name_any()))
        });
        v
    }

    /// Scopes in the given namespaces, sorted.
    pub fn scopes_in(&self, namespaces: &BTreeSet<String>) -> Vec<Arc<ConnectorScope>> {
        let mut v: Vec<_> = self
            .scopes
            .state()
            .into_iter()
            .filter(|s| s.namespace().is_some_and(|n| namespaces.contains(&n)))
            .collect();
        v.sort_by_key(|o| (o.namespace(), o.name_any()));
        v
    }

    /// Policies in the given namespaces, sorted.
    pub fn policies_in(&self, namespaces: &BTreeSet<String>) -> Vec<Arc<Policy>> {
        let mut v: Vec<_> = self
            .policies
            .state()
            .into_iter()
            .filter(|s| s.namespace().is_some_and(|n| namespaces.contains(&n)))
            .collect();
        v.sort_by_key(|o| (o.namespace(), o.name_any()));
        v
    }

    /// Events about the project's objects in the given namespaces.
    pub fn events_in(&self, namespaces: &BTreeSet<String>) -> Vec<Arc<Event>> {
        self.events
            .state()
            .into_iter()
            .filter(|e| e.namespace().is_some_and(|n| namespaces.contains(&n)))
            .collect()
    }

    /// Passports of one gate, newest first.
    pub fn passports_of(&self, namespace: &str, gate: &str) -> Vec<Arc<Passport>> {
        let mut v: Vec<_> = self
            .passports
            .state()
            .into_iter()
            .filter(|p| {
                p.namespace().as_deref() == Some(namespace)
                    && p.spec
                        .gate
                        .as_ref()
                        .is_some_and(|g| g.name == gate && g.namespace == namespace)
            })
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.spec.generated_at));
        v
    }
}
