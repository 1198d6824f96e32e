//! `releasepassport init`: the first passport in minutes. Looks at what a
//! namespace already runs (the service's Deployment and its image, the Argo
//! CD Applications that deploy into it, its ServiceMonitors) and writes what
//! a first shadow-mode passport needs: the reader ServiceAccount and its
//! Roles, one ConnectorScope per source, a Policy whose rules read only
//! those sources, and the ReleaseGate. For review (YAML or JSON on stdout,
//! or one file per object) or applied with server-side apply.
//!
//! Everything is read as the caller's own identity; nothing is guessed that
//! the cluster does not show (an image without a digest is refused, not
//! resolved from a registry).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, ValueEnum};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::ResourceExt as _;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::connectors::detect::{self, Candidate, Namespaces};

/// Field manager of the objects `init --apply` writes.
pub const FIELD_MANAGER: &str = "releasepassport-init";

/// Write a shadow-mode Policy, ConnectorScopes, reader RBAC and a ReleaseGate for a service.
#[derive(Debug, Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  releasepassport init -n payments --service payment-api                 # review the YAML\n",
    "  releasepassport init -n payments --service payment-api | kubectl apply -f -\n",
    "  releasepassport init -n payments --service payment-api --out-dir release-passport/\n",
    "  releasepassport init -n payments --service payment-api --apply\n",
    "  releasepassport init -n payments --service payment-api --environment staging \\\n",
    "      --argocd-namespace gitops --prometheus-url http://prometheus.monitoring.svc:9090 --output json\n",
    "\n",
    "What it looks at (as your own identity): the service's Deployment (named after the service,\n",
    "or labelled app.kubernetes.io/name or app with it) and its image, pinned by digest in the\n",
    "Deployment or reported by a running Pod; the Argo CD Applications in --argocd-namespace and\n",
    "in the namespace that deploy into the namespace; its ServiceMonitors. What it writes: the\n",
    "reader ServiceAccount, Role and RoleBinding (config/rbac/namespace-reader.yaml) and the\n",
    "Roles each source needs, one ConnectorScope per source (sources a ConnectorScope already\n",
    "reads are referenced, not duplicated), the Policy <service>-<environment> with one rule per\n",
    "source, and the ReleaseGate <service>-<environment> in shadow mode: it records decisions and\n",
    "never blocks. --apply uses server-side apply with the field manager releasepassport-init.\n",
    "It then prints the first `releasepassport gate` command for your pipeline.\n",
    "\n",
    "Exit codes:\n",
    "  0  written or applied\n",
    "  2  bad input, the namespace does not exist, nothing to gate was found, or the API refused an object"
))]
pub struct InitArgs {
    /// Kubeconfig to use instead of the in-cluster configuration or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace the service runs in (its gate is written there).
    #[arg(short = 'n', long, env = "RELEASEPASSPORT_NAMESPACE")]
    pub namespace: String,
    /// Service to gate, e.g. payment-api.
    #[arg(long)]
    pub service: String,
    /// Environment the namespace serves.
    #[arg(long, default_value = "production")]
    pub environment: String,
    /// Release identifier of what runs now (default: the Deployment's app.kubernetes.io/version label, else its image tag).
    #[arg(long, value_name = "RELEASE")]
    pub release: Option<String>,
    /// Image pinned by digest to gate (default: the Deployment's, or a running Pod's).
    #[arg(long, value_name = "IMAGE@sha256:DIGEST")]
    pub image: Option<String>,
    /// Namespace where Argo CD keeps its Applications.
    #[arg(long, value_name = "NAMESPACE", default_value = "argocd")]
    pub argocd_namespace: String,
    /// URL of the Prometheus that scrapes the service's ServiceMonitors.
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// The reader ServiceAccount the ConnectorScopes read as.
    #[arg(long, value_name = "NAME", default_value = detect::DEFAULT_READER)]
    pub reader_service_account: String,
    /// Apply the objects (server-side apply, field manager releasepassport-init) instead of printing them.
    #[arg(long, conflicts_with = "out_dir")]
    pub apply: bool,
    /// Write one YAML file per object into this directory instead of stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = InitOutput::Yaml)]
    pub output: InitOutput,
}

/// Output formats of `init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitOutput {
    /// The objects as YAML documents (stdout, or one file each with --out-dir), or a summary with --apply.
    Yaml,
    /// One JSON object: what was found, the objects, the next command.
    Json,
}

/// The workload the gate guards.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub name: String,
    /// Pinned by digest.
    pub image: String,
    pub release: String,
}

/// What the namespace runs, as far as the gate is concerned.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub namespace: String,
    pub service: String,
    pub environment: String,
    pub deployment: Workload,
    /// Argo CD Applications deploying into the namespace.
    pub argocd: Vec<Candidate>,
    /// ServiceMonitors of the namespace.
    pub service_monitors: Vec<Candidate>,
    /// Whether the gate exists already.
    pub gate_exists: bool,
}

/// What to write.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub objects: Vec<Value>,
    /// What to check or fill in before relying on the gate.
    pub notes: Vec<String>,
    /// The pipeline's first gate command.
    pub next: String,
}

pub fn run(args: &InitArgs) -> anyhow::Result<i32> {
    for (flag, value) in [
        ("--namespace", Some(args.namespace.as_str())),
        ("--service", Some(args.service.as_str())),
        ("--environment", Some(args.environment.as_str())),
        ("--argocd-namespace", Some(args.argocd_namespace.as_str())),
        (
            "--reader-service-account",
            Some(args.reader_service_account.as_str()),
        ),
        ("--release", args.release.as_deref()),
    ] {
        super::report::non_empty(flag, value)?;
    }
    if let Some(image) = &args.image
        && digest_of(image).is_none()
    {
        bail!(
            "--image {image}: must be pinned by digest (IMAGE@sha256:<64 lowercase hex characters>)"
        );
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &InitArgs) -> anyhow::Result<i32> {
    let (client, _) = super::report::client(args.kubeconfig.as_deref()).await?;
    let found = discover(&client, args).await?;
    let plan = plan(
        &found,
        &args.reader_service_account,
        args.prometheus_url.as_deref(),
    );
    if args.apply {
        if found.gate_exists {
            bail!(
                "ReleaseGate {}/{} exists already: init writes a namespace's first gate; change it with `releasepassport gate` or kubectl",
                found.namespace,
                gate_name(&found)
            );
        }
        apply(&client, &plan).await?;
    }
    let out = match (args.output, &args.out_dir, args.apply) {
        (InitOutput::Json, dir, applied) => {
            if let Some(dir) = dir {
                write_files(dir, &plan)?;
            }
            serde_json::to_string_pretty(&json!({
                "found": found, "objects": plan.objects, "notes": plan.notes,
                "applied": applied, "next": plan.next,
            }))
            .context("encoding JSON")?
                + "\n"
        }
        (InitOutput::Yaml, Some(dir), _) => {
            let files = write_files(dir, &plan)?;
            let mut out = summary(&found);
            writeln!(out, "Wrote {} files into {}:", files.len(), dir.display())?;
            for f in files {
                writeln!(out, "  {}", f.display())?;
            }
            out.push_str(&trailer(
                &plan,
                Some(&format!("kubectl apply -f {}", dir.display())),
            ));
            out
        }
        (InitOutput::Yaml, None, true) => {
            let mut out = summary(&found);
            writeln!(out, "Applied (server-side, field manager {FIELD_MANAGER}):")?;
            for o in &plan.objects {
                writeln!(out, "  {}", describe(o))?;
            }
            out.push_str(&trailer(&plan, None));
            out
        }
        (InitOutput::Yaml, None, false) => yaml(&found, &plan)?,
    };
    print!("{out}");
    Ok(super::exit::OK)
}

/// Reads the namespace, the service's Deployment and the detected candidates.
async fn discover(client: &kube::Client, args: &InitArgs) -> anyhow::Result<Found> {
    let ns = &args.namespace;
    match Api::<Namespace>::all(client.clone()).get_opt(ns).await {
        Ok(Some(_)) => {}
        Ok(None) => bail!("namespace {ns} not found"),
        // May not read namespaces: the Deployment list below says whether it exists.
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        Err(e) => return Err(anyhow!("reading namespace {ns}: {e}")),
    }
    let deployment = find_deployment(client, ns, &args.service).await?;
    let image = match &args.image {
        Some(image) => image.clone(),
        None => pinned_image(client, ns, &deployment).await?,
    };
    let release = match &args.release {
        Some(r) => r.clone(),
        None => release_of(&deployment, &image).ok_or_else(|| {
            anyhow!(
                "Deployment {ns}/{} has no app.kubernetes.io/version label and its image has no tag: pass --release",
                deployment.name_any()
            )
        })?,
    };
    let mut look_in = vec![ns.clone()];
    if args.argocd_namespace != *ns {
        look_in.push(args.argocd_namespace.clone());
    }
    let detection = detect::detect(
        client,
        &Namespaces::Only(look_in),
        &args.reader_service_account,
    )
    .await
    .map_err(|e| anyhow!("detecting what namespace {ns} runs: {e}"))?;
    let mine = |connector: &str| -> Vec<Candidate> {
        let all: Vec<Candidate> = detection
            .candidates
            .iter()
            .filter(|c| c.connector == connector && c.scope_namespace == *ns)
            .cloned()
            .collect();
        prefer_service(all, &args.service)
    };
    let gate = format!("{}-{}", args.service, args.environment);
    let gate_exists = Api::<crate::api::ReleaseGate>::namespaced(client.clone(), ns)
        .get_opt(&gate)
        .await
        .map_err(|e| anyhow!("reading ReleaseGate {ns}/{gate}: {e}"))?
        .is_some();
    Ok(Found {
        namespace: ns.clone(),
        service: args.service.clone(),
        environment: args.environment.clone(),
        deployment: Workload {
            name: deployment.name_any(),
            image,
            release,
        },
        argocd: mine("argocd"),
        service_monitors: mine("prometheus"),
        gate_exists,
    })
}

/// Of several candidates, those named after the service when there are any.
fn prefer_service(all: Vec<Candidate>, service: &str) -> Vec<Candidate> {
    let named: Vec<Candidate> = all
        .iter()
        .filter(|c| c.name.contains(service))
        .cloned()
        .collect();
    if named.is_empty() { all } else { named }
}

/// The service's Deployment: named after it, else labelled with its name.
async fn find_deployment(
    client: &kube::Client,
    ns: &str,
    service: &str,
) -> anyhow::Result<Deployment> {
    let list = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| anyhow!("listing Deployments in namespace {ns}: {e}"))?;
    let labelled = |d: &Deployment| {
        let labels = d.labels();
        ["app.kubernetes.io/name", "app"]
            .iter()
            .any(|k| labels.get(*k).is_some_and(|v| v == service))
    };
    let mut items = list.items;
    items.sort_by_key(|d| d.name_any());
    if let Some(i) = items.iter().position(|d| d.name_any() == service) {
        return Ok(items.swap_remove(i));
    }
    if let Some(i) = items.iter().position(labelled) {
        return Ok(items.swap_remove(i));
    }
    let names: Vec<String> = items.iter().map(|d| d.name_any()).collect();
    if names.is_empty() {
        bail!(
            "nothing to gate in namespace {ns}: it has no Deployment (init gates a running Deployment)"
        )
    }
    bail!(
        "no Deployment of service {service} in namespace {ns} (none named {service} or labelled app.kubernetes.io/name={service} or app={service}); Deployments there: {}",
        names.join(", ")
    )
}

/// The digest part of `image@sha256:<64 hex>`.
fn digest_of(image: &str) -> Option<&str> {
    let (name, digest) = image.rsplit_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    (!name.is_empty()
        && !name.contains(char::is_whitespace)
        && hex.len() == 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then_some(digest)
}

/// The image without tag or digest.
fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

/// The first container's image, pinned by digest: as the Deployment names
/// it, else as a running Pod of it reports it.
async fn pinned_image(
    client: &kube::Client,
    ns: &str,
    deployment: &Deployment,
) -> anyhow::Result<String> {
    let name = deployment.name_any();
    let image = first_image(deployment)
        .ok_or_else(|| anyhow!("Deployment {ns}/{name} has no container image"))?;
    if digest_of(&image).is_some() {
        return Ok(image);
    }
    let selector = deployment
        .spec
        .selector
        .match_labels
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    if !selector.is_empty()
        && let Ok(pods) = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&selector))
            .await
    {
        for pod in pods.items {
            let statuses = pod
                .status
                .and_then(|s| s.container_statuses)
                .unwrap_or_default();
            for s in statuses {
                if let Some((_, digest)) = s.image_id.rsplit_once('@')
                    && repository(&s.image) == repository(&image)
                {
                    let pinned = format!("{}@{digest}", repository(&image));
                    if digest_of(&pinned).is_some() {
                        return Ok(pinned);
                    }
                }
            }
        }
    }
    bail!(
        "Deployment {ns}/{name} runs {image}, which is not pinned by digest, and no running Pod reports its digest: pass --image {}@sha256:<digest>",
        repository(&image)
    )
}

/// The image of the Deployment's first container, as written.
fn first_image(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
}

/// The release of what runs: the version label, else the image tag.
fn release_of(deployment: &Deployment, image: &str) -> Option<String> {
    if let Some(v) = deployment
        .labels()
        .get("app.kubernetes.io/version")
        .filter(|v| !v.is_empty())
    {
        return Some(v.clone());
    }
    let tagged = first_image(deployment).unwrap_or_else(|| image.to_string());
    let without_digest = tagged.split('@').next().unwrap_or(&tagged);
    match without_digest.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') && !tag.is_empty() => Some(tag.to_string()),
        _ => None,
    }
}

fn gate_name(found: &Found) -> String {
    format!("{}-{}", found.service, found.environment)
}

/// The objects for a first shadow-mode passport (pure).
pub fn plan(found: &Found, reader: &str, prometheus_url: Option<&str>) -> Plan {
    let ns = &found.namespace;
    let gate = gate_name(found);
    let mut objects = reader_rbac(ns, reader);
    let mut notes = Vec::new();
    let mut scopes = Vec::new();
    let mut rules = Vec::new();

    let runtime = format!("{}-runtime", found.service);
    objects.push(json!({
        "apiVersion": api_version(), "kind": "ConnectorScope",
        "metadata": {"name": runtime, "namespace": ns},
        "spec": {"connector": "kubernetes", "serviceAccountName": reader, "maxAgeSeconds": 300,
                 "kubernetes": {"workloads": [{"kind": "Deployment", "name": found.deployment.name}]}},
    }));
    scopes.push(runtime);
    rules.push(rule(
        "deployment-ready",
        &format!("Deployment {} is ready", found.deployment.name),
        "kubernetes",
        "ready",
        json!({"operator": "equals", "value": true}),
        &format!(
            "Wait until Deployment {} is ready in {{environment}}.",
            found.deployment.name
        ),
    ));

    for c in &found.argocd {
        scopes.push(take_candidate(c, &mut objects, None));
    }
    if !found.argocd.is_empty() {
        rules.push(rule(
            "argocd-synced",
            "Argo CD application synced",
            "argocd",
            "sync_status",
            json!({"operator": "equals", "value": "Synced"}),
            "Re-sync the GitOps application and wait for fresh runtime evidence.",
        ));
        rules.push(rule(
            "argocd-healthy",
            "Argo CD application healthy",
            "argocd",
            "health_status",
            json!({"operator": "equals", "value": "Healthy"}),
            "Check the Argo CD application's unhealthy resources before promoting {service}.",
        ));
    }

    // One Prometheus scope for the namespace: every prometheus scope counts
    // as reading all of its ServiceMonitors.
    if let Some(c) = found.service_monitors.first() {
        let scope = take_candidate(c, &mut objects, prometheus_url);
        if c.configured_by.is_none() && prometheus_url.is_none() {
            notes.push(format!(
                "ConnectorScope {ns}/{scope}: {}",
                c.note.clone().unwrap_or_default()
            ));
        }
        scopes.push(scope);
        let mut up = rule(
            "targets-up",
            "Prometheus scrapes every target of the namespace",
            "prometheus",
            "targets_up",
            json!({"operator": "greaterThanOrEqual", "value": 1}),
            "Check the ServiceMonitor's targets of {service} in Prometheus.",
        );
        // Until the scope's URL and queries are checked, a missing answer
        // does not hold the release; a failing one does.
        up["required"] = json!(false);
        rules.push(up);
    }

    objects.push(json!({
        "apiVersion": api_version(), "kind": "Policy",
        "metadata": {"name": gate, "namespace": ns},
        "spec": {"rules": rules},
    }));
    objects.push(json!({
        "apiVersion": api_version(), "kind": "ReleaseGate",
        "metadata": {"name": gate, "namespace": ns},
        "spec": {
            "service": found.service, "release": found.deployment.release,
            "environment": found.environment, "mode": "shadow",
            "policyRef": {"name": gate},
            "connectorScopes": scopes.iter().map(|s| json!({"name": s})).collect::<Vec<_>>(),
            "artifact": {"image": found.deployment.image},
            "target": {"kind": "Deployment", "name": found.deployment.name},
        },
    }));
    if found.gate_exists {
        notes.push(format!(
            "ReleaseGate {ns}/{gate} exists already: applying these objects would change it"
        ));
    }
    let next = format!(
        "releasepassport gate -n {ns} --service {} --environment {} --release <release> --image {}@sha256:<digest>",
        found.service,
        found.environment,
        repository(&found.deployment.image)
    );
    Plan {
        objects,
        notes,
        next,
    }
}

/// Adds a candidate's ConnectorScope and Roles (unless a scope reads it
/// already) and returns the scope's name.
fn take_candidate(c: &Candidate, objects: &mut Vec<Value>, prometheus_url: Option<&str>) -> String {
    if let Some(existing) = &c.configured_by {
        return existing.clone();
    }
    let mut scope = c.connector_scope.clone();
    if let Some(url) = prometheus_url
        && c.connector == "prometheus"
    {
        scope["spec"]["prometheus"]["url"] = json!(url);
    }
    let name = scope["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    objects.push(scope);
    objects.extend(c.rbac.iter().cloned());
    name
}

fn rule(id: &str, label: &str, connector: &str, fact: &str, condition: Value, next: &str) -> Value {
    json!({"id": id, "label": label, "connector": connector, "fact": fact,
           "condition": condition, "onFail": "HOLD", "nextAction": next})
}

fn api_version() -> String {
    format!("{}/{}", crate::api::GROUP, crate::api::VERSION)
}

/// The reader ServiceAccount and its Role of config/rbac/namespace-reader.yaml.
fn reader_rbac(ns: &str, reader: &str) -> Vec<Value> {
    let labels = json!({"app.kubernetes.io/part-of": "release-passport"});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": reader, "namespace": ns, "labels": labels}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": reader, "namespace": ns, "labels": labels},
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": reader, "namespace": ns, "labels": labels},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": reader},
               "subjects": [{"kind": "ServiceAccount", "name": reader, "namespace": ns}]}),
    ]
}

/// `Kind namespace/name` of an object.
fn describe(o: &Value) -> String {
    let text = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default();
    format!(
        "{} {}/{}",
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name")
    )
}

/// The API resource of one of the kinds init writes.
fn resource(o: &Value) -> anyhow::Result<ApiResource> {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let kind = o["kind"].as_str().unwrap_or_default();
    let plural = match kind {
        "ServiceAccount" => "serviceaccounts",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ConnectorScope" => "connectorscopes",
        "Policy" => "policies",
        "ReleaseGate" => "releasegates",
        other => bail!("init does not write {other} objects"),
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}

/// Server-side applies every object, in order (RBAC, scopes, policy, gate).
async fn apply(client: &kube::Client, plan: &Plan) -> anyhow::Result<()> {
    let pp = PatchParams::apply(FIELD_MANAGER);
    for o in &plan.objects {
        let ar = resource(o)?;
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        api.patch(name, &pp, &Patch::Apply(o))
            .await
            .map_err(|e| anyhow!("applying {}: {e}", describe(o)))?;
    }
    Ok(())
}

/// File name of an object: `NN-kind-name.yaml`.
fn file_name(i: usize, o: &Value) -> String {
    format!(
        "{:02}-{}-{}.yaml",
        i + 1,
        o["kind"].as_str().unwrap_or_default().to_lowercase(),
        o["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn write_files(dir: &Path, plan: &Plan) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (i, o) in plan.objects.iter().enumerate() {
        let path = dir.join(file_name(i, o));
        let text = serde_saphyr::to_string(o).context("encoding YAML")?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// What was found, as `# ` comment lines.
fn summary(found: &Found) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {} in namespace {}: Deployment {} runs {} ({})",
        found.service,
        found.namespace,
        found.deployment.name,
        found.deployment.image,
        found.deployment.release
    );
    for c in found.argocd.iter().chain(&found.service_monitors) {
        let how = match &c.configured_by {
            Some(scope) => format!("read by ConnectorScope {scope}"),
            None => "new ConnectorScope".into(),
        };
        let _ = writeln!(out, "# {} {}/{}: {how}", c.kind, c.namespace, c.name);
    }
    out
}

/// Notes and the next commands, as `# ` comment lines.
fn trailer(plan: &Plan, apply_first: Option<&str>) -> String {
    let mut out = String::new();
    for n in &plan.notes {
        let _ = writeln!(out, "# Check: {n}");
    }
    if let Some(cmd) = apply_first {
        let _ = writeln!(out, "# Apply: {cmd}");
    }
    let _ = writeln!(
        out,
        "# Then, in the pipeline, for each release (shadow mode: it records the decision and never blocks):\n#   {}",
        plan.next
    );
    out
}

/// The objects as YAML documents, between the summary and the trailer.
fn yaml(found: &Found, plan: &Plan) -> anyhow::Result<String> {
    let mut out = summary(found);
    for o in &plan.objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(o).context("encoding YAML")?);
    }
    out.push_str(&trailer(plan, Some("kubectl apply -f <this file>")));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::detect::{DETECTABLE, candidate};

    const IMAGE: &str = "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";

    fn found() -> Found {
        let app = json!({"metadata": {"name": "payment-api-production", "namespace": "argocd"},
                         "spec": {"destination": {"namespace": "payments"}}});
        let sm = json!({"metadata": {"name": "payment-api", "namespace": "payments"}});
        Found {
            namespace: "payments".into(),
            service: "payment-api".into(),
            environment: "production".into(),
            deployment: Workload {
                name: "payment-api".into(),
                image: IMAGE.into(),
                release: "v2.18.4".into(),
            },
            argocd: vec![candidate(&DETECTABLE[0], &app, detect::DEFAULT_READER)],
            service_monitors: vec![candidate(&DETECTABLE[5], &sm, detect::DEFAULT_READER)],
            gate_exists: false,
        }
    }

    fn of_kind<'a>(plan: &'a Plan, kind: &str) -> Vec<&'a Value> {
        plan.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    #[test]
    fn every_object_parses_as_its_type_and_the_gate_reads_every_scope() {
        let plan = plan(&found(), detect::DEFAULT_READER, Some("http://prom:9090"));
        let gate: crate::api::ReleaseGate =
            serde_json::from_value(of_kind(&plan, "ReleaseGate")[0].clone()).expect("a gate");
        assert_eq!(gate.spec.mode, crate::api::Mode::Shadow);
        assert_eq!(gate.spec.artifact.image, IMAGE);
        assert_eq!(gate.spec.release, "v2.18.4");
        let policy: crate::api::Policy =
            serde_json::from_value(of_kind(&plan, "Policy")[0].clone()).expect("a policy");
        assert_eq!(
            policy.metadata.name.as_deref(),
            Some("payment-api-production")
        );
        assert_eq!(gate.spec.policy_ref.name, "payment-api-production");
        let scopes: Vec<String> = of_kind(&plan, "ConnectorScope")
            .iter()
            .map(|s| {
                let scope: crate::api::ConnectorScope =
                    serde_json::from_value((*s).clone()).expect("a scope");
                scope.metadata.name.expect("name")
            })
            .collect();
        let referenced: Vec<String> = gate
            .spec
            .connector_scopes
            .iter()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(scopes, referenced);
        assert_eq!(
            scopes,
            [
                "payment-api-runtime",
                "payment-api-production-argocd",
                "payment-api-prometheus"
            ]
        );
        let connectors: Vec<&str> = policy
            .spec
            .rules
            .iter()
            .map(|r| r.connector.as_str())
            .collect();
        assert_eq!(connectors, ["kubernetes", "argocd", "argocd", "prometheus"]);
        let prom = of_kind(&plan, "ConnectorScope")[2];
        assert_eq!(prom["spec"]["prometheus"]["url"], "http://prom:9090");
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        // The Argo CD Role is in Argo CD's namespace, bound to the reader of the service's.
        let role = of_kind(&plan, "RoleBinding")
            .into_iter()
            .find(|r| r["metadata"]["namespace"] == "argocd")
            .expect("a RoleBinding in argocd");
        assert_eq!(role["subjects"][0]["namespace"], "payments");
        assert!(
            plan.next
                .starts_with("releasepassport gate -n payments --service payment-api")
        );
    }

    #[test]
    fn a_source_a_scope_reads_already_is_referenced_not_rewritten() {
        let mut f = found();
        f.argocd[0].configured_by = Some("payments-argocd".into());
        f.service_monitors.clear();
        let plan = plan(&f, detect::DEFAULT_READER, None);
        let gate = of_kind(&plan, "ReleaseGate")[0];
        assert_eq!(
            gate["spec"]["connectorScopes"],
            json!([{"name": "payment-api-runtime"}, {"name": "payments-argocd"}])
        );
        assert_eq!(of_kind(&plan, "ConnectorScope").len(), 1);
        assert!(
            !plan
                .objects
                .iter()
                .any(|o| o["metadata"]["namespace"] == "argocd")
        );
    }

    #[test]
    fn a_prometheus_scope_without_a_url_is_a_note_and_an_optional_rule() {
        let plan = plan(&found(), detect::DEFAULT_READER, None);
        assert_eq!(plan.notes.len(), 1);
        assert!(
            plan.notes[0].contains("set prometheus.url"),
            "{:?}",
            plan.notes
        );
        let policy = of_kind(&plan, "Policy")[0];
        let up = policy["spec"]["rules"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["id"] == "targets-up"))
            .expect("targets-up");
        assert_eq!(up["required"], false);
    }

    #[test]
    fn the_reader_role_is_the_one_of_the_shipped_manifest() {
        let shipped = include_str!("../../config/rbac/namespace-reader.yaml");
        let role = shipped
            .split("\n---\n")
            .find(|d| d.contains("kind: Role\n"))
            .expect("the Role document");
        let shipped: Value = serde_saphyr::from_str(role).expect("YAML");
        let ours = &reader_rbac("payments", detect::DEFAULT_READER)[1];
        assert_eq!(ours["rules"], shipped["rules"]);
        assert_eq!(ours["metadata"]["name"], shipped["metadata"]["name"]);
    }

    #[test]
    fn images_are_pinned_and_tags_become_releases() {
        assert_eq!(digest_of(IMAGE), Some(&IMAGE[IMAGE.len() - 71..]));
        assert_eq!(digest_of("registry.example.com/payment-api:v1"), None);
        assert_eq!(digest_of("payment-api@sha256:ABC"), None);
        assert_eq!(
            repository("registry.example.com:5000/payment-api:v1"),
            "registry.example.com:5000/payment-api"
        );
        assert_eq!(repository(IMAGE), "registry.example.com/payment-api");
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "payment-api"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "app", "image": "registry.example.com/payment-api:v2.18.4@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0"}]}}}
        }))
        .expect("deployment");
        assert_eq!(release_of(&d, IMAGE).as_deref(), Some("v2.18.4"));
    }
}
