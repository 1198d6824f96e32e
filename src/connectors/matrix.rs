//! The connector matrix: every provider the product speaks about, its
//! category, how its evidence reaches a passport today, the credential it
//! needs and the evidence it gives.
//!
//! One table, shown alike by `releasepassport connectors` (text, JSON,
//! Markdown), the console's Integrations page, `docs/connectors.md` and each
//! ConnectorScope's `status.support`. A row's status is computed, never
//! written: a provider is "native pull" (or "requires credential") only when
//! its row names connector kinds whose adapter [`super::adapter`] returns, so
//! a row flips by wiring an implemented, tested adapter and by nothing else.

use serde::Serialize;

use crate::api::{ConnectorKind, ConnectorSupport};

/// What kind of source a provider is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Category {
    #[serde(rename = "CI/CD")]
    CiCd,
    Runtime,
    GitOps,
    Metrics,
    Logs,
    Errors,
    Incidents,
    #[serde(rename = "Work item")]
    WorkItem,
    Change,
    Communication,
    Quality,
    Observability,
    Rollout,
    Security,
    Custom,
    Differentiator,
}

impl Category {
    /// The words of the matrix.
    pub fn label(self) -> &'static str {
        match self {
            Category::CiCd => "CI/CD",
            Category::Runtime => "Runtime",
            Category::GitOps => "GitOps",
            Category::Metrics => "Metrics",
            Category::Logs => "Logs",
            Category::Errors => "Errors",
            Category::Incidents => "Incidents",
            Category::WorkItem => "Work item",
            Category::Change => "Change",
            Category::Communication => "Communication",
            Category::Quality => "Quality",
            Category::Observability => "Observability",
            Category::Rollout => "Rollout",
            Category::Security => "Security",
            Category::Custom => "Custom",
            Category::Differentiator => "Differentiator",
        }
    }
}

/// Whether live reads need a customer credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A scoped token by `secretRef` is mandatory: "requires credential".
    Required,
    /// The source may be read without one (or as a namespace ServiceAccount).
    Optional,
}

/// How a provider is wired: the declared path of its evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wiring {
    /// Read live by the adapters of these connector kinds. Until every one
    /// of them has an adapter ([`super::adapter`]), the row says `Planned`.
    Native(&'static [ConnectorKind]),
    /// Evidence pushed by CI (connector kinds listed for ConnectorScopes).
    Ingest(&'static [ConnectorKind]),
    /// A customer-defined endpoint or manual evidence path.
    Manual(&'static [ConnectorKind]),
    /// Recognised where it runs and guided, not read live; the provider id
    /// is what a detector reports (see [`Detected`]).
    Candidate,
    /// On the roadmap.
    Planned,
}

/// One row of the matrix.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// Provider name as users know it, e.g. `PagerDuty`.
    pub connector: &'static str,
    pub category: Category,
    pub wiring: Wiring,
    pub credential: Credential,
    /// What credential live reads need, in words.
    pub credential_text: &'static str,
    /// What evidence it gives.
    pub evidence: &'static str,
    /// A row of the product's original connector matrix.
    pub seed: bool,
}

/// Providers found where the operator runs and not yet read by any
/// ConnectorScope (a detector's answer, [`super::detect`]), by
/// [`Row::connector`] name. Empty when nothing was detected or no detector ran.
#[derive(Clone, Debug, Default)]
pub struct Detected(pub std::collections::BTreeSet<String>);

impl Detected {
    /// Nothing detected: the status every static view (CLI, docs) shows.
    pub fn none() -> Self {
        Self::default()
    }
}

impl Row {
    /// The ConnectorScope `connector` values of this row.
    pub fn kinds(&self) -> &'static [ConnectorKind] {
        match self.wiring {
            Wiring::Native(k) | Wiring::Ingest(k) | Wiring::Manual(k) => k,
            Wiring::Candidate | Wiring::Planned => &[],
        }
    }

    /// The row's true status where nothing is detected.
    pub fn status(&self) -> ConnectorSupport {
        self.status_with(&Detected::none())
    }

    /// The row's true status, given what a detector found at run time: a
    /// candidate is a "detected candidate" only once it was detected.
    pub fn status_with(&self, detected: &Detected) -> ConnectorSupport {
        match self.wiring {
            // Found running where no ConnectorScope reads it yet: guided setup.
            Wiring::Native(_) | Wiring::Candidate if detected.0.contains(self.connector) => {
                ConnectorSupport::DetectedCandidate
            }
            Wiring::Native(kinds)
                if !kinds.is_empty() && kinds.iter().all(|k| super::adapter(*k).is_some()) =>
            {
                match self.credential {
                    Credential::Required => ConnectorSupport::RequiresCredential,
                    Credential::Optional => ConnectorSupport::NativePull,
                }
            }
            Wiring::Native(_) | Wiring::Planned => ConnectorSupport::Planned,
            Wiring::Ingest(_) => ConnectorSupport::EvidenceIngest,
            Wiring::Manual(_) => ConnectorSupport::ManualConnector,
            Wiring::Candidate => ConnectorSupport::Planned,
        }
    }
}

use Category as C;
use ConnectorKind as K;
use Credential::{Optional, Required};

/// The matrix, in the order of the product's connector matrix, then the
/// providers added since.
pub const ROWS: &[Row] = &[
    Row {
        connector: "GitHub Actions",
        category: C::CiCd,
        wiring: Wiring::Native(&[K::GithubActions]),
        credential: Optional,
        credential_text: "Optional for API pull",
        evidence: "Run ID, source SHA, artifact digest, job status.",
        seed: true,
    },
    Row {
        connector: "GitLab CI",
        category: C::CiCd,
        wiring: Wiring::Native(&[K::Gitlab]),
        credential: Required,
        credential_text: "Required for live project read",
        evidence: "Pipeline status, jobs, source, deploy metadata.",
        seed: true,
    },
    Row {
        connector: "Jenkins",
        category: C::CiCd,
        wiring: Wiring::Native(&[K::Jenkins]),
        credential: Required,
        credential_text: "Required for live job read",
        evidence: "Build result, artifact, environment, deploy job.",
        seed: true,
    },
    Row {
        connector: "Kubernetes",
        category: C::Runtime,
        wiring: Wiring::Native(&[K::Kubernetes]),
        credential: Optional,
        credential_text: "Scoped service account",
        evidence: "Deployment readiness, replicas, restarts, namespace scope.",
        seed: true,
    },
    Row {
        connector: "Argo CD",
        category: C::GitOps,
        wiring: Wiring::Native(&[K::Argocd]),
        credential: Optional,
        credential_text: "Scoped service account; an Argo CD token for the API",
        evidence: "Sync status, health, revision, rollback target.",
        seed: true,
    },
    Row {
        connector: "Flux",
        category: C::GitOps,
        wiring: Wiring::Native(&[K::Flux]),
        credential: Optional,
        credential_text: "Scoped service account (get on the Kustomization or HelmRelease)",
        evidence: "Ready, suspended, last applied revision against the release; detected GitOps scope.",
        seed: true,
    },
    Row {
        connector: "Prometheus",
        category: C::Metrics,
        wiring: Wiring::Native(&[K::Prometheus]),
        credential: Optional,
        credential_text: "Optional depending on endpoint auth",
        evidence: "Allowlisted error rate, latency, saturation, freshness.",
        seed: true,
    },
    Row {
        connector: "Sentry",
        category: C::Errors,
        wiring: Wiring::Native(&[K::Sentry]),
        credential: Required,
        credential_text: "Required for live project read",
        evidence: "Issue count, release regression, crash/error spike.",
        seed: true,
    },
    Row {
        connector: "PagerDuty",
        category: C::Incidents,
        wiring: Wiring::Native(&[K::Pagerduty]),
        credential: Required,
        credential_text: "Required for live service read",
        evidence: "Active incident state and release risk context.",
        seed: true,
    },
    Row {
        connector: "Jira",
        category: C::WorkItem,
        wiring: Wiring::Native(&[K::Jira]),
        credential: Required,
        credential_text: "Required for live issue read",
        evidence: "Change approval, linked ticket, approver state.",
        seed: true,
    },
    Row {
        connector: "Slack/email",
        category: C::Communication,
        wiring: Wiring::Native(&[K::Slack, K::Email]),
        credential: Required,
        credential_text: "Webhook/email provider required for send",
        evidence: "Notification delivery and approval workflow evidence.",
        seed: true,
    },
    Row {
        connector: "SonarQube",
        category: C::Quality,
        wiring: Wiring::Native(&[K::Sonarqube]),
        credential: Required,
        credential_text: "Required for live project read",
        evidence: "Quality gate and scan result evidence.",
        seed: true,
    },
    Row {
        connector: "Datadog",
        category: C::Observability,
        wiring: Wiring::Native(&[K::Datadog]),
        credential: Required,
        credential_text: "Required for live metrics/log read",
        evidence: "Metrics, monitors, logs, and service health.",
        seed: true,
    },
    Row {
        connector: "New Relic",
        category: C::Observability,
        wiring: Wiring::Native(&[K::Newrelic]),
        credential: Required,
        credential_text: "Required for live account read",
        evidence: "APM health and regression signals.",
        seed: true,
    },
    Row {
        connector: "LaunchDarkly",
        category: C::Rollout,
        wiring: Wiring::Native(&[K::Launchdarkly]),
        credential: Required,
        credential_text: "Required for live project read",
        evidence: "Flag rollout status and guarded rollout context.",
        seed: true,
    },
    Row {
        connector: "Argo Rollouts",
        category: C::Rollout,
        wiring: Wiring::Native(&[K::ArgoRollouts]),
        credential: Optional,
        credential_text: "Scoped service account (get on the Rollout, list AnalysisRuns)",
        evidence: "Canary/analysis status via runtime scope.",
        seed: true,
    },
    Row {
        connector: "Flagger",
        category: C::Rollout,
        wiring: Wiring::Native(&[K::Flagger]),
        credential: Optional,
        credential_text: "Scoped service account (get on the Canary)",
        evidence: "Canary analysis and rollout condition.",
        seed: true,
    },
    Row {
        connector: "Trivy",
        category: C::Security,
        wiring: Wiring::Ingest(&[K::Trivy, K::Ingest]),
        credential: Optional,
        credential_text: "No live credential for uploaded reports",
        evidence: "Vulnerability scan artifact and summary.",
        seed: true,
    },
    Row {
        connector: "Snyk",
        category: C::Security,
        wiring: Wiring::Native(&[K::Snyk]),
        credential: Required,
        credential_text: "Required for live org/project read",
        evidence: "Security issue and policy result.",
        seed: true,
    },
    Row {
        connector: "ServiceNow",
        category: C::Change,
        wiring: Wiring::Native(&[K::Servicenow]),
        credential: Required,
        credential_text: "Required for live change read",
        evidence: "Change ticket state and approval context.",
        seed: true,
    },
    Row {
        connector: "Linear",
        category: C::WorkItem,
        wiring: Wiring::Native(&[K::Linear]),
        credential: Required,
        credential_text: "Required for live issue read",
        evidence: "Issue state and release approval context.",
        seed: true,
    },
    Row {
        connector: "Custom webhook/manual evidence",
        category: C::Custom,
        wiring: Wiring::Manual(&[K::Http]),
        credential: Optional,
        credential_text: "Customer-defined secret ref if needed",
        evidence: "Customer-defined health or evidence payload.",
        seed: true,
    },
    Row {
        connector: "Mobile/WebView regression",
        category: C::Differentiator,
        wiring: Wiring::Planned,
        credential: Optional,
        credential_text: "TBD",
        evidence: "Screenshot, console, and network regression evidence.",
        seed: true,
    },
    // Providers the product documents name beyond the original matrix.
    Row {
        connector: "Opsgenie",
        category: C::Incidents,
        wiring: Wiring::Native(&[K::Opsgenie]),
        credential: Required,
        credential_text: "Required for live team/service read",
        evidence: "Open alerts and incidents by priority.",
        seed: false,
    },
    Row {
        connector: "Loki",
        category: C::Logs,
        wiring: Wiring::Native(&[K::Loki]),
        credential: Optional,
        credential_text: "Optional depending on endpoint auth",
        evidence: "Allowlisted LogQL metric queries: error bursts since deploy (counts, never lines).",
        seed: false,
    },
    Row {
        connector: "Elasticsearch/OpenSearch",
        category: C::Logs,
        wiring: Wiring::Native(&[K::Elasticsearch, K::Opensearch]),
        credential: Required,
        credential_text: "Required for live index read",
        evidence: "Allowlisted count queries: error bursts, startup failures (counts, never documents).",
        seed: false,
    },
    // Radar: journey checks and third-party status.
    Row {
        connector: "Journey checks",
        category: C::Runtime,
        wiring: Wiring::Native(&[K::Journey]),
        credential: Optional,
        credential_text: "Optional bearer token for authenticated paths",
        evidence: "Allowlisted HTTP probes of user paths: status, latency, expected body text or JSON value.",
        seed: false,
    },
    Row {
        connector: "Statuspage (third-party status)",
        category: C::Observability,
        wiring: Wiring::Native(&[K::Statuspage]),
        credential: Optional,
        credential_text: "None (public status page API)",
        evidence: "Dependency component status, unresolved incidents, maintenance in progress.",
        seed: false,
    },
];

/// The matrix status of a ConnectorScope's connector kind: the status of
/// the row that names it (rows naming the same kind share a status; a test
/// holds them to that).
pub fn support_of(kind: ConnectorKind) -> ConnectorSupport {
    ROWS.iter()
        .find(|r| r.kinds().contains(&kind))
        .map(Row::status)
        .unwrap_or(ConnectorSupport::Planned)
}

/// One row as `releasepassport connectors --output json` writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowView {
    pub connector: &'static str,
    pub category: &'static str,
    /// The matrix words, e.g. `Requires credential`.
    pub status: &'static str,
    /// The same as a ConnectorScope's `status.support`, e.g. `RequiresCredential`.
    pub support: &'static str,
    pub credential: &'static str,
    pub evidence: &'static str,
    /// ConnectorScope `connector` values that read or receive this provider's evidence.
    pub connector_kinds: Vec<&'static str>,
    /// A row of the product's original connector matrix.
    pub seed: bool,
}

/// Every row, as shown.
pub fn view(detected: &Detected) -> Vec<RowView> {
    ROWS.iter()
        .map(|r| {
            let status = r.status_with(detected);
            RowView {
                connector: r.connector,
                category: r.category.label(),
                status: status.label(),
                support: status.as_str(),
                credential: r.credential_text,
                evidence: r.evidence,
                connector_kinds: r.kinds().iter().map(|k| k.as_str()).collect(),
                seed: r.seed,
            }
        })
        .collect()
}

/// The matrix as a Markdown table (the one in `docs/connectors.md`).
pub fn markdown(rows: &[RowView]) -> String {
    let mut out = String::from(
        "| Connector | Category | Status | ConnectorScope `connector` | Credential | Evidence |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let kinds = if r.connector_kinds.is_empty() {
            "—".to_string()
        } else {
            r.connector_kinds
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.connector, r.category, r.status, kinds, r.credential, r.evidence
        ));
    }
    out
}

/// The matrix as an aligned text table.
pub fn text(rows: &[RowView]) -> String {
    let header = ["CONNECTOR", "CATEGORY", "STATUS", "KIND", "CREDENTIAL"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.connector.to_string(),
                r.category.to_string(),
                r.status.to_string(),
                if r.connector_kinds.is_empty() {
                    "-".into()
                } else {
                    r.connector_kinds.join(",")
                },
                r.credential.to_string(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 5]| -> String {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i == cols.len() - 1 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for row in &cells {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connector_kind_is_in_the_matrix() {
        for kind in ConnectorKind::ALL {
            assert!(
                ROWS.iter().any(|r| r.kinds().contains(kind)),
                "{kind} has no row"
            );
        }
    }

    #[test]
    fn rows_naming_the_same_kind_share_a_status() {
        for kind in ConnectorKind::ALL {
            let statuses: Vec<ConnectorSupport> = ROWS
                .iter()
                .filter(|r| r.kinds().contains(kind))
                .map(Row::status)
                .collect();
            assert!(
                statuses.windows(2).all(|w| w[0] == w[1]),
                "{kind}: {statuses:?}"
            );
            assert_eq!(support_of(*kind), statuses[0]);
        }
    }

    #[test]
    fn native_only_with_an_adapter() {
        for r in ROWS {
            let native = matches!(
                r.status(),
                ConnectorSupport::NativePull | ConnectorSupport::RequiresCredential
            );
            let wired = matches!(r.wiring, Wiring::Native(k) if !k.is_empty() && k.iter().all(|k| crate::connectors::adapter(*k).is_some()));
            assert_eq!(native, wired, "{}", r.connector);
        }
    }

    #[test]
    fn a_candidate_is_detected_only_once_detected() {
        let flux = ROWS.iter().find(|r| r.connector == "Flux").unwrap();
        assert_eq!(flux.status(), ConnectorSupport::NativePull);
        let detected = Detected(["Flux".to_string()].into());
        assert_eq!(
            flux.status_with(&detected),
            ConnectorSupport::DetectedCandidate
        );
    }

    #[test]
    fn text_table_has_a_line_per_row() {
        let t = text(&view(&Detected::none()));
        assert_eq!(t.lines().count(), ROWS.len() + 1);
        assert!(
            t.lines()
                .any(|l| l.starts_with("Kubernetes") && l.contains("Native pull"))
        );
    }
}
