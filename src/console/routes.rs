//! HTTP routes of the console: sign-in, pages, exports, the simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::Console;
use super::auth::{self, LOGIN_COOKIE, OIDC_COOKIE, SESSION_COOKIE, Session};
use super::simulate;
use super::views::gates::{GatePage, SimulatorResult};
use super::views::layout::{self, Nav, Viewer};
use super::views::passports::SignatureStatus;
use super::views::{audit, gates, integrations, metrics, overview, passports, radar, settings};
use crate::passport::export;

type Shared = State<Arc<Console>>;

#[path = "actions.rs"]
mod actions;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The console's routes, all under `/console`.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/console", get(overview_page))
        .route("/console/", get(overview_page))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/oidc/login", get(oidc_login))
        .route(super::oidc::CALLBACK_PATH, get(oidc_callback))
        .route("/console/passports", get(passport_list))
        .route("/console/passports/{ns}/{name}", get(passport_page))
        .route(
            "/console/passports/{ns}/{name}/export",
            get(passport_export),
        )
        .route("/console/gates", get(gate_list))
        .route("/console/gates/{ns}/{name}", get(gate_page))
        .route("/console/gates/{ns}/{name}/simulate", post(simulate_gate))
        .route("/console/gates/{ns}/{name}/approve", post(actions::approve))
        .route("/console/gates/{ns}/{name}/request", post(actions::request))
        .route("/console/radar", get(radar_page))
        .route("/console/metrics", get(metrics_page))
        .route("/console/metrics.csv", get(metrics_csv))
        .route("/console/integrations", get(integrations_page))
        .route("/console/audit", get(audit_page))
        .route("/console/settings", get(settings_page))
        .route(
            "/console/static/console.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/console/static/console.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A page or an early answer (sign-in redirect, refusal).
type PageResult = Result<Response, Response>;

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

fn refusal(status: StatusCode, message: String) -> Response {
    let body = layout::bare(
        "Not allowed",
        html! { div.login.panel { h1 { "Not allowed" } p.error role="alert" { (message) } p { a href="/console" { "Back to the overview" } } } },
    );
    (status, html_response(body)).into_response()
}

fn html_response(m: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// The session behind a request: an `Authorization: Bearer` header, else the
/// session cookie.
async fn session(console: &Console, headers: &HeaderMap) -> Result<Arc<Session>, Response> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                (
                    StatusCode::UNAUTHORIZED,
                    "Authorization must be `Bearer <token>`\n",
                )
                    .into_response()
            })?;
        return console
            .auth
            .bearer(token)
            .await
            .map_err(|e| (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response());
    }
    auth::cookie(headers, SESSION_COOKIE)
        .and_then(|id| console.auth.session(id))
        .ok_or_else(to_login)
}

fn viewer(s: &Session) -> Viewer<'_> {
    Viewer {
        user: &s.user.name,
        groups: &s.user.groups,
        csrf: &s.csrf,
    }
}

/// Namespaces where the user may list every one of `resources`.
async fn visible(console: &Console, s: &Session, resources: &[&'static str]) -> BTreeSet<String> {
    let mut out = console.state.namespaces();
    for r in resources {
        out = console.auth.visible(s, out, "list", r).await;
        if out.is_empty() {
            break;
        }
    }
    out
}

async fn require(
    console: &Console,
    s: &Session,
    ns: &str,
    verb: &'static str,
    resource: &'static str,
) -> Result<(), Response> {
    if console.auth.can(s, ns, verb, resource).await {
        Ok(())
    } else {
        Err(refusal(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not {verb} {resource} in namespace {ns}.",
                s.user.name
            ),
        ))
    }
}

fn not_found(what: &str) -> Response {
    refusal(StatusCode::NOT_FOUND, format!("{what} not found."))
}

// ---- sign-in -------------------------------------------------------------

#[derive(Deserialize)]
struct LoginQuery {
    logged_out: Option<String>,
}

async fn login_page(State(console): Shared, Query(q): Query<LoginQuery>) -> Response {
    login_form(
        &console,
        None,
        q.logged_out.is_some().then_some("You are signed out."),
    )
}

fn login_form(console: &Console, error: Option<&str>, notice: Option<&str>) -> Response {
    let nonce = match auth::random_token() {
        Ok(n) => n,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let provider = console.oidc.as_ref().map(|o| o.issuer_host());
    let mut r = html_response(settings::login(error, &nonce, notice, provider));
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(
        LOGIN_COOKIE,
        &nonce,
        std::time::Duration::from_secs(600),
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    if error.is_some() {
        *r.status_mut() = StatusCode::UNAUTHORIZED;
    }
    r
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    nonce: String,
}

async fn login(
    State(console): Shared,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !auth::same_secret(expected, &form.nonce) {
        return login_form(
            &console,
            Some("The sign-in form expired; please try again."),
            None,
        );
    }
    match sign_in(&console, &form.token, false).await {
        Ok(cookies) => {
            let mut r = Redirect::to("/console").into_response();
            append_cookies(&mut r, cookies);
            r
        }
        Err(e) => login_form(&console, Some(&e), None),
    }
}

/// Reviews a token and starts a session with it; returns the cookies that
/// carry the session (and clear the sign-in's own).
async fn sign_in(console: &Console, token: &str, via_oidc: bool) -> Result<[String; 3], String> {
    let user = console
        .auth
        .review(token)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(user = %user.name, oidc = via_oidc, "console: signed in");
    let (id, _) = console
        .auth
        .start(user, token, via_oidc)
        .map_err(|e| e.to_string())?;
    Ok([
        auth::set_cookie(SESSION_COOKIE, &id, console.auth.ttl()),
        auth::clear_cookie(LOGIN_COOKIE),
        auth::clear_cookie(OIDC_COOKIE),
    ])
}

fn append_cookies(r: &mut Response, cookies: impl IntoIterator<Item = String>) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// A page that moves the browser on to `url` by itself (a same-document
/// navigation rather than a redirect: the session cookie is SameSite=Strict
/// and would not follow a redirect chain that began at the identity
/// provider, and the console's `form-action 'self'` would stop a logout
/// form's redirect to the provider).
fn continue_to(title: &str, message: &str, url: &str) -> Response {
    let body = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content={ "0;url=" (url) };
                title { (title) " · Release Passport" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body { main #main { div.login.panel {
                h1 { (title) }
                p #continue-message { (message) }
                p { a #continue href=(url) { "Continue" } }
            } } }
        }
    };
    html_response(body)
}

// ---- sign-in with the OpenID Connect provider -----------------------------

async fn oidc_login(State(console): Shared) -> Response {
    let Some(oidc) = &console.oidc else {
        return not_found("OpenID Connect sign-in");
    };
    match oidc.begin().await {
        Ok(begun) => {
            let mut r = Redirect::to(&begun.url).into_response();
            append_cookies(
                &mut r,
                [auth::set_lax_cookie(
                    OIDC_COOKIE,
                    &begun.state,
                    std::time::Duration::from_secs(600),
                )],
            );
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "console: OpenID Connect sign-in could not start");
            login_form(&console, Some(&e.to_string()), None)
        }
    }
}

async fn oidc_callback(
    State(console): Shared,
    headers: HeaderMap,
    Query(cb): Query<super::oidc::Callback>,
) -> Response {
    let Some(oidc) = &console.oidc else {
        return not_found("OpenID Connect sign-in");
    };
    let browser_state = auth::cookie(&headers, OIDC_COOKIE).unwrap_or_default();
    let id_token = match oidc.finish(&cb, browser_state).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "console: OpenID Connect sign-in failed");
            return login_form(&console, Some(&e.to_string()), None);
        }
    };
    match sign_in(&console, &id_token, true).await {
        Ok(cookies) => {
            let mut r = continue_to("Signed in", "You are signed in.", "/console");
            append_cookies(&mut r, cookies);
            r
        }
        Err(e) => login_form(&console, Some(&e), None),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(console): Shared,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(id) = auth::cookie(&headers, SESSION_COOKIE) else {
        return to_login();
    };
    let Some(s) = console.auth.session(id) else {
        return to_login();
    };
    if !auth::same_secret(&s.csrf, &form.csrf) {
        return refusal(
            StatusCode::FORBIDDEN,
            "The form's CSRF token does not match this session.".into(),
        );
    }
    console.auth.end(id);
    tracing::info!(user = %s.user.name, "console: signed out");
    // Signed in at the provider: end its session too.
    let provider_logout = match (&console.oidc, &s.credential) {
        (Some(oidc), Some(token)) if s.via_oidc => oidc.logout_url(token.expose()).await,
        _ => None,
    };
    let mut r = match provider_logout {
        Some(url) => continue_to(
            "Signing out",
            "You are signed out of the console; your identity provider ends its session next.",
            &url,
        ),
        None => Redirect::to(super::oidc::LOGGED_OUT_PATH).into_response(),
    };
    append_cookies(&mut r, [auth::clear_cookie(SESSION_COOKIE)]);
    r
}

// ---- pages ---------------------------------------------------------------

fn respond(title: &str, nav: Nav, s: &Session, body: Markup) -> Response {
    html_response(layout::page(title, nav, &viewer(s), body))
}

async fn overview_page(State(console): Shared, headers: HeaderMap) -> PageResult {
    let s = session(&console, &headers).await?;
    let ns = visible(&console, &s, &["releasegates", "passports"]).await;
    Ok(respond(
        "Overview",
        Nav::Overview,
        &s,
        overview::render(&console.state, &ns),
    ))
}

async fn passport_list(
    State(console): Shared,
    headers: HeaderMap,
    Query(q): Query<passports::ListQuery>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    let ns = visible(&console, &s, &["passports"]).await;
    Ok(respond(
        "Releases",
        Nav::Releases,
        &s,
        passports::list(&console.state, &ns, &q),
    ))
}

/// The passport page's signature line: the envelope verified with the
/// trusted keys, and the readable fields compared with the signed document.
fn signature_status(
    spec: &crate::api::PassportSpec,
    keys: &crate::passport::VerifyingKeySet,
) -> SignatureStatus {
    match crate::passport::verify(spec, keys) {
        Ok(v) if crate::passport::attestation::readable_copy_matches(spec, &v.passport) => {
            SignatureStatus::Verified {
                key_id: v.key_id,
                subjects: v.subjects,
            }
        }
        Ok(_) => SignatureStatus::Failed {
            check: "ReadableCopyDiffers".into(),
            message: "the envelope verifies, but the fields shown beside it differ from the signed document; trust only the signed document (export the attestation)".into(),
        },
        Err(e) => SignatureStatus::Failed {
            check: e.check().to_string(),
            message: e.to_string(),
        },
    }
}

async fn passport_page(
    State(console): Shared,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    require(&console, &s, &ns, "get", "passports").await?;
    let p = console
        .state
        .passport(&ns, &name)
        .ok_or_else(|| not_found(&format!("Passport {ns}/{name}")))?;
    let signature = signature_status(&p.spec, &console.state.keys());
    let investigation = investigation(&console, &p);
    let summary = match (&console.llm, &investigation) {
        (Some(llm), Some(inv)) => Some(llm.summarize(&format!("{ns}/{name}"), inv).await),
        _ => None,
    };
    let title = format!("{} {}", p.spec.service, p.spec.release);
    Ok(respond(
        &title,
        Nav::Releases,
        &s,
        passports::detail(
            &p,
            &signature,
            investigation.as_ref().map(|i| (i, summary.as_ref())),
        ),
    ))
}

/// The investigation of a passport that does not allow promotion, against
/// the earlier passports of its gate.
fn investigation(
    console: &Console,
    p: &crate::api::Passport,
) -> Option<crate::insights::Investigation> {
    if p.spec.decision.allows_promotion() {
        return None;
    }
    let key = crate::insights::passport_gate_key(p);
    let namespaces = BTreeSet::from([key.0.to_string()]);
    let history = console.state.passports_in(&namespaces);
    let same_gate: Vec<&crate::api::PassportSpec> = history
        .iter()
        .filter(|o| crate::insights::passport_gate_key(o) == key)
        .map(|o| &o.spec)
        .collect();
    Some(crate::insights::investigate(&p.spec, &same_gate))
}

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

async fn passport_export(
    State(console): Shared,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ExportQuery>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    require(&console, &s, &ns, "get", "passports").await?;
    let p = console
        .state
        .passport(&ns, &name)
        .ok_or_else(|| not_found(&format!("Passport {ns}/{name}")))?;
    let failed = |e: String| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("export failed: {e}\n"),
        )
            .into_response()
    };
    let value = serde_json::to_value(&p.spec).map_err(|e| failed(e.to_string()))?;
    let doc = export::prepare(&value).map_err(|e| failed(e.to_string()))?;
    let (body, content_type, ext): (Vec<u8>, &str, &str) =
        match q.format.as_deref().unwrap_or("json") {
            "json" => (
                export::to_json(&doc)
                    .map_err(|e| failed(e.to_string()))?
                    .into_bytes(),
                "application/json",
                "json",
            ),
            "markdown" | "md" => (
                export::to_markdown(&doc).into_bytes(),
                "text/markdown; charset=utf-8",
                "md",
            ),
            "csv" => (
                export::to_csv(&doc).into_bytes(),
                "text/csv; charset=utf-8",
                "csv",
            ),
            "bundle" => (
                export::to_bundle(&doc, &console.public_key_pem)
                    .map_err(|e| failed(e.to_string()))?,
                "application/gzip",
                "tar.gz",
            ),
            "dsse" => (
                export::to_dsse(&doc)
                    .map_err(|e| failed(e.to_string()))?
                    .into_bytes(),
                "application/jsonl",
                "intoto.jsonl",
            ),
            other => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unknown export format {other:?}: use json, markdown, csv, bundle or dsse\n"
                    ),
                )
                    .into_response());
            }
        };
    tracing::info!(user = %s.user.name, namespace = %ns, passport = %name, format = ext, "console: export");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}

async fn gate_list(State(console): Shared, headers: HeaderMap) -> PageResult {
    let s = session(&console, &headers).await?;
    let ns = visible(&console, &s, &["releasegates"]).await;
    Ok(respond(
        "Gates",
        Nav::Gates,
        &s,
        gates::list(&console.state, &ns),
    ))
}

#[derive(Deserialize)]
struct GateQuery {
    /// The action just taken (`approved`), for its notice.
    done: Option<String>,
}

async fn gate_page(
    State(console): Shared,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<GateQuery>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    let done = q.done.as_deref();
    render_gate(&console, &s, &ns, &name, None, SimulatorResult::None, done).await
}

async fn render_gate(
    console: &Console,
    s: &Session,
    ns: &str,
    name: &str,
    policy_text: Option<String>,
    result: SimulatorResult,
    done: Option<&str>,
) -> PageResult {
    require(console, s, ns, "get", "releasegates").await?;
    let gate = console
        .state
        .gate(ns, name)
        .ok_or_else(|| not_found(&format!("ReleaseGate {ns}/{name}")))?;
    let can_policy = console.auth.can(s, ns, "get", "policies").await;
    let policy = can_policy
        .then(|| console.state.policy(ns, &gate.spec.policy_ref.name))
        .flatten();
    let passports = if console.auth.can(s, ns, "list", "passports").await {
        console.state.passports_of(ns, name)
    } else {
        Vec::new()
    };
    let text = policy_text.unwrap_or_else(|| {
        policy
            .as_ref()
            .and_then(|p| serde_saphyr::to_string(&p.spec).ok())
            .unwrap_or_default()
    });
    let history = audit::gate_history(&gate);
    let actions = actions::panel(console, s, &gate, done).await;
    let page = GatePage {
        gate: &gate,
        policy: policy.as_deref(),
        passports: &passports,
        csrf: &s.csrf,
        policy_text: &text,
        result,
        history,
        actions,
    };
    Ok(respond(
        &format!("Gate {name}"),
        Nav::Gates,
        s,
        gates::detail(&page),
    ))
}

#[derive(Deserialize)]
struct SimulateForm {
    csrf: String,
    policy: String,
}

async fn simulate_gate(
    State(console): Shared,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    Form(form): Form<SimulateForm>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    let from_header = headers.contains_key(header::AUTHORIZATION);
    if !from_header && !auth::same_secret(&s.csrf, &form.csrf) {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "The form's CSRF token does not match this session; reload the page and try again."
                .into(),
        ));
    }
    require(&console, &s, &ns, "get", "releasegates").await?;
    require(&console, &s, &ns, "get", "policies").await?;
    let gate = console
        .state
        .gate(&ns, &name)
        .ok_or_else(|| not_found(&format!("ReleaseGate {ns}/{name}")))?;
    let result = match simulate::parse_policy(&form.policy) {
        Err(e) => SimulatorResult::Failed(e),
        Ok(spec) => {
            let now = console.now();
            let gathered = match &console.connectors {
                Some(c) => simulate::gather(c, &console.state, &gate, now).await,
                None => simulate::Gathered {
                    evidence: Vec::new(),
                    notes: vec!["live evidence is not available here".into()],
                },
            };
            let actor = format!("console:{}", s.user.name);
            let current = gate
                .status
                .as_ref()
                .and_then(|st| st.passport_name.as_deref())
                .and_then(|p| console.state.passport(&ns, p));
            match simulate::evaluate(
                &gate.spec.policy_ref.name,
                &spec,
                &gate,
                current.as_ref().map(|p| &p.spec),
                &gathered.evidence,
                now,
                &actor,
            ) {
                Ok(evaluation) => {
                    tracing::info!(user = %s.user.name, namespace = %ns, gate = %name, decision = %evaluation.passport.decision, "console: simulation");
                    SimulatorResult::Ran {
                        evaluation: Box::new(evaluation),
                        notes: gathered.notes,
                    }
                }
                Err(e) => SimulatorResult::Failed(e),
            }
        }
    };
    render_gate(&console, &s, &ns, &name, Some(form.policy), result, None).await
}

async fn radar_page(State(console): Shared, headers: HeaderMap) -> PageResult {
    let s = session(&console, &headers).await?;
    let ns = visible(
        &console,
        &s,
        &["releasegates", "passports", "connectorscopes"],
    )
    .await;
    Ok(respond(
        "Radar",
        Nav::Radar,
        &s,
        radar::render(&console.state, &ns, console.now()),
    ))
}

#[derive(Deserialize)]
struct MetricsQuery {
    window: Option<String>,
}

async fn metrics_page(
    State(console): Shared,
    headers: HeaderMap,
    Query(q): Query<MetricsQuery>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    let ns = visible(&console, &s, &["releasegates", "passports"]).await;
    let days = window_days(q.window.as_deref());
    Ok(respond(
        "Metrics",
        Nav::Metrics,
        &s,
        metrics::render(&console.state, &ns, console.now(), days),
    ))
}

/// `?window=30d` (default), from 1 to 365 days.
fn window_days(window: Option<&str>) -> i64 {
    window
        .and_then(|w| w.trim_end_matches('d').parse::<i64>().ok())
        .unwrap_or(30)
        .clamp(1, 365)
}

/// The service scorecards of the Metrics page as CSV
/// (`insights::scorecards_csv`), for the namespaces the viewer may read.
async fn metrics_csv(
    State(console): Shared,
    headers: HeaderMap,
    Query(q): Query<MetricsQuery>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    let ns = visible(&console, &s, &["releasegates", "passports"]).await;
    let days = window_days(q.window.as_deref());
    let m = metrics::compute(&console.state, &ns, console.now(), days);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"scorecards.csv\"",
            ),
        ],
        crate::insights::scorecards_csv(&m),
    )
        .into_response())
}

async fn integrations_page(State(console): Shared, headers: HeaderMap) -> PageResult {
    let s = session(&console, &headers).await?;
    let ns = visible(&console, &s, &["connectorscopes"]).await;
    Ok(respond(
        "Integrations",
        Nav::Integrations,
        &s,
        integrations::render(&console.state, &ns),
    ))
}

#[derive(Deserialize)]
struct AuditQuery {
    format: Option<String>,
    namespace: Option<String>,
}

async fn audit_page(
    State(console): Shared,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    let s = session(&console, &headers).await?;
    let mut ns = visible(&console, &s, &["releasegates"]).await;
    if let Some(only) = q.namespace.as_deref().filter(|n| !n.is_empty()) {
        ns.retain(|n| n == only);
    }
    let events = audit::collect(&console.state, &ns);
    match q.format.as_deref() {
        None | Some("html") => Ok(respond(
            "Audit log",
            Nav::Audit,
            &s,
            audit::render(&events, q.namespace.as_deref()),
        )),
        Some("json") => Ok((
            [
                (header::CONTENT_TYPE, "application/json"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit.json\"",
                ),
            ],
            crate::insights::audit_json(&events),
        )
            .into_response()),
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit.csv\"",
                ),
            ],
            crate::insights::audit_csv(&events),
        )
            .into_response()),
        Some(other) => Err((
            StatusCode::BAD_REQUEST,
            format!("unknown format {other:?}: use html, json or csv\n"),
        )
            .into_response()),
    }
}

async fn settings_page(State(console): Shared, headers: HeaderMap) -> PageResult {
    let s = session(&console, &headers).await?;
    let ns = visible(&console, &s, &["connectorscopes"]).await;
    let mut connectors: BTreeMap<&'static str, settings::Credentials> = BTreeMap::new();
    for scope in console.state.scopes_in(&ns) {
        connectors
            .entry(scope.spec.connector.as_str())
            .or_default()
            .count(scope.status.as_ref().and_then(|st| st.health));
    }
    let keys = console.state.keys();
    let trusted = keys.key_ids();
    Ok(respond(
        "Settings",
        Nav::Settings,
        &s,
        html! {
            (settings::render(&console.settings, &trusted, &connectors))
            (settings::sign_in(console.oidc.as_ref().map(|o| o.describe())))
            (settings::language_model(console.llm.as_ref().map(|l| l.describe())))
        },
    ))
}
