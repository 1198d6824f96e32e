//! Integrations: what each connector can do, honestly, and the health of
//! every configured ConnectorScope. Never a secret value: a scope's
//! `secretRef` is shown by Secret name and key only.

use std::collections::BTreeSet;

use kube::ResourceExt;
use maud::{Markup, html};

use super::layout::{empty, maybe_time};
use crate::api::{ConnectorHealth, ConnectorKind};
use crate::console::state::ConsoleState;

/// How a connector gets its evidence.
pub fn support(kind: ConnectorKind) -> (&'static str, &'static str) {
    match kind {
        ConnectorKind::Kubernetes => (
            "native pull",
            "Deployments/StatefulSets read as the namespace's own ServiceAccount (impersonation)",
        ),
        ConnectorKind::Argocd => (
            "native pull",
            "Argo CD Application sync, health and revision, read from the cluster",
        ),
        ConnectorKind::Prometheus => (
            "native pull",
            "allowlisted instant queries; credential from a Secret when the server needs one",
        ),
        ConnectorKind::Http => (
            "native pull",
            "any endpoint answering the connector evidence shape",
        ),
        ConnectorKind::Ingest => (
            "evidence ingest",
            "CI pushes evidence into the ReleaseGate (releasepassport gate --evidence)",
        ),
        ConnectorKind::Gitlab
        | ConnectorKind::Jenkins
        | ConnectorKind::GithubActions
        | ConnectorKind::Sonarqube
        | ConnectorKind::Snyk
        | ConnectorKind::Datadog
        | ConnectorKind::Newrelic
        | ConnectorKind::Launchdarkly
        | ConnectorKind::Loki
        | ConnectorKind::Elasticsearch
        | ConnectorKind::Opensearch => (
            "native pull",
            "the provider's documented API, with the scope's credential from secretRef",
        ),
        ConnectorKind::ArgoRollouts | ConnectorKind::Flagger | ConnectorKind::Flux => (
            "native pull",
            "read as the namespace's reader ServiceAccount (impersonation)",
        ),
        ConnectorKind::Trivy => (
            "evidence ingest",
            "CI pushes a Trivy report summary (releasepassport gate --trivy-report)",
        ),
        ConnectorKind::Pagerduty | ConnectorKind::Jira | ConnectorKind::Sentry => (
            "planned",
            "not pulled yet: attach its evidence through ingest; a scope naming it reports Invalid",
        ),
    }
}

const KINDS: [ConnectorKind; 8] = [
    ConnectorKind::Kubernetes,
    ConnectorKind::Argocd,
    ConnectorKind::Prometheus,
    ConnectorKind::Http,
    ConnectorKind::Ingest,
    ConnectorKind::Pagerduty,
    ConnectorKind::Jira,
    ConnectorKind::Sentry,
];

/// The integrations page body.
pub fn render(state: &ConsoleState, visible: &BTreeSet<String>) -> Markup {
    let scopes = state.scopes_in(visible);
    html! {
        h2 { "Connector matrix" }
        div.panel {
            table #matrix {
                thead { tr { th { "Connector" } th { "Support" } th { "Configured scopes" } th { "What it reads" } } }
                tbody { @for k in KINDS {
                    @let (how, what) = support(k);
                    @let n = scopes.iter().filter(|s| s.spec.connector == k).count();
                    @let needs_credential = scopes.iter().any(|s| s.spec.connector == k
                        && s.status.as_ref().and_then(|st| st.health) == Some(ConnectorHealth::CredentialRequired));
                    tr {
                        td { strong { (k.as_str()) } }
                        td { (how) @if needs_credential { br; span.h-bad { "credential required" } } }
                        td { (n) }
                        td { (what) }
                    }
                } }
            }
        }
        h2 { "Configured scopes" }
        div.panel {
            @if scopes.is_empty() { (empty("No ConnectorScope in the namespaces you can read.")) } @else {
                table #scopes {
                    thead { tr { th { "Scope" } th { "Connector" } th { "Identity" } th { "Health" } th { "Last observed" } th { "Message" } } }
                    tbody { @for s in &scopes {
                        @let st = s.status.clone().unwrap_or_default();
                        tr {
                            td { (s.namespace().unwrap_or_default()) "/" (s.name_any()) }
                            td { (s.spec.connector.as_str()) }
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
    }
}
