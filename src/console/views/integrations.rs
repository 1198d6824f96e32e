//! Integrations: the connector matrix (what each provider can do, honestly:
//! the same table as `releasepassport connectors` and docs/connectors.md)
//! and the health of every configured ConnectorScope. Never a secret value:
//! a scope's `secretRef` is shown by Secret name and key only.

use std::collections::BTreeSet;

use kube::ResourceExt;
use maud::{Markup, html};

use super::layout::{empty, maybe_time};
use crate::api::ConnectorHealth;
use crate::connectors::matrix;
use crate::console::state::ConsoleState;

/// The integrations page body.
pub fn render(state: &ConsoleState, visible: &BTreeSet<String>) -> Markup {
    let scopes = state.scopes_in(visible);
    let candidates = state.detected_in(visible);
    let detected = crate::connectors::detect::Detection {
        installed: Vec::new(),
        candidates: candidates.clone(),
    }
    .detected();
    html! {
        h2 { "Connector matrix" }
        div.panel {
            table #matrix {
                thead { tr { th { "Connector" } th { "Category" } th { "Status" } th { "ConnectorScope connector" } th { "Credential" } th { "Evidence" } th { "Configured scopes" } } }
                tbody { @for row in matrix::view(&detected) {
                    @let n = scopes.iter().filter(|s| row.connector_kinds.contains(&s.spec.connector.as_str())).count();
                    @let needs_credential = scopes.iter().any(|s| row.connector_kinds.contains(&s.spec.connector.as_str())
                        && s.status.as_ref().and_then(|st| st.health) == Some(ConnectorHealth::CredentialRequired));
                    tr {
                        td { strong { (row.connector) } }
                        td { (row.category) }
                        td { (row.status) @if needs_credential { br; span.h-bad { "a scope is missing its credential" } } }
                        td.mono { (row.connector_kinds.join(", ")) }
                        td { (row.credential) }
                        td { (row.evidence) }
                        td { (n) }
                    }
                } }
            }
        }
        h2 { "Configured scopes" }
        div.panel {
            @if scopes.is_empty() { (empty("No ConnectorScope in the namespaces you can read.")) } @else {
                table #scopes {
                    thead { tr { th { "Scope" } th { "Connector" } th { "Support" } th { "Identity" } th { "Health" } th { "Last observed" } th { "Message" } } }
                    tbody { @for s in &scopes {
                        @let st = s.status.clone().unwrap_or_default();
                        tr {
                            td { (s.namespace().unwrap_or_default()) "/" (s.name_any()) }
                            td { (s.spec.connector.as_str()) }
                            td { (matrix::support_of(s.spec.connector).label()) }
                            td.mono {
                                @if let Some(sa) = &s.spec.service_account_name { "ServiceAccount " (sa) br; }
                                @if let Some(r) = &s.spec.secret_ref { "Secret " (r.name) " (key " (r.key) ")" }
                                @if s.spec.service_account_name.is_none() && s.spec.secret_ref.is_none() { span.muted { "operator" } }
                            }
                            td class=(if st.health == Some(ConnectorHealth::Healthy) { "h-Healthy" } else { "h-bad" }) {
                                (st.health.map(|h| h.as_str()).unwrap_or("Unknown"))
                            }
                            td { (maybe_time(st.last_observed_at)) }
                            td { (st.message.unwrap_or_default()) }
                        }
                    } }
                }
            }
        }
        h2 { "Detected candidates" }
        div.panel {
            p.muted { "What your namespaces already run that a connector could read, as each namespace's reader ServiceAccount sees it (refreshed every 5 minutes). Apply a candidate's ConnectorScope and Role to make it a live source; the same list comes from " code { "releasepassport connectors --detect" } "." }
            @if candidates.is_empty() { (empty("Nothing detected in the namespaces you can read (detection runs as the ServiceAccount their ConnectorScopes name).")) } @else {
                table #candidates {
                    thead { tr { th { "Object" } th { "Connector" } th { "Scope" } th { "ConnectorScope and Role to apply" } } }
                    tbody { @for c in &candidates {
                        tr {
                            td { (c.kind) " " (c.namespace) "/" (c.name) }
                            td.mono { (c.connector) }
                            td {
                                @match &c.configured_by {
                                    Some(name) => { (c.scope_namespace) "/" (name) " (configured)" }
                                    None => { (c.scope_namespace) " (candidate)" }
                                }
                            }
                            td { @if c.configured_by.is_none() {
                                pre.mono { (candidate_yaml(c)) }
                            } }
                        }
                    } }
                }
            }
        }
    }
}

/// The candidate's ConnectorScope, Role and RoleBinding as YAML documents.
fn candidate_yaml(c: &crate::connectors::detect::Candidate) -> String {
    std::iter::once(&c.connector_scope)
        .chain(c.rbac.iter())
        .filter_map(|o| serde_saphyr::to_string(o).ok())
        .collect::<Vec<_>>()
        .join("---\n")
}
