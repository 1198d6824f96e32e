use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Conditions, SecretKeyReference, conditions_schema};

/// One scoped evidence source.
///
/// The scope is never broader than needed: a namespace and label selector, an
/// Argo CD application, a Prometheus URL with allowlisted named queries.
/// Credentials are referenced (`serviceAccountName`, `secretRef`), never inline.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "releasepassport.io",
    version = "v1alpha1",
    kind = "ConnectorScope",
    namespaced,
    status = "ConnectorScopeStatus",
    shortname = "cscope",
    category = "releasepassport",
    doc = "ConnectorScope declares one scoped evidence source and reports its health.",
    printcolumn(name = "Connector", type_ = "string", json_path = ".spec.connector"),
    printcolumn(name = "Support", type_ = "string", json_path = ".status.support"),
    printcolumn(name = "Health", type_ = "string", json_path = ".status.health"),
    printcolumn(
        name = "Last-Observed",
        type_ = "date",
        json_path = ".status.lastObservedAt"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self.connector != 'kubernetes' || has(self.kubernetes)").message("connector kubernetes needs the `kubernetes` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'kubernetes' || has(self.serviceAccountName)").message("connector kubernetes reads as a ServiceAccount of this namespace: set serviceAccountName"))]
#[x_kube(validation = Rule::new("self.connector != 'argocd' || has(self.argocd)").message("connector argocd needs the `argocd` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'prometheus' || has(self.prometheus)").message("connector prometheus needs the `prometheus` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'http' || has(self.http)").message("connector http needs the `http` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'pagerduty' || has(self.pagerduty)").message("connector pagerduty needs the `pagerduty` scope (serviceIds)"))]
#[x_kube(validation = Rule::new("self.connector != 'opsgenie' || has(self.opsgenie)").message("connector opsgenie needs the `opsgenie` scope (team)"))]
#[x_kube(validation = Rule::new("self.connector != 'jira' || has(self.jira)").message("connector jira needs the `jira` scope (url and issueKey, jql or fixVersion)"))]
#[x_kube(validation = Rule::new("self.connector != 'servicenow' || has(self.servicenow)").message("connector servicenow needs the `servicenow` scope (url and number or query)"))]
#[x_kube(validation = Rule::new("self.connector != 'linear' || has(self.linear)").message("connector linear needs the `linear` scope (issue or team and label)"))]
#[x_kube(validation = Rule::new("self.connector != 'sentry' || has(self.sentry)").message("connector sentry needs the `sentry` scope (organization and project)"))]
#[x_kube(validation = Rule::new("self.connector != 'email' || has(self.email)").message("connector email needs the `email` scope (host, from, to)"))]
#[x_kube(validation = Rule::new("self.connector != 'gitlab' || has(self.gitlab)").message("connector gitlab needs the `gitlab` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'jenkins' || has(self.jenkins)").message("connector jenkins needs the `jenkins` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'github-actions' || has(self.githubActions)").message("connector github-actions needs the `githubActions` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'sonarqube' || has(self.sonarqube)").message("connector sonarqube needs the `sonarqube` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'snyk' || has(self.snyk)").message("connector snyk needs the `snyk` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'datadog' || has(self.datadog)").message("connector datadog needs the `datadog` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'newrelic' || has(self.newrelic)").message("connector newrelic needs the `newrelic` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'launchdarkly' || has(self.launchdarkly)").message("connector launchdarkly needs the `launchdarkly` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'loki' || has(self.loki)").message("connector loki needs the `loki` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'elasticsearch' || has(self.search)").message("connector elasticsearch needs the `search` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'opensearch' || has(self.search)").message("connector opensearch needs the `search` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'argo-rollouts' || has(self.argoRollouts)").message("connector argo-rollouts needs the `argoRollouts` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'flagger' || has(self.flagger)").message("connector flagger needs the `flagger` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'flux' || has(self.flux)").message("connector flux needs the `flux` scope"))]
#[x_kube(validation = Rule::new("self.connector != 'argo-rollouts' || has(self.serviceAccountName)").message("connector argo-rollouts reads as a ServiceAccount of this namespace: set serviceAccountName"))]
#[x_kube(validation = Rule::new("self.connector != 'flagger' || has(self.serviceAccountName)").message("connector flagger reads as a ServiceAccount of this namespace: set serviceAccountName"))]
#[x_kube(validation = Rule::new("self.connector != 'flux' || has(self.serviceAccountName)").message("connector flux reads as a ServiceAccount of this namespace: set serviceAccountName"))]
#[x_kube(validation = Rule::new("self.connector != 'journey' || has(self.journey)").message("connector journey needs the `journey` scope (allowedUrlPrefixes and probes)"))]
#[x_kube(validation = Rule::new("self.connector != 'statuspage' || has(self.statuspage)").message("connector statuspage needs the `statuspage` scope (url and dependency)"))]
#[serde(rename_all = "camelCase")]
pub struct ConnectorScopeSpec {
    /// Which connector reads this scope.
    pub connector: ConnectorKind,
    /// Kubernetes workloads to read, in this ConnectorScope's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesScope>,
    /// The Argo CD Application to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgoCdScope>,
    /// The Prometheus server and the only queries that may be run against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusScope>,
    /// A custom endpoint answering the connector evidence shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpScope>,
    /// PagerDuty services whose active incidents are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerDutyScope>,
    /// Opsgenie team whose open alerts are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie: Option<OpsgenieScope>,
    /// Jira site and the change ticket of the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira: Option<JiraScope>,
    /// ServiceNow instance and the change request of the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servicenow: Option<ServiceNowScope>,
    /// Linear issues of the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<LinearScope>,
    /// Sentry project whose release health is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentry: Option<SentryScope>,
    /// Slack incoming webhook (its URL is the `secretRef` value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackScope>,
    /// SMTP server and recipients of decision notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailScope>,
    /// GitLab CI: the project whose pipeline for the release's commit is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<super::GitLabScope>,
    /// Jenkins: the job whose build for the release is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jenkins: Option<super::JenkinsScope>,
    /// GitHub Actions: the repository whose run for the release is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_actions: Option<super::GitHubActionsScope>,
    /// SonarQube: the project whose quality gate is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sonarqube: Option<super::SonarQubeScope>,
    /// Snyk: the project whose issues are counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snyk: Option<super::SnykScope>,
    /// Datadog: monitors by tag and allowlisted metric queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<super::DatadogScope>,
    /// New Relic: the entity whose alerts and golden signals are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newrelic: Option<super::NewRelicScope>,
    /// LaunchDarkly: one flag in one environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launchdarkly: Option<super::LaunchDarklyScope>,
    /// Loki: allowlisted LogQL metric queries (counts, never log lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loki: Option<super::LokiScope>,
    /// Elasticsearch or OpenSearch: allowlisted count queries on one index pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<super::SearchScope>,
    /// Argo Rollouts: a Rollout of this namespace, read as serviceAccountName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argo_rollouts: Option<super::ArgoRolloutsScope>,
    /// Flagger: a Canary of this namespace, read as serviceAccountName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagger: Option<super::FlaggerScope>,
    /// Flux: a Kustomization or HelmRelease, read as serviceAccountName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flux: Option<super::FluxScope>,
    // Radar: journey checks and third-party status.
    /// Journey checks: allowlisted HTTP probes of the service's user paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey: Option<super::JourneyScope>,
    /// A dependency's public status page (Atlassian Statuspage format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuspage: Option<super::StatuspageScope>,
    /// Provider-side identifiers for SaaS connectors (project, service, ...).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ids: std::collections::BTreeMap<String, String>,
    /// ServiceAccount of this namespace that evidence is read as (kubernetes
    /// connector). Its Role decides what the connector can see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub service_account_name: Option<String>,
    /// Secret key holding a token for the source (bearer token). Never inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
    /// Evidence older than this many seconds is stale. Defaults to 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_age_seconds: Option<i64>,
}

/// Evidence sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    /// Workload readiness, replicas, restarts and rollout condition, read as a ServiceAccount.
    Kubernetes,
    /// Argo CD Application sync, health, revision and history.
    Argocd,
    /// Allowlisted Prometheus instant queries.
    Prometheus,
    /// A custom endpoint answering the connector evidence shape.
    Http,
    /// Evidence pushed by CI (the `gate` command or `spec.evidence` of a ReleaseGate).
    Ingest,
    /// PagerDuty incidents of the scoped services.
    Pagerduty,
    /// Jira (and Jira Service Management) change ticket and approvals of the release.
    Jira,
    /// Sentry issues, crash-free sessions and error spike of the release.
    Sentry,
    /// Opsgenie open alerts of the scoped team or service.
    Opsgenie,
    /// ServiceNow change request of the release (Table API).
    Servicenow,
    /// Linear issue state of the release (GraphQL API).
    Linear,
    /// Slack incoming webhook: notifications out on a decision change.
    Slack,
    /// Email over SMTP: notifications out on a decision change.
    Email,
    /// GitLab CI pipeline of the release's commit: status, jobs, deploy job, environment.
    Gitlab,
    /// Jenkins build of the release: result, artifacts, parameters.
    Jenkins,
    /// GitHub Actions run of the release: conclusion, jobs, artifacts, attestations.
    #[serde(rename = "github-actions")]
    GithubActions,
    /// SonarQube quality gate of a project, branch or pull request.
    Sonarqube,
    /// Snyk project issues by severity.
    Snyk,
    /// Datadog monitor states by tag and allowlisted metric queries.
    Datadog,
    /// New Relic entity alert severity, open violations, golden signals and NRQL queries.
    Newrelic,
    /// LaunchDarkly flag state and rollout in one environment.
    Launchdarkly,
    /// Loki LogQL metric queries (counts only).
    Loki,
    /// Elasticsearch count queries (counts only).
    Elasticsearch,
    /// OpenSearch count queries (counts only).
    Opensearch,
    /// Argo Rollouts Rollout phase, step, canary weight and AnalysisRuns.
    #[serde(rename = "argo-rollouts")]
    ArgoRollouts,
    /// Flagger Canary phase and failed checks.
    Flagger,
    /// Flux Kustomization or HelmRelease readiness and applied revision.
    Flux,
    /// Trivy scan reports pushed by CI (`releasepassport gate --trivy-report`): pulls nothing.
    Trivy,
    // Radar: journey checks and third-party status.
    /// Allowlisted HTTP probes of a service's user paths: status, latency, body.
    Journey,
    /// A dependency's public status page (Atlassian Statuspage format).
    Statuspage,
}

impl ConnectorKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Kubernetes => "kubernetes",
            ConnectorKind::Argocd => "argocd",
            ConnectorKind::Prometheus => "prometheus",
            ConnectorKind::Http => "http",
            ConnectorKind::Ingest => "ingest",
            ConnectorKind::Pagerduty => "pagerduty",
            ConnectorKind::Jira => "jira",
            ConnectorKind::Sentry => "sentry",
            ConnectorKind::Opsgenie => "opsgenie",
            ConnectorKind::Servicenow => "servicenow",
            ConnectorKind::Linear => "linear",
            ConnectorKind::Slack => "slack",
            ConnectorKind::Email => "email",
            ConnectorKind::Gitlab => "gitlab",
            ConnectorKind::Jenkins => "jenkins",
            ConnectorKind::GithubActions => "github-actions",
            ConnectorKind::Sonarqube => "sonarqube",
            ConnectorKind::Snyk => "snyk",
            ConnectorKind::Datadog => "datadog",
            ConnectorKind::Newrelic => "newrelic",
            ConnectorKind::Launchdarkly => "launchdarkly",
            ConnectorKind::Loki => "loki",
            ConnectorKind::Elasticsearch => "elasticsearch",
            ConnectorKind::Opensearch => "opensearch",
            ConnectorKind::ArgoRollouts => "argo-rollouts",
            ConnectorKind::Flagger => "flagger",
            ConnectorKind::Flux => "flux",
            ConnectorKind::Trivy => "trivy",
            // Radar: journey checks and third-party status.
            ConnectorKind::Journey => "journey",
            ConnectorKind::Statuspage => "statuspage",
        }
    }

    /// Every connector kind, in declaration order.
    pub const ALL: &'static [ConnectorKind] = &[
        ConnectorKind::Kubernetes,
        ConnectorKind::Argocd,
        ConnectorKind::Prometheus,
        ConnectorKind::Http,
        ConnectorKind::Ingest,
        ConnectorKind::Pagerduty,
        ConnectorKind::Jira,
        ConnectorKind::Sentry,
        ConnectorKind::Opsgenie,
        ConnectorKind::Servicenow,
        ConnectorKind::Linear,
        ConnectorKind::Slack,
        ConnectorKind::Email,
        // Pipelines, quality, observability and rollouts.
        ConnectorKind::Gitlab,
        ConnectorKind::Jenkins,
        ConnectorKind::GithubActions,
        ConnectorKind::Sonarqube,
        ConnectorKind::Snyk,
        ConnectorKind::Datadog,
        ConnectorKind::Newrelic,
        ConnectorKind::Launchdarkly,
        ConnectorKind::Loki,
        ConnectorKind::Elasticsearch,
        ConnectorKind::Opensearch,
        ConnectorKind::ArgoRollouts,
        ConnectorKind::Flagger,
        ConnectorKind::Flux,
        ConnectorKind::Trivy,
        // Radar: journey checks and third-party status.
        ConnectorKind::Journey,
        ConnectorKind::Statuspage,
    ];
}

impl ConnectorKind {
    /// Connectors whose facts CI pushes (through the gate's `spec.evidence`)
    /// rather than the operator pulling them: `ingest` and `trivy` (a Trivy
    /// report summarised by `releasepassport gate --trivy-report`). Every
    /// other connector's name is reserved from pushed evidence.
    pub fn is_pushed(self) -> bool {
        matches!(self, ConnectorKind::Ingest | ConnectorKind::Trivy)
    }
}

impl std::fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kubernetes workloads, always in the ConnectorScope's own namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesScope {
    /// Workloads selected by label (Deployments and StatefulSets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Workloads named explicitly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<WorkloadReference>,
}

/// A workload by kind and name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReference {
    /// API version, e.g. `apps/v1` or `argoproj.io/v1alpha1`. Defaults to `apps/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind, e.g. `Deployment`, `StatefulSet`, `Rollout`.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Name, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// An Argo CD Application.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArgoCdScope {
    /// Application name.
    #[schemars(length(min = 1, max = 253))]
    pub application: String,
    /// Namespace of the Application resource. Defaults to `argocd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Optional Argo CD API base URL; with `secretRef` it is read through the API instead of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// A Prometheus server and its allowlisted queries.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusScope {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`. Credentials in the URL are refused.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: String,
    /// Named instant queries: the only queries this scope can run. Each answer becomes a fact of that name.
    #[schemars(length(min = 1, max = 50))]
    pub queries: Vec<NamedQuery>,
}

/// A named PromQL instant query.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NamedQuery {
    /// Fact name the result is published under, e.g. `error_rate`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// PromQL expression evaluated as an instant query; it must return one sample.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,
    /// Unit appended to the value, e.g. `%` or `ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A custom evidence endpoint.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HttpScope {
    /// URL answering the connector evidence shape on GET.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: String,
}

/// PagerDuty services (REST API v2). The token (`secretRef`) is a read-only
/// API key, sent as `Authorization: Token token=...`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PagerDutyScope {
    /// API base URL. Defaults to `https://api.pagerduty.com` (EU accounts: `https://api.eu.pagerduty.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub url: Option<String>,
    /// Service ids (e.g. `PIJ90N7`): only their incidents are read.
    #[schemars(length(min = 1, max = 20))]
    pub service_ids: Vec<String>,
}

/// An Opsgenie team (Alert API v2). The token is an API integration key
/// with read access, sent as `Authorization: GenieKey ...`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct OpsgenieScope {
    /// API base URL. Defaults to `https://api.opsgenie.com` (EU: `https://api.eu.opsgenie.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub url: Option<String>,
    /// Team name: only alerts assigned to it are read.
    #[schemars(
        length(min = 1, max = 100),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")
    )]
    pub team: String,
}

/// A Jira site (Cloud or Data Center) and how the change ticket of a
/// release is found: `issueKey`, else `jql`, else `fixVersion`; the search
/// is always limited to `project`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JiraScope {
    /// Site URL, e.g. `https://acme.atlassian.net` or `https://jira.example.com`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: String,
    /// `cloud` (REST API v3, the default) or `dataCenter` (REST API v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<JiraDeployment>,
    /// Account email for Jira Cloud API tokens (Basic auth). Without it the
    /// token is sent as a bearer token (Data Center personal access token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 254))]
    pub user: Option<String>,
    /// Project key the change tickets live in, e.g. `CHG`.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Z][A-Z0-9_]*$"))]
    pub project: String,
    /// The change ticket, e.g. `CHG-1042` (placeholders `{service}`, `{release}`, `{environment}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub issue_key: Option<String>,
    /// JQL selecting the release's change ticket, ANDed with the project,
    /// e.g. `labels = "{service}-{release}"` (placeholders filled in quoted-safe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2000))]
    pub jql: Option<String>,
    /// Fix version of the change ticket. Defaults to `{release}` when neither issueKey nor jql is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub fix_version: Option<String>,
    /// Statuses that mean approved, when approvals are not read from Jira
    /// Service Management. Defaults to `Approved`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub approved_statuses: Vec<String>,
    /// Read the ticket's Jira Service Management approvals (approvers and
    /// final decision) instead of judging by status.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub service_management: bool,
}

/// Jira deployment flavours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum JiraDeployment {
    /// Jira Cloud: REST API v3, enhanced JQL search.
    Cloud,
    /// Jira Data Center / Server: REST API v2.
    DataCenter,
}

/// A ServiceNow instance and the change request of the release (Table API).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.number) || has(self.query)").message("servicenow needs number or query"))]
pub struct ServiceNowScope {
    /// Instance URL, e.g. `https://acme.service-now.com`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: String,
    /// User for Basic auth (the password is the `secretRef` value). Without
    /// it the value is sent as an OAuth bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 254))]
    pub user: Option<String>,
    /// The change request number, e.g. `CHG0030001` (placeholders allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub number: Option<String>,
    /// An encoded query selecting the release's change requests, e.g.
    /// `cmdb_ci.name={service}^short_descriptionLIKE{release}` (placeholders
    /// `{service}`, `{release}`, `{environment}`; `^` in their values is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2000))]
    pub query: Option<String>,
}

/// Linear issues of a release (GraphQL API): one issue, or the issues of a
/// team carrying a label.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.issue) || (has(self.team) && has(self.label))").message("linear needs issue, or team and label"))]
pub struct LinearScope {
    /// GraphQL endpoint. Defaults to `https://api.linear.app/graphql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub url: Option<String>,
    /// One issue by identifier, e.g. `ENG-123` (placeholders allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub issue: Option<String>,
    /// Team key, e.g. `ENG`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub team: Option<String>,
    /// Label of the release's issues, e.g. `release:{release}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub label: Option<String>,
}

/// A Sentry project and the release health read for it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SentryScope {
    /// API base URL. Defaults to `https://sentry.io` (self-hosted: its URL; EU: `https://de.sentry.io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub url: Option<String>,
    /// Organization slug.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9][a-z0-9_\-]*$"))]
    pub organization: String,
    /// Project slug.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9][a-z0-9_\-]*$"))]
    pub project: String,
    /// Sentry environment. Defaults to the gate's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub environment: Option<String>,
    /// Period the release health covers, e.g. `24h` (Sentry's statsPeriod). Defaults to `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,3}[mhdw]$"))]
    pub stats_period: Option<String>,
    /// An error spike is a crash rate at least this many times the previous
    /// release's. Defaults to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub spike_factor: Option<u32>,
}

/// A Slack incoming webhook. Its URL carries a token: it is the value of
/// the scope's `secretRef`, never written in the spec.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SlackScope {
    /// Channel the webhook posts to, for display only (the webhook decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 80))]
    pub channel: Option<String>,
}

/// An SMTP server and the recipients of decision notifications. With
/// `user`, the `secretRef` value is the SMTP password.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EmailScope {
    /// SMTP server host name.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Port. Defaults to 587 (STARTTLS), 465 for `tls: implicit`, 25 for `tls: none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// `starttls` (the default: upgrade, and refuse a server that cannot),
    /// `implicit` (TLS from the first byte) or `none` (loopback relays only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SmtpTls>,
    /// PEM certificate of a private CA the server's certificate chains to
    /// (public data, not a secret). Public CAs are trusted by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 65536))]
    pub ca_certificate: Option<String>,
    /// SMTP user; the password is the `secretRef` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 254))]
    pub user: Option<String>,
    /// Sender address.
    #[schemars(length(min = 3, max = 254))]
    pub from: String,
    /// Recipients.
    #[schemars(length(min = 1, max = 20))]
    pub to: Vec<String>,
}

/// TLS on an SMTP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; a server without it is refused.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No TLS (a relay on loopback or in the pod).
    None,
}

/// Health of a ConnectorScope's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConnectorHealth {
    /// Evidence is being read and is fresh.
    Healthy,
    /// The last evidence is older than maxAgeSeconds.
    Stale,
    /// A credential (Secret or ServiceAccount) is missing.
    CredentialRequired,
    /// The source refused access to the configured identity.
    Forbidden,
    /// The source could not be reached.
    Unreachable,
    /// The scope is invalid or names an unimplemented connector.
    Invalid,
}

impl ConnectorHealth {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorHealth::Healthy => "Healthy",
            ConnectorHealth::Stale => "Stale",
            ConnectorHealth::CredentialRequired => "CredentialRequired",
            ConnectorHealth::Forbidden => "Forbidden",
            ConnectorHealth::Unreachable => "Unreachable",
            ConnectorHealth::Invalid => "Invalid",
        }
    }
}

/// How a connector's evidence reaches a passport: the status column of the
/// connector matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConnectorSupport {
    /// A native adapter reads the source live within the configured scope.
    NativePull,
    /// A native adapter reads the source live once the customer supplies a
    /// scoped credential (`secretRef`).
    RequiresCredential,
    /// Evidence is pushed by CI through the API or `releasepassport gate --evidence`.
    EvidenceIngest,
    /// The provider is recognised where it runs and setup is guided; no live read.
    DetectedCandidate,
    /// A customer-defined endpoint or manual evidence path.
    ManualConnector,
    /// On the roadmap: no live connector behaviour.
    Planned,
}

impl ConnectorSupport {
    /// The wire name (`RequiresCredential`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorSupport::NativePull => "NativePull",
            ConnectorSupport::RequiresCredential => "RequiresCredential",
            ConnectorSupport::EvidenceIngest => "EvidenceIngest",
            ConnectorSupport::DetectedCandidate => "DetectedCandidate",
            ConnectorSupport::ManualConnector => "ManualConnector",
            ConnectorSupport::Planned => "Planned",
        }
    }

    /// The words of the connector matrix (`Requires credential`).
    pub fn label(self) -> &'static str {
        match self {
            ConnectorSupport::NativePull => "Native pull",
            ConnectorSupport::RequiresCredential => "Requires credential",
            ConnectorSupport::EvidenceIngest => "Evidence ingest",
            ConnectorSupport::DetectedCandidate => "Detected candidate",
            ConnectorSupport::ManualConnector => "Manual connector",
            ConnectorSupport::Planned => "Planned",
        }
    }
}

/// Observed state of a ConnectorScope.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorScopeStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How this scope's connector gets evidence, from the connector matrix
    /// (`releasepassport connectors`): NativePull, RequiresCredential,
    /// EvidenceIngest, DetectedCandidate, ManualConnector or Planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<ConnectorSupport>,
    /// Healthy, Stale, CredentialRequired, Forbidden, Unreachable or Invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<ConnectorHealth>,
    /// When evidence was last read successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed_at: Option<jiff::Timestamp>,
    /// Human explanation of the health (never a credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Standard conditions: `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Conditions,
    /// The latest journey checks or dependency status read (connectors
    /// `journey` and `statuspage`), as the Radar page shows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub signals: Vec<RadarSignal>,
}

/// One journey check or dependency status, as last read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RadarSignal {
    /// Probe or component name.
    pub name: String,
    /// `pass` or `fail`.
    pub state: String,
    /// What was observed, e.g. `HTTP 200 in 42 ms` or `degraded_performance`.
    pub detail: String,
    /// How sure the reading is, in percent: 100 for a definite answer,
    /// lower when the source could not say (no answer, component not listed).
    pub confidence: u8,
}
