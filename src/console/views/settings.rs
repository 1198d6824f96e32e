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

/// The credential states of one connector's scopes (from their status).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub scopes: usize,
    /// A Secret or ServiceAccount the scope names is missing.
    pub missing: usize,
    /// The source refused the configured identity.
    pub refused: usize,
}

impl Credentials {
    /// Counts `health` (a scope's status, `None` before its first read).
    pub fn count(&mut self, health: Option<crate::api::ConnectorHealth>) {
        use crate::api::ConnectorHealth;
        self.scopes += 1;
        match health {
            Some(ConnectorHealth::CredentialRequired) => self.missing += 1,
            Some(ConnectorHealth::Forbidden) => self.refused += 1,
            _ => {}
        }
    }
}

/// The settings page body.
pub fn render(
    s: &Settings,
    trusted: &[&str],
    connectors: &BTreeMap<&'static str, Credentials>,
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
            @if !connectors.is_empty() {
                table #connector-credentials {
                    thead { tr { th { "Connector" } th { "Scopes" } th { "Credential" } } }
                    tbody { @for (k, c) in connectors { tr {
                        td.mono { (k) }
                        td { (c.scopes) }
                        td {
                            @if c.missing == 0 && c.refused == 0 { span.h-Healthy { "in place" } }
                            @if c.missing > 0 { span.h-bad { (c.missing) " missing" } " " }
                            @if c.refused > 0 { span.h-bad { (c.refused) " refused by the source" } }
                        }
                    } } }
                }
                p.muted { "Credentials are Secrets or ServiceAccounts the scopes reference; their content is never shown." }
            }
        }
    }
}

/// How people sign in: the OpenID Connect provider, when configured (never
/// the client secret).
pub fn sign_in(described: Option<crate::console::oidc::Described>) -> Markup {
    html! {
        h2 { "Identity provider" }
        div.panel #oidc-settings { dl.kv {
            @match described {
                None => { dt { "OpenID Connect" } dd { "off: people sign in with a Kubernetes token" } },
                Some(d) => {
                    dt { "Issuer" } dd.mono #oidc-issuer { (d.issuer) }
                    dt { "Client id" } dd.mono { (d.client_id) }
                    dt { "Scopes" } dd.mono { (d.scopes) }
                    dt { "Client secret" } dd { @if d.confidential { "from a file (content never shown)" } @else { "none: a public client with PKCE" } }
                    dt { "Logout" } dd { "ends the console session and the provider's (RP-initiated logout)" }
                },
            }
        } }
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

/// The sign-in page; `provider`: the host of the OpenID Connect provider
/// to offer beside the token form.
pub fn login(
    error: Option<&str>,
    nonce: &str,
    notice: Option<&str>,
    provider: Option<&str>,
) -> Markup {
    bare(
        "Sign in",
        html! {
            div.login.panel {
                h1 { "Sign in to Release Passport" }
                @if let Some(n) = notice { p.ok role="status" { (n) } }
                @if let Some(e) = error { p.error #login-error role="alert" { (e) } }
                @if let Some(host) = provider {
                    p { a.btn #sign-in-oidc href="/console/oidc/login" { "Sign in with " (host) } }
                    p.muted { "Or paste a token:" }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConnectorHealth;

    #[test]
    fn connector_credential_states_are_counted_and_shown_without_content() {
        let mut prometheus = Credentials::default();
        prometheus.count(Some(ConnectorHealth::Healthy));
        prometheus.count(None);
        let mut pagerduty = Credentials::default();
        pagerduty.count(Some(ConnectorHealth::CredentialRequired));
        pagerduty.count(Some(ConnectorHealth::Forbidden));
        pagerduty.count(Some(ConnectorHealth::Stale));
        assert_eq!(
            pagerduty,
            Credentials {
                scopes: 3,
                missing: 1,
                refused: 1
            }
        );
        let connectors = BTreeMap::from([("prometheus", prometheus), ("pagerduty", pagerduty)]);
        let page = render(&Settings::default(), &[], &connectors).into_string();
        let row = |kind: &str| {
            let at = page
                .find(&format!(">{kind}<"))
                .expect("a row per connector");
            page[at..at + page[at..].find("</tr>").expect("row end")].to_string()
        };
        assert!(row("prometheus").contains("in place"), "{page}");
        let pd = row("pagerduty");
        assert!(
            pd.contains("1 missing") && pd.contains("1 refused by the source"),
            "{pd}"
        );
    }
}
