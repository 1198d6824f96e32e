//! Settings: secret-safe runtime facts. Names of Secrets and key ids, never
//! their content.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::layout::bare;

/// Runtime facts shown on the Settings page.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub namespace: String,
    pub replica: Option<String>,
    pub signing_key_secret: String,
    pub signing_key_id: String,
    pub public_key_configmap: String,
    pub passport_history: usize,
    pub resync_seconds: u64,
    pub connector_timeout_seconds: u64,
    pub session_ttl_seconds: u64,
    pub webhook: bool,
    pub leader_election: bool,
}

/// The settings page body.
pub fn render(
    s: &Settings,
    trusted: &[&str],
    connectors: &BTreeMap<&'static str, usize>,
) -> Markup {
    html! {
        h2 { "Runtime" }
        div.panel { dl.kv {
            dt { "Version" } dd { (env!("CARGO_PKG_VERSION")) }
            dt { "Operator namespace" } dd { (s.namespace) }
            dt { "This replica" } dd { (s.replica.as_deref().unwrap_or("—")) }
            dt { "Leader election" } dd { @if s.leader_election { "on" } @else { "off (single replica)" } }
            dt { "Admission webhook" } dd { @if s.webhook { "served by this replica" } @else { "off" } }
            dt { "Evaluation interval" } dd { "at most " (s.resync_seconds) "s between evaluations of a gate" }
            dt { "Connector timeout" } dd { (s.connector_timeout_seconds) "s" }
        } }
        h2 { "Signing" }
        div.panel { dl.kv {
            dt { "Signing key id" } dd.mono #key-id { (s.signing_key_id) }
            dt { "Key Secret" } dd.mono { (s.namespace) "/" (s.signing_key_secret) span.muted { " (content never shown)" } }
            dt { "Public key" } dd.mono { "ConfigMap " (s.namespace) "/" (s.public_key_configmap) }
            dt { "Trusted key ids" } dd.mono { (trusted.join(", ")) }
        } }
        h2 { "Retention" }
        div.panel { dl.kv {
            dt { "Passports kept per gate" } dd { (s.passport_history) }
            dt { "Gate history entries" } dd { "20 most recent, on the ReleaseGate status" }
        } }
        h2 { "Authentication" }
        div.panel { dl.kv {
            dt { "Sign-in" } dd { "Kubernetes bearer token (ServiceAccount or OIDC), checked with TokenReview; never stored" }
            dt { "Access" } dd { "SubjectAccessReview per namespace and resource: you see what kubectl would show you" }
            dt { "Session" } dd { (s.session_ttl_seconds) "s, HttpOnly Secure SameSite=Strict cookie" }
        } }
        h2 { "Connectors in use" }
        div.panel {
            @if connectors.is_empty() { p.muted { "No ConnectorScope in the namespaces you can read." } }
            ul { @for (k, n) in connectors { li { (k) ": " (n) " scope(s)" } } }
        }
    }
}

/// The language-model summary's configuration (never its key).
pub fn language_model(described: Option<crate::console::llm::Described>) -> Markup {
    html! {
        h2 { "Language-model summary" }
        div.panel #llm-settings { dl.kv {
            @match described {
                None => { dt { "State" } dd { "off: nothing is sent anywhere" } },
                Some(d) => {
                    dt { "State" } dd { "on: investigations are summarised beside the deterministic one, never changing a decision" }
                    dt { "Endpoint" } dd.mono { (d.url) }
                    dt { "Model" } dd.mono { (d.model) }
                    dt { "API key" } dd { @if d.key { "from a file (content never shown)" } @else { "none" } }
                    dt { "Timeout" } dd { (d.timeout_seconds) "s" }
                },
            }
        } }
    }
}

/// The sign-in page.
pub fn login(error: Option<&str>, nonce: &str, notice: Option<&str>) -> Markup {
    bare(
        "Sign in",
        html! {
            div.login.panel {
                h1 { "Sign in to Release Passport" }
                @if let Some(n) = notice { p.ok role="status" { (n) } }
                @if let Some(e) = error { p.error #login-error role="alert" { (e) } }
                p { "Paste a Kubernetes bearer token. You will see what your RBAC lets you read with kubectl, nothing more." }
                pre.mono { "kubectl create token <serviceaccount> -n <namespace>" }
                form method="post" action="/console/login" {
                    input type="hidden" name="nonce" value=(nonce);
                    label for="token" { "Token" }
                    input #token type="password" name="token" autocomplete="off" required;
                    p { button #sign-in type="submit" { "Sign in" } }
                }
                p.muted { "The token is checked with a TokenReview and is not stored." }
            }
        },
    )
}
