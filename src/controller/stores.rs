//! What a reconcile reads from memory besides the gate: its Policy, its
//! ConnectorScopes, its approvals and waivers, its namespace's labels (the
//! platform's minimum mode) and the admission webhook's Events about it.
//! Each kind is a reflector store fed by a watch; a change also re-evaluates
//! the gates it concerns. Cached objects drop what nobody reads
//! (`managedFields`, the last-applied annotation), and Passports are not
//! cached at all: a metadata-only watch only notes which current ones were
//! deleted, so that the gate's next evaluation reads (and writes) it again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, ResourceExt};

use crate::api::{
    ConnectorScope, ENFORCE_LABEL, HistoryType, Passport, Policy, ReleaseApproval, ReleaseRequest,
    ReleaseWaiver,
};
use crate::insights::history::AdmissionEvent;

use super::cached_gate::CachedGate;

/// `reportingController` of the admission webhook's Events.
pub const WEBHOOK_REPORTER: &str = "releasepassport-webhook";
/// Annotation of a webhook Event naming the authenticated user of the request.
pub const ACTOR_ANNOTATION: &str = "releasepassport.io/actor";

/// The stores, read by every reconcile.
#[derive(Clone)]
pub struct Stores {
    policies: Store<Policy>,
    scopes: Store<ConnectorScope>,
    /// `(namespace, name)` of Passports deleted since their gate's last
    /// evaluation (bounded: a gate's evaluation removes its own).
    deleted_passports: Arc<Mutex<HashSet<(String, String)>>>,
    /// When this process started watching: a status written before was
    /// written by another process, which may have missed a deletion.
    started: jiff::Timestamp,
    approvals: Store<ReleaseApproval>,
    waivers: Store<ReleaseWaiver>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    events: Store<Event>,
    requests: Store<ReleaseRequest>,
}

/// A stream of gates to re-evaluate.
pub type Triggers = std::pin::Pin<Box<dyn Stream<Item = ObjectRef<CachedGate>> + Send>>;

impl Stores {
    /// Starts the watches: the stores, and the streams of gates each change
    /// concerns (hand them to the controller, which drives them).
    pub fn watch(client: &Client, gates: Store<CachedGate>) -> (Self, Vec<Triggers>) {
        use futures::StreamExt as _;
        let (approvals, approvals_writer) = reflector::store();
        let (waivers, waivers_writer) = reflector::store();
        let (namespaces, namespaces_writer) = reflector::store();
        let (events, events_writer) = reflector::store();
        let (requests, requests_writer) = reflector::store();
        let request_triggers = watcher(
            Api::<ReleaseRequest>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(requests_writer)
        .applied_objects()
        .filter_map(|r| async move {
            let r = r.ok()?;
            // Handled ones change only by their status: nothing to do.
            if r.status.as_ref().is_some_and(|s| s.handled_at.is_some()) {
                return None;
            }
            Some(ObjectRef::new(&r.spec.gate).within(&r.namespace()?))
        });
        let (policies, policies_writer) = reflector::store();
        let (scopes, scopes_writer) = reflector::store();
        let deleted_passports = Arc::new(Mutex::new(HashSet::new()));
        // Spec changes only (generation): writing status never loops.
        let by_policy = gates.clone();
        let policy_triggers = watcher(
            Api::<Policy>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .modify(strip)
        .reflect(policies_writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default())
        .filter_map(|p| async move { p.ok() })
        .flat_map(move |policy: Policy| {
            let name = policy.name_any();
            gates_in(&by_policy, &policy.namespace().unwrap_or_default(), |g| {
                g.policy == name
            })
        });
        let by_scope = gates.clone();
        let scope_triggers = watcher(
            Api::<ConnectorScope>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .modify(strip)
        .reflect(scopes_writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default())
        .filter_map(|s| async move { s.ok() })
        .flat_map(move |scope: ConnectorScope| {
            let name = scope.name_any();
            gates_in(&by_scope, &scope.namespace().unwrap_or_default(), |g| {
                g.scopes.contains(&name)
            })
        });
        // Deleted Passports, from a metadata-only watch of the operator's
        // own (no store: 100,000 passports cost nothing here).
        let deleted = deleted_passports.clone();
        let by_passport = gates.clone();
        let passport_triggers = watcher(
            Api::<PartialObjectMeta<Passport>>::all(client.clone()),
            watcher::Config::default()
                .labels("app.kubernetes.io/managed-by=release-passport")
                .any_semantic(),
        )
        .default_backoff()
        .filter_map(move |e| {
            let deleted = deleted.clone();
            let gates = by_passport.clone();
            async move {
                let watcher::Event::Delete(p) = e.ok()? else {
                    return None;
                };
                let ns = p.namespace()?;
                let gate = p
                    .metadata
                    .owner_references
                    .as_ref()?
                    .iter()
                    .find(|r| r.kind == "ReleaseGate")?
                    .name
                    .clone();
                // Retention deletes older passports: only the current one matters.
                let gate_ref = ObjectRef::new(&gate).within(&ns);
                let current = gates
                    .get(&gate_ref)
                    .is_some_and(|g| g.passport.as_deref() == p.metadata.name.as_deref());
                if !current {
                    return None;
                }
                if let Ok(mut set) = deleted.lock() {
                    set.insert((ns.clone(), p.name_any()));
                }
                // No evaluation of its own: the gate's next one (at most
                // `--resync-seconds` later) reads and writes it again, as
                // documented; whoever deleted it may be replacing it.
                None::<ObjectRef<CachedGate>>
            }
        });
        let approval_triggers = watcher(
            Api::<ReleaseApproval>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(strip)
        .reflect(approvals_writer)
        .touched_objects()
        .filter_map(|a| async move {
            let a = a.ok()?;
            Some(ObjectRef::new(&a.spec.gate).within(&a.namespace()?))
        });
        let waiver_triggers = watcher(
            Api::<ReleaseWaiver>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(strip)
        .reflect(waivers_writer)
        .touched_objects()
        .filter_map(|w| async move {
            let w = w.ok()?;
            Some(ObjectRef::new(&w.spec.gate).within(&w.namespace()?))
        });
        let by_namespace = gates.clone();
        let namespace_triggers = watcher(
            Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(strip)
        .reflect(namespaces_writer)
        .applied_objects()
        .predicate_filter(predicates::labels, Default::default())
        .filter_map(|n| async move { n.ok() })
        .flat_map(move |n| gates_in(&by_namespace, &n.name_any(), |_| true));
        let event_triggers = watcher(
            Api::<Event>::all(client.clone()),
            watcher::Config::default().fields(&format!("reportingComponent={WEBHOOK_REPORTER}")),
        )
        .default_backoff()
        .modify(strip)
        .reflect(events_writer)
        .applied_objects()
        .filter_map(|e| async move {
            let e = e.ok()?;
            let o = &e.involved_object;
            if o.kind.as_deref() != Some("ReleaseGate") {
                return None;
            }
            Some(ObjectRef::new(o.name.as_deref()?).within(o.namespace.as_deref()?))
        });
        let stores = Stores {
            policies,
            scopes,
            deleted_passports,
            started: jiff::Timestamp::now(),
            approvals,
            waivers,
            namespaces,
            events,
            requests,
        };
        let triggers: Vec<Triggers> = vec![
            Box::pin(policy_triggers),
            Box::pin(scope_triggers),
            Box::pin(passport_triggers),
            Box::pin(approval_triggers),
            Box::pin(waiver_triggers),
            Box::pin(namespace_triggers),
            Box::pin(event_triggers),
            Box::pin(request_triggers),
        ];
        (stores, triggers)
    }

    /// Waits (at most 30 s each) until every store holds a full list, so a
    /// first evaluation never misses an approval that exists.
    pub async fn ready(&self) {
        let limit = Duration::from_secs(30);
        let _ = tokio::time::timeout(limit, self.policies.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.scopes.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.approvals.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.waivers.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.namespaces.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.events.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.requests.wait_until_ready()).await;
    }

    /// Policy `namespace/name`, from the cache.
    pub fn policy(&self, namespace: &str, name: &str) -> Option<Arc<Policy>> {
        self.policies.get(&ObjectRef::new(name).within(namespace))
    }

    /// ConnectorScope `namespace/name`, from the cache.
    pub fn scope(&self, namespace: &str, name: &str) -> Option<Arc<ConnectorScope>> {
        self.scopes.get(&ObjectRef::new(name).within(namespace))
    }

    /// When this process started watching.
    pub fn started(&self) -> jiff::Timestamp {
        self.started
    }

    /// Whether Passport `namespace/name` was deleted since it was last
    /// asked; asking forgets it.
    pub fn take_deleted_passport(&self, namespace: &str, name: &str) -> bool {
        self.deleted_passports
            .lock()
            .map(|mut set| set.remove(&(namespace.to_string(), name.to_string())))
            .unwrap_or(true)
    }

    /// Whether the platform made enforce the minimum mode of `namespace`.
    pub fn enforced_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .is_some_and(|n| n.labels().get(ENFORCE_LABEL).map(String::as_str) == Some("true"))
    }

    /// The ReleaseApprovals of gate `namespace/gate`.
    pub fn approvals_of(&self, namespace: &str, gate: &str) -> Vec<Arc<ReleaseApproval>> {
        self.approvals
            .state()
            .into_iter()
            .filter(|a| a.spec.gate == gate && a.namespace().as_deref() == Some(namespace))
            .collect()
    }

    /// The ReleaseWaivers of gate `namespace/gate`.
    pub fn waivers_of(&self, namespace: &str, gate: &str) -> Vec<Arc<ReleaseWaiver>> {
        self.waivers
            .state()
            .into_iter()
            .filter(|w| w.spec.gate == gate && w.namespace().as_deref() == Some(namespace))
            .collect()
    }

    /// The ReleaseRequests of gate `namespace/gate`.
    pub fn requests_of(&self, namespace: &str, gate: &str) -> Vec<Arc<ReleaseRequest>> {
        self.requests
            .state()
            .into_iter()
            .filter(|r| r.spec.gate == gate && r.namespace().as_deref() == Some(namespace))
            .collect()
    }

    /// The webhook's admission Events about gate `namespace/gate`, oldest first.
    pub fn admission_events_of(&self, namespace: &str, gate: &str) -> Vec<AdmissionEvent> {
        let mut events: Vec<AdmissionEvent> = self
            .events
            .state()
            .iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("ReleaseGate")
                    && e.involved_object.name.as_deref() == Some(gate)
                    && e.involved_object.namespace.as_deref() == Some(namespace)
            })
            .filter_map(|e| admission_event(e))
            .collect();
        events.sort_by(|a, b| (a.at, &a.name).cmp(&(b.at, &b.name)));
        events
    }
}

/// The cached gates of namespace `ns` that `keep` selects, as a stream of
/// gates to re-evaluate.
fn gates_in(
    gates: &Store<CachedGate>,
    ns: &str,
    keep: impl Fn(&CachedGate) -> bool,
) -> futures::stream::Iter<std::vec::IntoIter<ObjectRef<CachedGate>>> {
    futures::stream::iter(
        gates
            .state()
            .into_iter()
            .filter(|g| g.namespace().as_deref() == Some(ns) && keep(g))
            .map(|g| ObjectRef::from_obj(&*g))
            .collect::<Vec<_>>(),
    )
}

/// Drops from a cached object what no reader of the cache uses: the field
/// managers (often larger than the object) and the last-applied annotation.
pub fn strip<K: kube::Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// A webhook Event as a history entry, when it is one of the kinds the
/// history records.
pub fn admission_event(e: &Event) -> Option<AdmissionEvent> {
    let type_ = HistoryType::from_reason(e.reason.as_deref()?).filter(|t| {
        matches!(
            t,
            HistoryType::AdmissionDenied
                | HistoryType::RollbackAdmitted
                | HistoryType::EvidenceRefused
        )
    })?;
    let at = e
        .event_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))?;
    Some(AdmissionEvent {
        name: e.metadata.name.clone()?,
        type_,
        actor: e.annotations().get(ACTOR_ANNOTATION).cloned(),
        message: crate::insights::history::bounded(e.message.as_deref().unwrap_or_default()),
        at,
    })
}
