//! ReleaseRequests (re-run, comment, approval request): each is handled
//! once, by the reconcile its creation triggers. A re-run is that
//! reconcile itself (evidence collected and the gate evaluated again now);
//! every request becomes a history entry authored by its requester (and so
//! an Event); the request's status then says it was handled.

use std::sync::Arc;

use jiff::Timestamp;
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::api::{GateHistoryEntry, HistoryType, ReleaseRequest, RequestType};
use crate::insights::history;

use super::{Context, MANAGER};

/// The requests of gate `namespace/gate` the operator has not handled yet,
/// oldest first.
pub fn pending(ctx: &Context, namespace: &str, gate: &str) -> Vec<Arc<ReleaseRequest>> {
    let mut pending: Vec<Arc<ReleaseRequest>> = ctx
        .stores
        .requests_of(namespace, gate)
        .into_iter()
        .filter(|r| r.status.as_ref().is_none_or(|s| s.handled_at.is_none()))
        .collect();
    pending.sort_by(|a, b| {
        (a.creation_timestamp(), a.name_any()).cmp(&(b.creation_timestamp(), b.name_any()))
    });
    pending
}

/// The history entry of a request, authored by its requester.
pub fn entry(r: &ReleaseRequest, passport: &str, now: Timestamp) -> GateHistoryEntry {
    let who = if r.spec.requester.is_empty() {
        "someone"
    } else {
        r.spec.requester.as_str()
    };
    let body = r
        .spec
        .body
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());
    let (type_, message) = match r.spec.type_ {
        RequestType::Rerun => (
            HistoryType::RerunRequested,
            format!(
                "{who} asked for a new evaluation (ReleaseRequest {})",
                r.name_any()
            ),
        ),
        RequestType::Comment => (HistoryType::Commented, body.unwrap_or_default().to_string()),
        RequestType::ApprovalRequest => (
            HistoryType::ApprovalRequested,
            match body {
                Some(b) => format!("{who} asks the approvers to approve this release: {b}"),
                None => format!("{who} asks the approvers to approve this release"),
            },
        ),
    };
    GateHistoryEntry {
        at: now,
        type_,
        decision: None,
        previous_decision: None,
        passport: Some(
            r.spec
                .passport
                .clone()
                .unwrap_or_else(|| passport.to_string()),
        ),
        actor: (!r.spec.requester.is_empty()).then(|| r.spec.requester.clone()),
        message: history::bounded(&message),
    }
}

/// Marks the requests handled, naming the Passport on record after them.
pub async fn handled(
    ctx: &Context,
    namespace: &str,
    requests: &[Arc<ReleaseRequest>],
    passport: &str,
    now: Timestamp,
) {
    let api: Api<ReleaseRequest> = Api::namespaced(ctx.client.clone(), namespace);
    for r in requests {
        let message = match r.spec.type_ {
            RequestType::Rerun => format!("Evaluated again; Passport {passport} is on record"),
            RequestType::Comment => "Recorded in the gate's history".to_string(),
            RequestType::ApprovalRequest => {
                "Recorded in the gate's history and announced as an Event".to_string()
            }
        };
        let body = json!({
            "apiVersion": "releasepassport.io/v1alpha1",
            "kind": "ReleaseRequest",
            "status": {"handledAt": now, "passport": passport, "message": message},
        });
        if let Err(e) = api
            .patch_status(
                &r.name_any(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            tracing::warn!(error = %e, request = %r.name_any(), "writing the ReleaseRequest's status failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ReleaseRequestSpec;

    fn request(type_: RequestType, body: Option<&str>) -> ReleaseRequest {
        let mut r = ReleaseRequest::new(
            "payment-api-production-x1",
            ReleaseRequestSpec {
                gate: "payment-api-production".into(),
                type_,
                passport: None,
                body: body.map(String::from),
                requester: "alice".into(),
            },
        );
        r.metadata.namespace = Some("payments".into());
        r
    }

    #[test]
    fn each_request_is_an_entry_authored_by_its_requester() {
        let now = Timestamp::UNIX_EPOCH;
        let c = entry(
            &request(RequestType::Comment, Some(" Looks good to me ")),
            "pp-1",
            now,
        );
        assert_eq!(
            (
                c.type_,
                c.actor.as_deref(),
                c.message.as_str(),
                c.passport.as_deref()
            ),
            (
                HistoryType::Commented,
                Some("alice"),
                "Looks good to me",
                Some("pp-1")
            )
        );
        let r = entry(&request(RequestType::Rerun, None), "pp-1", now);
        assert_eq!(r.type_, HistoryType::RerunRequested);
        assert!(r.message.starts_with("alice asked for a new evaluation"));
        let a = entry(
            &request(RequestType::ApprovalRequest, Some("CHG-1042 is linked")),
            "pp-1",
            now,
        );
        assert_eq!(a.type_, HistoryType::ApprovalRequested);
        assert!(a.message.ends_with(": CHG-1042 is linked"), "{}", a.message);
    }

    #[test]
    fn a_comment_is_redacted_like_every_history_message() {
        let c = entry(
            &request(
                RequestType::Comment,
                Some(
                    "token: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
                ),
            ),
            "pp-1",
            Timestamp::UNIX_EPOCH,
        );
        assert!(!c.message.contains("eyJhbGciOiJIUzI1NiJ9"), "{}", c.message);
    }
}
