//! What a reconcile reads from memory besides the gate: its approvals and
//! waivers, its namespace's labels (the platform's minimum mode) and the
//! admission webhook's Events about it. Each kind is a reflector store fed
//! by a watch; a change also re-evaluates the gates it concerns.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, ResourceExt};

use crate::api::{
    ENFORCE_LABEL, HistoryType, ReleaseApproval, ReleaseGate, ReleaseRequest, ReleaseWaiver,
};
use crate::insights::history::AdmissionEvent;

/// `reportingController` of the admission webhook's Events.
pub const WEBHOOK_REPORTER: &str = "releasepassport-webhook";
/// Annotation of a webhook Event naming the authenticated user of the request.
pub const ACTOR_ANNOTATION: &str = "releasepassport.io/actor";

/// The stores, read by every reconcile.
#[derive(Clone)]
pub struct Stores {
    approvals: Store<ReleaseApproval>,
    waivers: Store<ReleaseWaiver>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    events: Store<Event>,
    requests: Store<ReleaseRequest>,
}

/// A stream of gates to re-evaluate.
pub type Triggers = std::pin::Pin<Box<dyn Stream<Item = ObjectRef<ReleaseGate>> + Send>>;

impl Stores {
    /// Starts the watches: the stores, and the streams of gates each change
    /// concerns (hand them to the controller, which drives them).
    pub fn watch(client: &Client, gates: Store<ReleaseGate>) -> (Self, Vec<Triggers>) {
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
        let approval_triggers = watcher(
            Api::<ReleaseApproval>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
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
        .reflect(namespaces_writer)
        .applied_objects()
        .predicate_filter(predicates::labels, Default::default())
        .filter_map(|n| async move { n.ok() })
        .flat_map(move |n| {
            let ns = n.name_any();
            futures::stream::iter(
                by_namespace
                    .state()
                    .into_iter()
                    .filter(|g| g.namespace().as_deref() == Some(ns.as_str()))
                    .map(|g| ObjectRef::from_obj(&*g))
                    .collect::<Vec<_>>(),
            )
        });
        let event_triggers = watcher(
            Api::<Event>::all(client.clone()),
            watcher::Config::default().fields(&format!("reportingComponent={WEBHOOK_REPORTER}")),
        )
        .default_backoff()
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
            approvals,
            waivers,
            namespaces,
            events,
            requests,
        };
        let triggers: Vec<Triggers> = vec![
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
        let _ = tokio::time::timeout(limit, self.approvals.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.waivers.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.namespaces.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.events.wait_until_ready()).await;
        let _ = tokio::time::timeout(limit, self.requests.wait_until_ready()).await;
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
