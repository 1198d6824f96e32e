//! Actions taken in the console **as the signed-in person**: the object is
//! created with a client carrying their own token ([`crate::console::acting`]),
//! so the apiserver authenticates them, stamps them as the author and
//! applies RBAC and the trust model's admission policies exactly as for
//! `kubectl`. The console only adds what a browser needs: buttons shown
//! where a SubjectAccessReview allows, a CSRF check on every POST, and a
//! record of each action (an Event on the gate, written by the operator,
//! and a log line) once the apiserver has accepted it.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource as _, ResourceExt as _};
use maud::Markup;
use serde::Deserialize;

use super::{PageResult, Shared, not_found, refusal, require, session};
use crate::api::{ReleaseApproval, ReleaseGate, ReleaseRequest, ReleaseRequestSpec, RequestType};
use crate::console::views::actions::{self as view, Allowed};
use crate::console::views::layout::gate_href;
use crate::console::{Console, acting, auth, auth::Session};

/// The reporting component of the Events the console writes.
const REPORTER: &str = "releasepassport-console";
/// How long the apiserver may take to answer the person's create.
const CREATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Creates `object` in `ns` as the person, within [`CREATE_TIMEOUT`].
async fn create_as<K>(client: kube::Client, ns: &str, object: &K, what: &str) -> Result<K, Response>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api = Api::<K>::namespaced(client, ns);
    match tokio::time::timeout(CREATE_TIMEOUT, api.create(&PostParams::default(), object)).await {
        Ok(created) => created.map_err(|e| apiserver_refusal(what, e)),
        Err(_) => Err(refusal(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "The Kubernetes API server did not answer within {} s; your {what} may not have been created. Reload the page to see.",
                CREATE_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// What the person may do on `gate`, asked of the apiserver.
async fn allowed(console: &Console, s: &Session, ns: &str, gate: &str) -> Allowed {
    let (approve, create, request) = futures::join!(
        console.auth.can_on(s, ns, "approve", "releasegates", gate),
        console.auth.can(s, ns, "create", "releaseapprovals"),
        console.auth.can(s, ns, "create", "releaserequests"),
    );
    Allowed {
        approve: approve && create,
        request,
    }
}

/// The actions panel of a gate page, for this person.
pub(super) async fn panel(
    console: &Console,
    s: &Session,
    gate: &ReleaseGate,
    done: Option<&str>,
) -> Markup {
    let ns = gate.namespace().unwrap_or_default();
    let name = gate.name_any();
    let allowed = allowed(console, s, &ns, &name).await;
    let status = gate.status.clone().unwrap_or_default();
    view::panel(&view::Panel {
        namespace: &ns,
        gate: &name,
        digest: crate::engine::image_digest(&gate.spec.artifact.image),
        decision: status.decision,
        passport: status.passport_name.as_deref(),
        history: &status.history,
        csrf: &s.csrf,
        allowed,
        done,
    })
}

/// A POST from a browser must echo the session's CSRF token; a request
/// with an `Authorization` header is not sent by a browser on its own.
fn csrf_refusal(headers: &HeaderMap, s: &Session, csrf: &str) -> Option<Response> {
    if headers.contains_key(header::AUTHORIZATION) || auth::same_secret(&s.csrf, csrf) {
        return None;
    }
    Some(refusal(
        StatusCode::FORBIDDEN,
        "The form's CSRF token does not match this session; reload the page and try again. Nothing was created."
            .into(),
    ))
}

/// The apiserver's answer to the person's create, as a page.
fn apiserver_refusal(kind: &str, e: kube::Error) -> Response {
    match e {
        kube::Error::Api(a) => refusal(
            StatusCode::from_u16(a.code).unwrap_or(StatusCode::BAD_GATEWAY),
            format!(
                "The Kubernetes API server refused your {kind}: {}",
                a.message
            ),
        ),
        e => refusal(
            StatusCode::BAD_GATEWAY,
            format!(
                "Creating your {kind} failed: {}",
                crate::passport::redact::redact_str(&e.to_string())
            ),
        ),
    }
}

/// Records an accepted action as an Event on the gate.
async fn record(console: &Console, gate: &ReleaseGate, reason: &str, note: String) {
    let recorder = Recorder::new(
        console.client.clone(),
        Reporter {
            controller: REPORTER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Console".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &gate.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "console: recording the action as an Event failed");
    }
}

fn optional(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The gate an action is about, if the person may read it.
async fn gate_for(
    console: &Console,
    s: &Session,
    ns: &str,
    name: &str,
) -> Result<std::sync::Arc<ReleaseGate>, Response> {
    require(console, s, ns, "get", "releasegates").await?;
    console
        .state
        .gate(ns, name)
        .ok_or_else(|| not_found(&format!("ReleaseGate {ns}/{name}")))
}

#[derive(Deserialize)]
pub(super) struct ApproveForm {
    csrf: String,
    /// The digest the person saw on the page.
    digest: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    comment: String,
}

/// `POST /console/gates/{ns}/{name}/approve`: a ReleaseApproval of the
/// gate's current release and digest, created as the person.
pub(super) async fn approve(
    State(console): Shared,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    Form(form): Form<ApproveForm>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    if let Some(refused) = csrf_refusal(&headers, &s, &form.csrf) {
        return Err(refused);
    }
    let gate = gate_for(&console, &s, &ns, &name).await?;
    if !allowed(&console, &s, &ns, &name).await.approve {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not approve ReleaseGate {ns}/{name}: that needs the approve verb on it and create on releaseapprovals (the approver role).",
                s.user.name
            ),
        ));
    }
    let digest = crate::engine::image_digest(&gate.spec.artifact.image).ok_or_else(|| {
        refusal(
            StatusCode::CONFLICT,
            format!("ReleaseGate {ns}/{name}: its artifact is not pinned by digest, so it cannot be approved."),
        )
    })?;
    if digest != form.digest {
        return Err(refusal(
            StatusCode::CONFLICT,
            format!(
                "ReleaseGate {ns}/{name} now names digest {digest}, not the {} you approved on the page; reload it and approve again.",
                form.digest
            ),
        ));
    }
    let client = acting::client_for(&console.kube_config, s.credential.as_ref())
        .map_err(|e| refusal(StatusCode::UNAUTHORIZED, e.to_string()))?;
    let object = crate::cli::grant::approval(
        &name,
        &gate.spec.release,
        digest,
        optional(&form.reference),
        optional(&form.comment),
    );
    let created: ReleaseApproval = create_as(client, &ns, &object, "approval").await?;
    let approval = created.name_any();
    tracing::info!(user = %s.user.name, namespace = %ns, gate = %name, approval = %approval, "console: approved");
    record(
        &console,
        &gate,
        "ApprovedInConsole",
        format!(
            "{} approved {} ({digest}) through the console: ReleaseApproval {ns}/{approval}",
            created.spec.approver, gate.spec.release
        ),
    )
    .await;
    Ok(Redirect::to(&format!("{}?done=approved#actions", gate_href(&ns, &name))).into_response())
}

#[derive(Deserialize)]
pub(super) struct RequestForm {
    csrf: String,
    #[serde(rename = "type")]
    type_: RequestType,
    #[serde(default)]
    passport: String,
    #[serde(default)]
    body: String,
}

/// `POST /console/gates/{ns}/{name}/request`: a ReleaseRequest (re-run,
/// comment, approval request) created as the person.
pub(super) async fn request(
    State(console): Shared,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    Form(form): Form<RequestForm>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    if let Some(refused) = csrf_refusal(&headers, &s, &form.csrf) {
        return Err(refused);
    }
    let gate = gate_for(&console, &s, &ns, &name).await?;
    if !allowed(&console, &s, &ns, &name).await.request {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not create releaserequests in namespace {ns}: re-running, commenting and requesting approval need it (the approver or pipeline role).",
                s.user.name
            ),
        ));
    }
    let body = optional(&form.body);
    if form.type_ == RequestType::Comment && body.is_none() {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "A comment needs some text.".into(),
        ));
    }
    let client = acting::client_for(&console.kube_config, s.credential.as_ref())
        .map_err(|e| refusal(StatusCode::UNAUTHORIZED, e.to_string()))?;
    let mut object = ReleaseRequest::new(
        "",
        ReleaseRequestSpec {
            gate: name.clone(),
            type_: form.type_,
            passport: optional(&form.passport),
            body,
            requester: String::new(),
        },
    );
    object.metadata.name = None;
    object.metadata.generate_name = Some(format!("{name}-"));
    let created: ReleaseRequest = create_as(client, &ns, &object, "request").await?;
    let kind = form.type_.as_str();
    tracing::info!(user = %s.user.name, namespace = %ns, gate = %name, request = %created.name_any(), kind, "console: request");
    record(
        &console,
        &gate,
        &format!("{kind}InConsole"),
        format!(
            "{} created a {kind} request through the console: ReleaseRequest {ns}/{}",
            created.spec.requester,
            created.name_any()
        ),
    )
    .await;
    Ok(Redirect::to(&format!("{}?done={kind}#actions", gate_href(&ns, &name))).into_response())
}
