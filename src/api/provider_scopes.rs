//! Scopes of the pipeline, quality, observability and rollout connectors:
//! each names the one project, job, flag, entity or object to read, never an
//! organisation or a whole cluster. Credentials stay in `secretRef` (and,
//! for Datadog's second key, `applicationKeyRef`).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{NamedQuery, SecretKeyReference};

/// A GitLab project whose pipeline for the release's commit is read.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GitLabScope {
    /// GitLab base URL. Defaults to `https://gitlab.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: Option<String>,
    /// Project id (`4711`) or full path (`payments/payment-api`).
    #[schemars(length(min = 1, max = 512))]
    pub project: String,
    /// Deployment environment whose latest deployment is reported, e.g. `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub environment: Option<String>,
    /// Name of the deploy job in the pipeline. Defaults to the jobs of stage `deploy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub deploy_job: Option<String>,
}

/// A Jenkins job whose build for the release is read.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JenkinsScope {
    /// Jenkins base URL, e.g. `https://jenkins.example.com`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: String,
    /// Job path, folders separated by `/`, e.g. `payments/payment-api-release`.
    #[schemars(length(min = 1, max = 1024))]
    pub job: String,
    /// Jenkins user the API token in secretRef belongs to (HTTP basic authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub user: Option<String>,
    /// Build parameter holding the release id; a build matches when it equals the gate's release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub release_parameter: Option<String>,
    /// Build parameter holding the image digest; compared with the gate's artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub digest_parameter: Option<String>,
    /// Build parameters reported as facts (`parameter_<NAME>`); no other parameter is read out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub parameters: Vec<String>,
}

/// A GitHub repository whose Actions run for the release is read.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GitHubActionsScope {
    /// API base URL. Defaults to `https://api.github.com` (GitHub Enterprise: `https://HOST/api/v3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: Option<String>,
    /// Repository owner (user or organisation).
    #[schemars(length(min = 1, max = 100))]
    pub owner: String,
    /// Repository name.
    #[schemars(length(min = 1, max = 100))]
    pub repository: String,
    /// Workflow file name or id, e.g. `release.yml`; runs of other workflows are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub workflow: Option<String>,
}

/// A SonarQube (or SonarQube Cloud) project's quality gate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SonarQubeScope {
    /// Server base URL, e.g. `https://sonar.example.com` or `https://sonarcloud.io`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: String,
    /// Project key.
    #[schemars(length(min = 1, max = 400))]
    pub project_key: String,
    /// Branch analysed (default: the main branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub branch: Option<String>,
    /// Pull request analysed, instead of a branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub pull_request: Option<String>,
}

/// One Snyk project of one organisation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SnykScope {
    /// REST API base URL. Defaults to `https://api.snyk.io/rest` (regional: `https://api.eu.snyk.io/rest`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: Option<String>,
    /// Organisation id (UUID).
    #[schemars(length(min = 1, max = 64))]
    pub org_id: String,
    /// Project id (UUID): only this project's issues are counted.
    #[schemars(length(min = 1, max = 64))]
    pub project_id: String,
}

/// Datadog monitors by tag and allowlisted metric queries.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DatadogScope {
    /// API base URL of the Datadog site. Defaults to `https://api.datadoghq.com` (EU: `https://api.datadoghq.eu`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: Option<String>,
    /// Monitor tags that select this service's monitors, e.g. `service:payment-api`, `env:production`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub monitor_tags: Vec<String>,
    /// Named metric queries: the only queries this scope can run. Each must return one series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub queries: Vec<NamedQuery>,
    /// Time window of the metric queries, in seconds. Defaults to 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 86400))]
    pub window_seconds: Option<i64>,
    /// Secret key holding the application key (`secretRef` holds the API key).
    pub application_key_ref: SecretKeyReference,
}

/// A New Relic entity (NerdGraph).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NewRelicScope {
    /// NerdGraph endpoint. Defaults to `https://api.newrelic.com/graphql` (EU: `https://api.eu.newrelic.com/graphql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: Option<String>,
    /// Entity GUID of the service (APM application, ...).
    #[schemars(length(min = 1, max = 255))]
    pub entity_guid: String,
    /// Account id the NRQL queries run in (required with `queries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub account_id: Option<i64>,
    /// Named NRQL queries: the only queries this scope can run. Each must return one number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub queries: Vec<NamedQuery>,
}

/// One LaunchDarkly flag in one environment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LaunchDarklyScope {
    /// API base URL. Defaults to `https://app.launchdarkly.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: Option<String>,
    /// Project key.
    #[schemars(length(min = 1, max = 255))]
    pub project: String,
    /// Flag key.
    #[schemars(length(min = 1, max = 255))]
    pub flag: String,
    /// Environment key, e.g. `production`.
    #[schemars(length(min = 1, max = 255))]
    pub environment: String,
    /// The variation being released, by name or value (default: the flag's `defaults.onVariation`); `rollout_percent` is its share of the default rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub variation: Option<String>,
}

/// A Loki server and its allowlisted LogQL metric queries.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LokiScope {
    /// Base URL, e.g. `http://loki-gateway.logging`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: String,
    /// Tenant sent as `X-Scope-OrgID` (multi-tenant Loki).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub tenant: Option<String>,
    /// Named LogQL metric queries (e.g. `sum(count_over_time({app="payment-api"} |= "error" [10m]))`): the only queries this scope can run. Each must return one sample.
    #[schemars(length(min = 1, max = 50))]
    pub queries: Vec<NamedQuery>,
}

/// How the search connector authenticates with the token in secretRef.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SearchAuthScheme {
    /// `Authorization: ApiKey <token>` (Elasticsearch API keys).
    #[default]
    ApiKey,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// HTTP basic authentication; the Secret key holds `user:password`.
    Basic,
}

/// An Elasticsearch or OpenSearch index pattern and its allowlisted count queries.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchScope {
    /// Base URL, e.g. `https://logs.example.com:9200`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: String,
    /// Index or index pattern, e.g. `logs-payment-api-*`.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = Rule::new("!self.contains('/') && !self.startsWith('_')").message("index must be an index name or pattern, not a path"))]
    pub index: String,
    /// How the token in secretRef is sent. Defaults to ApiKey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_scheme: Option<SearchAuthScheme>,
    /// Named count queries: the only queries this scope can run. Each `query` is the JSON of a query DSL clause, e.g. `{"bool": {"filter": [{"term": {"level": "error"}}, {"range": {"@timestamp": {"gte": "now-15m"}}}]}}`.
    #[schemars(length(min = 1, max = 50))]
    pub queries: Vec<NamedQuery>,
}

/// An Argo Rollouts `Rollout` in the ConnectorScope's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArgoRolloutsScope {
    /// Rollout name.
    #[schemars(length(min = 1, max = 253))]
    pub rollout: String,
}

/// A Flagger `Canary` in the ConnectorScope's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FlaggerScope {
    /// Canary name.
    #[schemars(length(min = 1, max = 253))]
    pub canary: String,
}

/// A Flux `Kustomization` or `HelmRelease`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.kustomization) != has(self.helmRelease)").message("name exactly one of kustomization and helmRelease"))]
pub struct FluxScope {
    /// Kustomization name (kustomize.toolkit.fluxcd.io).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub kustomization: Option<String>,
    /// HelmRelease name (helm.toolkit.fluxcd.io).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub helm_release: Option<String>,
    /// Namespace of the object (default: the ConnectorScope's). Flux often keeps them in `flux-system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

// Radar: journey checks and third-party status.

/// Journey checks: HTTP probes of a service's user paths. Every probe URL
/// must start with one of `allowedUrlPrefixes`, which the platform team
/// writes with the scope; nothing from a gate or its evidence reaches a URL.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JourneyScope {
    /// URL prefixes the probes may reach, e.g. `https://shop.example.com/`.
    /// A prefix is matched on scheme, host, port and whole path segments.
    #[schemars(length(min = 1, max = 10))]
    pub allowed_url_prefixes: Vec<String>,
    /// The probes, run in parallel on every evaluation.
    #[schemars(length(min = 1, max = 20))]
    pub probes: Vec<JourneyProbe>,
}

/// One probe of a user path.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JourneyProbe {
    /// Probe name, the prefix of its facts (`<name>_ok`, ...).
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z][a-z0-9_]*$"))]
    pub name: String,
    /// The URL probed; redirects are not followed (a 3xx is the answer).
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials; use secretRef"))]
    pub url: String,
    /// `GET` (default) or `HEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<ProbeMethod>,
    /// Expected HTTP status. Defaults to any 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub expect_status: Option<u16>,
    /// Slowest acceptable answer, in milliseconds (whole body read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60000))]
    pub max_latency_ms: Option<u64>,
    /// A substring the body must contain (GET only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub expect_body: Option<String>,
    /// A value the JSON body must hold at a JSON pointer (GET only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_json: Option<JsonExpectation>,
}

/// HTTP method of a probe: reads only.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum ProbeMethod {
    #[default]
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "HEAD")]
    Head,
}

/// `pointer` (RFC 6901, e.g. `/status`) must hold `equals` (a string is
/// compared as text, any other JSON value by its JSON text).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JsonExpectation {
    /// JSON pointer, e.g. `/status` or `/checks/0/state`.
    #[schemars(length(max = 512), regex(pattern = r"^(/.*)?$"))]
    pub pointer: String,
    /// The expected value as text, e.g. `ok`, `true`, `3`.
    #[schemars(length(max = 1024))]
    pub equals: String,
}

/// A public status page in the Atlassian Statuspage format
/// (`<url>/api/v2/summary.json`), for a dependency of the service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StatuspageScope {
    /// Base URL of the status page, e.g. `https://www.githubstatus.com`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must start with http:// or https://"))]
    #[x_kube(validation = Rule::new("!self.matches('^https?://[^/]*@')").message("url must not carry credentials"))]
    pub url: String,
    /// Short name of the dependency, in the facts' scope and on the Radar page, e.g. `github`.
    #[schemars(length(min = 1, max = 63))]
    pub dependency: String,
    /// Components the service depends on, by name or id. Empty: the whole page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub components: Vec<String>,
}
