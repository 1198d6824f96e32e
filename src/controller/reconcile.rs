//! Reconciling one ReleaseGate, as named steps:
//! dereference → collect evidence → evaluate → sign and apply the Passport →
//! update status. Everything between the I/O ends is pure (engine, passport,
//! `status`, `passports`, `releases`).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::{
    ConnectorHealth, ConnectorKind, ConnectorScope, EvidenceDocument, GateReference, GrantStatus,
    HistoryType, Passport, Policy, ReleaseApproval, ReleaseGate, ReleaseWaiver,
};
use crate::connectors::ScopeRequest;
use crate::engine::{self, EvaluationInput, Stage};
use crate::insights::history;
use crate::passport;

use super::cached_gate::CachedGate;
use super::metrics::{
    ConnectorErrorLabels, ConnectorEvidenceLabels, ConnectorLabels, DecisionLabels, DurationTimer,
    ReasonLabels, ReleaseLabels, ResultLabels, RuleLabels,
};
use super::{Context, MANAGER, attest, passports, releases, status};

/// Why a reconcile failed. Each variant is a reason a machine can match.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("serialising: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("signing: {0}")]
    Sign(String),
    #[error(transparent)]
    Unpack(#[from] super::cached_gate::UnpackError),
}

impl Error {
    /// Label of the `reconcile_errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeError",
            Error::Serialize(_) => "SerializeError",
            Error::Sign(_) => "SignError",
            Error::Unpack(_) => "UnpackError",
        }
    }
}

/// Reconciles one ReleaseGate.
pub async fn reconcile(cached: Arc<CachedGate>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = DurationTimer::new(&ctx.metrics.reconcile_duration);
    let result = match cached.unpack() {
        Ok(gate) => reconcile_inner(&gate, &ctx).await,
        Err(e) => Err(e.into()),
    };
    let label = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels {
            result: label.into(),
        })
        .inc();
    result
}

/// Retries failed reconciles with a delay, and counts them.
pub fn error_policy(gate: Arc<CachedGate>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(gate = %gate.name_any(), namespace = ?gate.namespace(), error = %error, "reconcile failed; retrying");
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ReasonLabels {
            reason: error.metric_label().into(),
        })
        .inc();
    let seed = u64::from(Timestamp::now().subsec_nanosecond().unsigned_abs());
    Action::requeue(retry_delay(error, seed))
}

/// How long a failed reconcile waits: 5 to 10 s, or 15 to 30 s when the
/// apiserver said it is overloaded (429 from priority and fairness, 5xx),
/// spread by `seed` so that many gates failing together do not all come
/// back in the same instant.
fn retry_delay(error: &Error, seed: u64) -> Duration {
    let overloaded =
        matches!(error, Error::Kube(kube::Error::Api(s)) if s.code == 429 || s.code >= 500);
    let base = if overloaded { 15_000 } else { 5_000 };
    Duration::from_millis(base + seed % base)
}

async fn reconcile_inner(gate: &ReleaseGate, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    // 1. Dereference: the Policy, the platform's minimum mode, the gate's
    //    approvals and waivers.
    let deref = match dereference(gate, ctx, now).await? {
        Ok(deref) => deref,
        Err(action) => return Ok(action),
    };
    // 2. Collect evidence from the ConnectorScopes (and which scopes could
    //    not be read, and which notify).
    let collected = collect(gate, ctx, &deref.namespace, now).await?;
    // 3. Evaluate (with what the gate proved and a standing recommendation).
    let evaluated = match evaluate(gate, ctx, &deref, &collected, now) {
        Ok(e) => e,
        Err(msg) => return gate_failed(gate, ctx, "InvalidReleaseGate", &msg, now).await,
    };
    // 4. Sign and apply the Passport.
    let applied = apply_passport(gate, ctx, &deref, &evaluated).await?;
    // 5. Status, history, the approvals' and waivers' status, Events.
    update_status(
        gate,
        ctx,
        &deref,
        &evaluated,
        &applied,
        &collected.notify,
        now,
    )
    .await
}

/// What the gate refers to, read before evaluating.
struct Dereferenced {
    namespace: String,
    name: String,
    policy_name: String,
    compiled: engine::CompiledPolicy,
    /// Why enforce is the minimum (the namespace's label), when it is.
    enforce_minimum: Option<String>,
    approvals: Vec<Arc<ReleaseApproval>>,
    waivers: Vec<Arc<ReleaseWaiver>>,
}

/// Step 1. `Err(action)`: the gate cannot be evaluated (its status says why).
async fn dereference(
    gate: &ReleaseGate,
    ctx: &Context,
    now: Timestamp,
) -> Result<Result<Dereferenced, Action>, Error> {
    let namespace = gate.namespace().unwrap_or_default();
    let name = gate.name_any();
    let policy_name = gate.spec.policy_ref.name.clone();
    // Every read comes from the caches; a first evaluation waits until they
    // hold a full list, so it never misses an object that exists.
    ctx.stores.ready().await;
    let policies: Api<Policy> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(policy) = ctx.stores.policy(&namespace, &policy_name) else {
        let msg = format!("Policy {policy_name} not found in namespace {namespace}");
        return Ok(Err(
            gate_failed(gate, ctx, "PolicyNotFound", &msg, now).await?
        ));
    };
    let compiled = match engine::compile(&policy.spec) {
        Ok(compiled) => {
            policy_status(&policies, &policy, Ok(&compiled)).await;
            compiled
        }
        Err(err) => {
            let msg = format!("Policy {policy_name} is invalid: {err}");
            policy_status(&policies, &policy, Err(&err.to_string())).await;
            return Ok(Err(
                gate_failed(gate, ctx, "InvalidPolicy", &msg, now).await?
            ));
        }
    };
    let enforce_minimum = ctx.stores.enforced_namespace(&namespace).then(|| {
        format!(
            "namespace {namespace} requires enforce mode (label {}=true, set by the platform)",
            crate::api::ENFORCE_LABEL
        )
    });
    Ok(Ok(Dereferenced {
        approvals: ctx.stores.approvals_of(&namespace, &name),
        waivers: ctx.stores.waivers_of(&namespace, &name),
        namespace,
        name,
        policy_name,
        compiled,
        enforce_minimum,
    }))
}

/// The outcome of step 3.
struct Evaluated {
    evaluation: engine::Evaluation,
    watch: Option<status::Watch>,
    record: releases::Record,
    restored: Option<String>,
}

/// Step 3 (pure): post-deploy stage, standing recommendation, the engine,
/// and the new record of allowed and proven releases. `Err`: the gate's
/// spec cannot be evaluated.
fn evaluate(
    gate: &ReleaseGate,
    ctx: &Context,
    deref: &Dereferenced,
    collected: &Collected,
    now: Timestamp,
) -> Result<Evaluated, String> {
    let evidence = collected.evidence.as_slice();
    let compiled = &deref.compiled;
    let watch = post_deploy_watch(gate, evidence, compiled, now);
    let stage = match &watch {
        Some(w) if now < w.until => Stage::PostDeploy,
        _ => Stage::PreDeploy,
    };
    let digest = engine::image_digest(&gate.spec.artifact.image).unwrap_or_default();
    let current = releases::Current {
        release: &gate.spec.release,
        image: &gate.spec.artifact.image,
        digest,
    };
    let old = gate.status.clone().unwrap_or_default();
    let old_record = releases::Record {
        allowed: old.allowed_releases,
        proven: old.proven_releases,
        rollback_recommended: old.rollback_recommended,
    };
    let running = releases::running_digests(evidence);
    let (standing, restored) = releases::standing_recommendation(
        old_record.rollback_recommended.as_ref(),
        &current,
        running.as_deref(),
        &old_record.proven,
    );
    let gate_ref = GateReference {
        namespace: deref.namespace.clone(),
        name: deref.name.clone(),
        generation: gate.metadata.generation,
    };
    let approvals: Vec<engine::ApprovalInput<'_>> = deref
        .approvals
        .iter()
        .map(|a| engine::ApprovalInput {
            name: a.metadata.name.as_deref().unwrap_or_default(),
            spec: &a.spec,
            created_at: a.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect();
    let waivers: Vec<engine::WaiverInput<'_>> = deref
        .waivers
        .iter()
        .map(|w| engine::WaiverInput {
            name: w.metadata.name.as_deref().unwrap_or_default(),
            spec: &w.spec,
            created_at: w.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect();
    let mut evaluation = engine::evaluate(&EvaluationInput {
        policy_name: &deref.policy_name,
        policy: compiled,
        gate: &gate.spec,
        gate_ref: Some(&gate_ref),
        evidence,
        now,
        actor: &ctx.config.actor,
        stage,
        context: engine::GateContext {
            approvals: &approvals,
            waivers: &waivers,
            enforce_minimum: deref.enforce_minimum.as_deref(),
            proven_releases: Some(&old_record.proven),
            rollback_recommended: standing.as_ref(),
        },
    })
    .map_err(|err| format!("ReleaseGate cannot be evaluated: {err}"))?;
    // Evidence a scope could not read is explained where it is missing.
    engine::explain_unavailable(&mut evaluation.passport, &collected.unavailable, now);
    let passport_name = passports::name(
        &deref.name,
        &passports::identity(&evaluation.passport).map_err(|e| e.to_string())?,
    );
    let record = releases::update(
        &old_record,
        standing.as_ref(),
        &current,
        &releases::Evaluated {
            decision: evaluation.decision(),
            passport: &passport_name,
            failing_checks: &evaluation.failing_checks,
        },
        running.as_deref(),
        compiled.rollback_window_seconds(),
        now,
    );
    Ok(Evaluated {
        evaluation,
        watch,
        record,
        restored,
    })
}

/// The signing key id of passport `passport_name` when the gate's status
/// already names it as current (so it exists: it was written or read before
/// that status was) and no Passport deletion was seen since. Attaching
/// attestations needs the stored passport, so then it is always read.
fn recorded_passport(gate: &ReleaseGate, ctx: &Context, passport_name: &str) -> Option<String> {
    if ctx.config.attach.is_some() {
        return None;
    }
    let status = gate.status.as_ref()?;
    if status.passport_name.as_deref() != Some(passport_name)
        || status.evaluated_at.is_none_or(|t| t < ctx.stores.started())
    {
        return None;
    }
    let key_id = status.audit.as_ref()?.signing_key_id.clone()?;
    let ns = gate.namespace().unwrap_or_default();
    (!ctx.stores.take_deleted_passport(&ns, passport_name)).then_some(key_id)
}

/// Creates the Passport; when it already exists (an earlier decision that
/// came back, or another writer), reads the stored one instead: a new
/// decision costs one request, not a read and a write. `(stored, written)`.
async fn create_or_read(
    ctx: &Context,
    gate: &ReleaseGate,
    api: &Api<Passport>,
    passport_name: &str,
    document: &crate::api::PassportSpec,
) -> Result<(Option<Passport>, bool), Error> {
    let ns = gate.namespace().unwrap_or_default();
    let name = gate.name_any();
    let mut object = Passport::new(passport_name, document.clone());
    object.metadata.namespace = Some(ns.clone());
    object.metadata.labels = Some(passports::labels(&name, document));
    object.metadata.owner_references = gate.controller_owner_ref(&()).map(|r| vec![r]);
    let pp = kube::api::PostParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    match api.create(&pp, &object).await {
        Ok(_) => {
            ctx.metrics.passports_written.inc();
            tracing::info!(gate = %name, namespace = %ns, passport = %passport_name, decision = %document.decision, "wrote passport");
            Ok((None, true))
        }
        // Already stored: this decision is on record.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok((api.get_opt(passport_name).await?, false)),
        Err(e) => Err(e.into()),
    }
}

/// The outcome of step 4.
struct Applied {
    document: crate::api::PassportSpec,
    passport_name: String,
    /// Key id of the Passport on record (an unchanged decision keeps its
    /// earlier signature even when the signing key changed since).
    signing_key_id: String,
    /// A new Passport was written.
    written: bool,
    /// The Passport on record with this decision before this reconcile.
    existing: Option<Passport>,
}

/// Step 4: sign, and apply the Passport unless an identical decision is on record.
async fn apply_passport(
    gate: &ReleaseGate,
    ctx: &Context,
    deref: &Dereferenced,
    evaluated: &Evaluated,
) -> Result<Applied, Error> {
    let ns = &deref.namespace;
    let name = &deref.name;
    let document = evaluated
        .evaluation
        .sign(&ctx.signer)
        .map_err(|e| Error::Sign(e.to_string()))?;
    let identity = passports::identity(&document)?;
    let passport_name = passports::name(name, &identity);
    let passport_api: Api<Passport> = Api::namespaced(ctx.client.clone(), ns);
    let recorded = recorded_passport(gate, ctx, &passport_name);
    let (existing, written) = match recorded {
        // The status names this passport and nothing deleted it since: no request.
        Some(_) => (None, false),
        None => create_or_read(ctx, gate, &passport_api, &passport_name, &document).await?,
    };
    let signing_key_id = existing
        .as_ref()
        .map(|p| p.spec.signing_key_id().to_string())
        .or_else(|| recorded.clone())
        .unwrap_or_else(|| document.signing_key_id().to_string());
    ctx.metrics
        .decisions
        .get_or_create(&DecisionLabels {
            namespace: ns.clone(),
            service: gate.spec.service.clone(),
            environment: gate.spec.environment.clone(),
            mode: document.mode.as_str().into(),
            decision: document.decision.as_str().into(),
        })
        .inc();
    Ok(Applied {
        document,
        passport_name,
        signing_key_id,
        written,
        existing,
    })
}

/// Step 5: the gate's status (with its history), the status of its
/// approvals and waivers, Events, release metrics and Passport retention.
async fn update_status(
    gate: &ReleaseGate,
    ctx: &Context,
    deref: &Dereferenced,
    evaluated: &Evaluated,
    applied: &Applied,
    notify: &[ConnectorScope],
    now: Timestamp,
) -> Result<Action, Error> {
    let evaluation = &evaluated.evaluation;
    let document = &applied.document;
    let passport_name = &applied.passport_name;
    let old = gate.status.as_ref();
    let spread = resync_spread(&deref.namespace, &deref.name, ctx.config.resync);
    let mut next_evaluation_at =
        next_evaluation(evaluation.next_stale_at, now, ctx.config.resync, spread);
    if let Some(w) = &evaluated.watch
        && w.until > now
        && w.until < next_evaluation_at
    {
        // Evaluate once more when the watch window closes.
        next_evaluation_at = w.until;
    }
    let mut new_status = status::evaluated(
        old,
        &status::Evaluated {
            generation: gate.metadata.generation,
            passport_name,
            passport: document,
            failing_checks: &evaluation.failing_checks,
            refused_evidence: &evaluation.refused_evidence,
            next_evaluation_at: Some(next_evaluation_at),
            policy_name: &deref.policy_name,
            now,
            watch: evaluated.watch.clone(),
            record: &evaluated.record,
        },
    );
    // The governance history travels in the same status write.
    let admissions = ctx
        .stores
        .admission_events_of(&deref.namespace, &deref.name);
    let recorded = history::record(
        old,
        &history::Observation {
            spec: &gate.spec,
            passport: document,
            passport_name,
            signing_key_id: &applied.signing_key_id,
            failing_checks: &evaluation.failing_checks,
            deployed_at: new_status.deployed_at,
            grants: &evaluation.grants,
            admissions: &admissions,
            restored: evaluated.restored.clone(),
            now,
        },
    );
    let mut added = history::append(&mut new_status.history, recorded.entries.clone());
    // ReleaseRequests (re-run, comment, approval request) join the history.
    let requests = super::requests::pending(ctx, &deref.namespace, &deref.name);
    let asked = requests
        .iter()
        .map(|r| super::requests::entry(r, passport_name, now))
        .collect();
    added.extend(history::append(&mut new_status.history, asked));
    // Notifications out, once the decision is on record; their outcome
    // travels in the same status write and never changes the decision.
    if old.and_then(|s| s.decision) != Some(document.decision) {
        let decided = Decided {
            document,
            failing_checks: &evaluation.failing_checks,
            passport_name,
            previous: old.and_then(|s| s.decision),
        };
        let deliveries = notifications(ctx, gate, notify, &decided, now).await;
        added.extend(history::append(&mut new_status.history, deliveries));
    }
    new_status.audit = Some(recorded.cursor.clone());
    write_status(ctx, gate, &new_status).await?;
    grant_statuses(ctx, deref, evaluation, passport_name, now).await;
    super::requests::handled(ctx, &deref.namespace, &requests, passport_name, now).await;
    let release = ReleaseLabels {
        namespace: deref.namespace.clone(),
        service: gate.spec.service.clone(),
        environment: gate.spec.environment.clone(),
    };
    release_metrics(
        ctx,
        gate,
        &release,
        document,
        &evaluation.failing_checks,
        &recorded,
        applied.written,
    );
    for entry in &added {
        // Admission Events are the webhook's own; the history only imports them.
        if matches!(
            entry.type_,
            HistoryType::AdmissionDenied
                | HistoryType::RollbackAdmitted
                | HistoryType::EvidenceRefused
        ) {
            continue;
        }
        publish_history(
            ctx,
            gate,
            history_event_type(entry),
            entry.type_.as_str(),
            entry.message.clone(),
        )
        .await;
    }
    // One Event per change: a new decision is told by its DecisionChanged
    // history Event above; a new passport for the same decision (a rule's
    // outcome, the artifact or an approval changed) by the decision's own.
    let decision_told = added
        .iter()
        .any(|entry| entry.type_ == HistoryType::DecisionChanged);
    if !decision_told
        && old.and_then(|s| s.passport_name.as_deref()) != Some(passport_name.as_str())
    {
        let failing = if evaluation.failing_checks.is_empty() {
            String::new()
        } else {
            format!(", failing: {};", evaluation.failing_checks.join(", "))
        };
        let note = format!(
            "{} {}: {} (confidence {}%){failing} Passport {passport_name}",
            document.service, document.release, document.decision, document.confidence
        );
        let type_ = if document.decision.allows_promotion() {
            EventType::Normal
        } else {
            EventType::Warning
        };
        publish(
            ctx,
            gate,
            type_,
            status::decision_reason(document.decision),
            note,
        )
        .await;
    }
    if !evaluation.refused_evidence.is_empty()
        && old.is_none_or(|s| {
            !s.conditions
                .iter()
                .any(|c| c.type_ == status::EVIDENCE_ACCEPTED && c.status == "False")
        })
    {
        publish(
            ctx,
            gate,
            EventType::Warning,
            "EvidenceRefused",
            evaluation.refused_evidence.join(" "),
        )
        .await;
    }

    // 7. Attach the attestation to the image, when enabled: the current
    //    Passport's envelope (the stored one when the decision was on record).
    if let Some(config) = &ctx.config.attach
        && attest::needed(applied.existing.as_ref())
    {
        let current = applied.existing.as_ref().map_or(document, |p| &p.spec);
        if let Some(message) =
            attest::attach(ctx, config, &deref.namespace, passport_name, current).await
        {
            publish(
                ctx,
                gate,
                EventType::Warning,
                "AttestationNotAttached",
                format!("Passport {passport_name}: {message}"),
            )
            .await;
        }
    }

    // Retention: the newest passports stay, older ones go. Only a new
    // passport can push an old one out.
    //    The ledger counts each gate's passports, so a gate that cannot hold
    //    more than it keeps is not listed.
    let key = format!("{}/{}", deref.namespace, deref.name);
    if applied.written
        && ctx.retention.written(
            &key,
            old.and_then(|s| s.passport_name.as_ref()).is_some(),
            ctx.config.passport_history,
        )
    {
        let passport_api: Api<Passport> = Api::namespaced(ctx.client.clone(), &deref.namespace);
        match retain(ctx, &passport_api, &deref.name, passport_name).await {
            Some(held) => ctx.retention.listed(&key, held),
            None => ctx.retention.forget(&key),
        }
    }

    let wait = next_evaluation_at.duration_since(now).as_secs().max(1) as u64;
    Ok(Action::requeue(Duration::from_secs(wait)))
}

/// Warning for refusals, expiries and decisions that do not allow promotion.
fn history_event_type(entry: &crate::api::GateHistoryEntry) -> EventType {
    match entry.type_ {
        HistoryType::DecisionChanged if entry.decision.is_some_and(|d| !d.allows_promotion()) => {
            EventType::Warning
        }
        HistoryType::WaiverExpired | HistoryType::ApprovalRefused | HistoryType::WaiverRefused => {
            EventType::Warning
        }
        _ => EventType::Normal,
    }
}

/// Writes each approval's and waiver's status when it changed, so that
/// `kubectl get releaseapprovals` tells whether and why each one counts.
async fn grant_statuses(
    ctx: &Context,
    deref: &Dereferenced,
    evaluation: &engine::Evaluation,
    passport_name: &str,
    now: Timestamp,
) {
    for grant in &evaluation.grants {
        let current = match grant.kind {
            "ReleaseApproval" => deref
                .approvals
                .iter()
                .find(|a| a.metadata.name.as_deref() == Some(grant.name.as_str()))
                .and_then(|a| a.status.clone()),
            _ => deref
                .waivers
                .iter()
                .find(|w| w.metadata.name.as_deref() == Some(grant.name.as_str()))
                .and_then(|w| w.status.clone()),
        }
        .unwrap_or_default();
        let message = history::bounded(&grant.message);
        if current.state == Some(grant.state)
            && current.reason.as_deref() == Some(grant.reason.as_str())
            && current.message.as_deref() == Some(message.as_str())
        {
            continue;
        }
        let body = json!({
            "apiVersion": "releasepassport.io/v1alpha1",
            "kind": grant.kind,
            "status": GrantStatus {
                state: Some(grant.state),
                reason: Some(grant.reason.clone()),
                message: Some(message),
                passport: Some(passport_name.to_string()),
                evaluated_at: Some(now),
            },
        });
        let pp = PatchParams::apply(MANAGER).force();
        let result = match grant.kind {
            "ReleaseApproval" => {
                Api::<ReleaseApproval>::namespaced(ctx.client.clone(), &deref.namespace)
                    .patch_status(&grant.name, &pp, &Patch::Apply(&body))
                    .await
                    .map(|_| ())
            }
            _ => Api::<ReleaseWaiver>::namespaced(ctx.client.clone(), &deref.namespace)
                .patch_status(&grant.name, &pp, &Patch::Apply(&body))
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            tracing::warn!(kind = grant.kind, name = %grant.name, error = %e, "writing the status of an approval or waiver failed");
        }
    }
}

/// Records the release metrics of one evaluation. `written`: the decision
/// is new (a Passport was written), so per-decision counters count it once.
fn release_metrics(
    ctx: &Context,
    gate: &ReleaseGate,
    release: &ReleaseLabels,
    document: &crate::api::PassportSpec,
    failing_checks: &[String],
    recorded: &history::Recorded,
    written: bool,
) {
    let m = &ctx.metrics;
    if let Some(p) = &recorded.promotion {
        m.promotions.get_or_create(release).inc();
        if let Some(lead) = p.lead_time {
            m.lead_time
                .get_or_create(release)
                .observe(lead.as_secs_f64());
        }
    }
    if recorded.rollback_recommended {
        m.rollback_recommended.get_or_create(release).inc();
    }
    if let Some(d) = recorded.time_to_restore {
        m.time_to_restore
            .get_or_create(release)
            .observe(d.as_secs_f64().max(0.0));
    }
    if let Some(d) = recorded.approval_wait {
        m.approval_wait
            .get_or_create(release)
            .observe(d.as_secs_f64().max(0.0));
    }
    m.evidence_completeness
        .get_or_create(release)
        .set(f64::from(document.confidence) / 100.0);
    for e in &document.evidence {
        let status = if e.status == "fresh" {
            "fresh"
        } else {
            "stale"
        };
        m.connector_evidence
            .get_or_create(&ConnectorEvidenceLabels {
                connector: e.connector.clone(),
                status: status.into(),
            })
            .inc();
    }
    let mut missing: Vec<&str> = document
        .policy_results
        .iter()
        .filter(|r| r.state == crate::api::ResultState::Missing && r.required)
        .filter_map(|r| r.source.as_deref()?.split_once('/').map(|(c, _)| c))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    for connector in missing {
        m.connector_evidence
            .get_or_create(&ConnectorEvidenceLabels {
                connector: connector.into(),
                status: "missing".into(),
            })
            .inc();
    }
    if !written {
        return;
    }
    if !document.decision.allows_promotion() {
        for rule in failing_checks {
            m.hold_reasons
                .get_or_create(&RuleLabels { rule: rule.clone() })
                .inc();
        }
    }
    let target_kind = gate.spec.target.as_ref().map(|t| t.kind.as_str());
    if document.mode == crate::api::Mode::Shadow
        && crate::insights::graduation::would_deny(document.decision, target_kind).is_some()
    {
        m.shadow_would_deny.get_or_create(release).inc();
    }
}

/// The post-deploy watch: it starts when `kubernetes` evidence shows the
/// target running the release's image digest, and lasts the gate's (else the
/// policy's, else 15 minutes) watch window.
fn post_deploy_watch(
    gate: &ReleaseGate,
    evidence: &[EvidenceDocument],
    policy: &engine::CompiledPolicy,
    now: Timestamp,
) -> Option<status::Watch> {
    policy.post_deploy_window_seconds()?;
    let digest = engine::image_digest(&gate.spec.artifact.image)?;
    let running =
        releases::running_digests(evidence).is_some_and(|r| r.iter().any(|d| d == digest));
    if !running {
        return None;
    }
    let old = gate.status.as_ref();
    // The watch of this image started earlier if the status says so.
    let deployed_at = old
        .filter(|s| s.deployed_image.as_deref() == Some(gate.spec.artifact.image.as_str()))
        .and_then(|s| s.deployed_at)
        .unwrap_or(now);
    let window = gate
        .spec
        .watch
        .as_ref()
        .and_then(|w| w.window_seconds)
        .or(policy.post_deploy_window_seconds())
        .unwrap_or(900);
    Some(status::Watch {
        deployed_at,
        image: gate.spec.artifact.image.clone(),
        until: deployed_at + jiff::SignedDuration::from_secs(window),
    })
}

/// When to evaluate again: just after the first evidence goes stale, and at
/// least every `resync`, less the gate's `spread` (so that gates created
/// together do not all come back in the same second).
fn next_evaluation(
    next_stale: Option<Timestamp>,
    now: Timestamp,
    resync: Duration,
    spread: Duration,
) -> Timestamp {
    let resync = resync.saturating_sub(spread).max(Duration::from_secs(1));
    let resync_at = now + jiff::SignedDuration::from_secs(resync.as_secs() as i64);
    match next_stale {
        Some(t) if t < resync_at => {
            let t = t + jiff::SignedDuration::from_secs(1);
            if t < now + jiff::SignedDuration::from_secs(1) {
                now + jiff::SignedDuration::from_secs(1)
            } else {
                t
            }
        }
        _ => resync_at,
    }
}

/// A gate's own share of the resync period: up to a tenth of it, fixed per
/// gate (a hash of its namespace and name), so that 10,000 gates created in
/// one minute spread their resyncs over a tenth of the period instead of
/// all coming back together.
fn resync_spread(namespace: &str, name: &str, resync: Duration) -> Duration {
    // FNV-1a: stable across processes and releases (std's hasher is not).
    let n = format!("{namespace}/{name}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    let tenth = resync.as_millis() as u64 / 10;
    Duration::from_millis(n.checked_rem(tenth).unwrap_or(0))
}

/// What the ConnectorScopes of a gate gave.
struct Collected {
    evidence: Vec<EvidenceDocument>,
    /// Scopes that could not be read, and why.
    unavailable: Vec<engine::Unavailable>,
    /// Notification scopes (slack, email) to tell of a decision change.
    notify: Vec<ConnectorScope>,
}

async fn collect(
    gate: &ReleaseGate,
    ctx: &Context,
    ns: &str,
    now: Timestamp,
) -> Result<Collected, Error> {
    let scopes: Api<ConnectorScope> = Api::namespaced(ctx.client.clone(), ns);
    let mut evidence = Vec::new();
    let mut unavailable = Vec::new();
    let mut notify = Vec::new();
    for reference in &gate.spec.connector_scopes {
        let Some(scope) = ctx.stores.scope(ns, &reference.name) else {
            publish(
                ctx,
                gate,
                EventType::Warning,
                "ConnectorScopeNotFound",
                format!(
                    "ConnectorScope {} not found in namespace {ns}: its evidence counts as missing",
                    reference.name
                ),
            )
            .await;
            continue;
        };
        let req = ScopeRequest {
            namespace: ns,
            name: &reference.name,
            spec: &scope.spec,
            service: &gate.spec.service,
            environment: &gate.spec.environment,
            gate: Some(&gate.spec),
            now,
            gate_name: &gate.name_any(),
            release: &gate.spec.release,
            previous_release: gate.spec.rollback.as_ref().map(|r| r.release.as_str()),
        };
        let connector = scope.spec.connector.as_str().to_string();
        let started = std::time::Instant::now();
        let result = ctx.connectors.collect(&req).await;
        ctx.metrics
            .connector_duration
            .get_or_create(&ConnectorLabels {
                connector: connector.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        let mut signals = None;
        let (health, message, observed) = match result {
            Ok(Some(doc)) => {
                signals = Some(crate::connectors::radar_signals(&scope.spec, &doc));
                let message = format!("read {} facts", doc.facts.len());
                ctx.metrics
                    .evidence_age
                    .get_or_create(&ConnectorLabels {
                        connector: connector.clone(),
                    })
                    .set(
                        now.duration_since(doc.freshness.observed_at)
                            .as_secs_f64()
                            .max(0.0),
                    );
                let observed = doc.freshness.observed_at;
                let max_age = doc
                    .freshness
                    .max_age_seconds
                    .unwrap_or(req.max_age_seconds());
                // The source's own timestamps say how old its answer is.
                let health = if observed
                    .saturating_add(jiff::SignedDuration::from_secs(max_age))
                    .is_ok_and(|t| t < now)
                {
                    ConnectorHealth::Stale
                } else {
                    ConnectorHealth::Healthy
                };
                evidence.push(doc);
                (health, message, Some(observed))
            }
            Ok(None) => (
                ConnectorHealth::Healthy,
                "evidence is pushed into the ReleaseGate by CI".to_string(),
                None,
            ),
            Err(err) => {
                ctx.metrics
                    .connector_errors
                    .get_or_create(&ConnectorErrorLabels {
                        connector: connector.clone(),
                        health: err.reason().into(),
                    })
                    .inc();
                let message = passport::redact::redact_str(&err.to_string()).into_owned();
                tracing::info!(scope = %reference.name, namespace = %ns, health = err.reason(), %message, "connector produced no evidence");
                unavailable.push(engine::Unavailable {
                    connector: connector.clone(),
                    scope: reference.name.clone(),
                    health: err.reason().to_string(),
                    message: message.clone(),
                });
                (err.health(), message, None)
            }
        };
        let read = ScopeRead {
            health,
            message: &message,
            observed,
            signals,
        };
        scope_status(ctx, &scopes, &scope, read, now).await;
        if matches!(
            scope.spec.connector,
            ConnectorKind::Slack | ConnectorKind::Email
        ) {
            notify.push((*scope).clone());
        }
    }
    Ok(Collected {
        evidence,
        unavailable,
        notify,
    })
}

/// A decision just recorded, as notifications tell it.
struct Decided<'a> {
    document: &'a crate::api::PassportSpec,
    failing_checks: &'a [String],
    passport_name: &'a str,
    previous: Option<crate::api::Decision>,
}

/// Tells every notification scope of the gate about its new decision; one
/// history entry per delivery, delivered or not.
async fn notifications(
    ctx: &Context,
    gate: &ReleaseGate,
    scopes: &[ConnectorScope],
    decided: &Decided<'_>,
    now: Timestamp,
) -> Vec<crate::api::GateHistoryEntry> {
    use crate::connectors::notify::Notification;
    let Decided {
        document,
        failing_checks,
        passport_name,
        previous,
    } = *decided;
    let ns = gate.namespace().unwrap_or_default();
    let name = gate.name_any();
    let note = Notification {
        namespace: ns.clone(),
        gate: name.clone(),
        service: document.service.clone(),
        release: document.release.clone(),
        environment: document.environment.clone(),
        mode: document.mode,
        decision: document.decision,
        previous,
        confidence: document.confidence,
        failing_checks: failing_checks.to_vec(),
        next_actions: document.next_actions.clone(),
        passport: passport_name.to_string(),
        link: ctx
            .config
            .console_url
            .as_ref()
            .map(|u| format!("{u}/console/passports/{ns}/{passport_name}")),
    };
    let sends = scopes.iter().map(|scope| {
        let note = &note;
        let ns = &ns;
        let name = &name;
        async move {
            let scope_name = scope.name_any();
            let req = ScopeRequest {
                namespace: ns,
                name: &scope_name,
                spec: &scope.spec,
                service: &gate.spec.service,
                environment: &gate.spec.environment,
                now,
                gate_name: name,
                gate: Some(&gate.spec),
                release: &gate.spec.release,
                previous_release: gate.spec.rollback.as_ref().map(|r| r.release.as_str()),
            };
            let result = ctx.connectors.notify(&req, note).await;
            let (type_, message) = match result {
                Ok(detail) => (
                    HistoryType::NotificationDelivered,
                    format!("ConnectorScope {scope_name}: {detail}"),
                ),
                Err(e) => {
                    tracing::info!(gate = %name, namespace = %ns, scope = %scope_name, error = %e, "notification not delivered");
                    (
                        HistoryType::NotificationFailed,
                        format!("ConnectorScope {scope_name} ({}): {e}", e.reason()),
                    )
                }
            };
            crate::api::GateHistoryEntry {
                at: now,
                type_,
                decision: Some(note.decision),
                previous_decision: previous,
                passport: Some(passport_name.to_string()),
                actor: None,
                message: passport::redact::redact_str(&message).chars().take(1000).collect(),
            }
        }
    });
    futures::future::join_all(sends).await
}

/// What one read of a ConnectorScope found.
struct ScopeRead<'a> {
    health: ConnectorHealth,
    message: &'a str,
    observed: Option<Timestamp>,
    /// The Radar rows of this read; `None` keeps the last ones (their age
    /// shows in `lastObservedAt`).
    signals: Option<Vec<crate::api::RadarSignal>>,
}

async fn scope_status(
    ctx: &Context,
    api: &Api<ConnectorScope>,
    scope: &ConnectorScope,
    read: ScopeRead<'_>,
    now: Timestamp,
) {
    let ScopeRead {
        health,
        message,
        observed,
        signals,
    } = read;
    let old = scope.status.clone().unwrap_or_default();
    let signals = signals.unwrap_or_else(|| old.signals.clone());
    let mut conditions = Vec::new();
    status::set_condition(
        &mut conditions,
        &old.conditions,
        status::Cond {
            type_: status::READY,
            status: health == ConnectorHealth::Healthy,
            reason: health.as_str(),
            message: message.to_string(),
        },
        scope.metadata.generation,
        now,
    );
    let body = json!({
        "apiVersion": "releasepassport.io/v1alpha1",
        "kind": "ConnectorScope",
        "status": {
            "observedGeneration": scope.metadata.generation,
            "support": crate::connectors::matrix::support_of(scope.spec.connector).as_str(),
            "health": health.as_str(),
            "lastObservedAt": observed.or(old.last_observed_at),
            "message": message,
            "conditions": conditions,
            "signals": signals,
        }
    });
    if old.health != Some(health) && health != ConnectorHealth::Healthy {
        let reference = scope.object_ref(&());
        let event = Event {
            type_: EventType::Warning,
            reason: health.as_str().into(),
            note: Some(message.chars().take(1000).collect()),
            action: "CollectEvidence".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::debug!(error = %e, "publishing event failed");
        }
    }
    let old_json = serde_json::to_value(&old).unwrap_or_default();
    if !super::patch::changes(&old_json, &body["status"]) {
        return;
    }
    if let Err(e) = api
        .patch_status(
            &scope.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        tracing::warn!(scope = %scope.name_any(), error = %e, "writing ConnectorScope status failed");
    }
}

async fn policy_status(
    api: &Api<Policy>,
    policy: &Policy,
    outcome: Result<&engine::CompiledPolicy, &str>,
) {
    let old = policy.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let (valid, reason, message, hash, count) = match outcome {
        Ok(c) => (
            true,
            "Compiled",
            format!("{} rules compiled", c.rule_count()),
            Some(c.hash().to_string()),
            Some(c.rule_count() as i64),
        ),
        Err(msg) => (
            false,
            "InvalidPolicy",
            msg.to_string(),
            None,
            Some(policy.spec.rules.len() as i64),
        ),
    };
    if old.observed_generation == policy.metadata.generation
        && old.conditions.iter().any(|c| {
            c.type_ == "Valid"
                && c.status == if valid { "True" } else { "False" }
                && c.message == message
        })
    {
        return;
    }
    let mut conditions = Vec::new();
    status::set_condition(
        &mut conditions,
        &old.conditions,
        status::Cond {
            type_: "Valid",
            status: valid,
            reason,
            message,
        },
        policy.metadata.generation,
        now,
    );
    let body = json!({
        "apiVersion": "releasepassport.io/v1alpha1",
        "kind": "Policy",
        "status": {
            "observedGeneration": policy.metadata.generation,
            "hash": hash,
            "ruleCount": count,
            "conditions": conditions,
        }
    });
    if let Err(e) = api
        .patch_status(
            &policy.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        tracing::warn!(policy = %policy.name_any(), error = %e, "writing Policy status failed");
    }
}

async fn gate_failed(
    gate: &ReleaseGate,
    ctx: &Context,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Result<Action, Error> {
    let message = passport::redact::redact_str(message).into_owned();
    let old = gate.status.as_ref();
    let changed = old
        .map(|s| {
            !s.conditions
                .iter()
                .any(|c| c.type_ == status::READY && c.reason == reason && c.message == message)
        })
        .unwrap_or(true);
    let new_status = status::failed(old, gate.metadata.generation, reason, &message, now);
    write_status(ctx, gate, &new_status).await?;
    if changed {
        publish(ctx, gate, EventType::Warning, reason, message.clone()).await;
    }
    tracing::info!(gate = %gate.name_any(), namespace = ?gate.namespace(), reason, %message, "gate cannot be evaluated");
    // Fixing the Policy or the gate triggers a reconcile through the watches;
    // the requeue is a safety net.
    Ok(Action::requeue(ctx.config.resync))
}

/// Writes the gate's status as the merge patch between the cached status
/// and `status`: a re-evaluation that changes nothing but its timestamps
/// sends those only. The patch names the cached `resourceVersion`, so a
/// cache behind the apiserver (a write of ours not yet seen) answers 409;
/// the status is then read once and diffed again.
async fn write_status(
    ctx: &Context,
    gate: &ReleaseGate,
    status: &crate::api::ReleaseGateStatus,
) -> Result<(), Error> {
    let api: Api<ReleaseGate> =
        Api::namespaced(ctx.client.clone(), &gate.namespace().unwrap_or_default());
    let name = gate.name_any();
    let new = serde_json::to_value(status)?;
    let first = status_patch(&api, &name, gate, &new).await;
    match first {
        Err(kube::Error::Api(s)) if s.code == 409 => {
            ctx.metrics.status_conflicts.inc();
            let fresh = api.get_status(&name).await?;
            status_patch(&api, &name, &fresh, &new).await?;
        }
        other => other?,
    }
    Ok(())
}

/// One merge patch of the status of `name` from `current` (an object read
/// from the cache or the apiserver) to `new`; nothing when they are equal.
async fn status_patch(
    api: &Api<ReleaseGate>,
    name: &str,
    current: &ReleaseGate,
    new: &serde_json::Value,
) -> Result<(), kube::Error> {
    let old = serde_json::to_value(&current.status).unwrap_or_default();
    let Some(diff) = super::patch::merge_diff(&old, new) else {
        return Ok(());
    };
    let body = json!({
        "metadata": {"resourceVersion": current.metadata.resource_version},
        "status": diff,
    });
    let pp = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch_status(name, &pp, &Patch::Merge(&body)).await?;
    Ok(())
}

async fn publish(ctx: &Context, gate: &ReleaseGate, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Evaluate".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &gate.object_ref(&())).await {
        tracing::debug!(error = %e, "publishing event failed");
    }
}

/// Publishes a history entry as its own Event. The shared recorder folds
/// Events with the same reason on the same object into one series that
/// keeps only the first note (two approvals within minutes would read as
/// one); a recorder per entry keeps every governance event with its note.
async fn publish_history(
    ctx: &Context,
    gate: &ReleaseGate,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let recorder = kube::runtime::events::Recorder::new(
        ctx.client.clone(),
        kube::runtime::events::Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Audit".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &gate.object_ref(&())).await {
        tracing::debug!(error = %e, "publishing event failed");
    }
}

/// Deletes all but the newest passports of `gate`; how many it holds after,
/// or `None` when that is not known (a listing or deletion failed).
async fn retain(ctx: &Context, api: &Api<Passport>, gate: &str, current: &str) -> Option<usize> {
    let lp = ListParams::default().labels(&format!(
        "{}={}",
        passports::GATE_NAME_LABEL,
        passports::gate_label(gate)
    ));
    let list = api.list_metadata(&lp).await.ok()?;
    let owned: Vec<(String, Option<Timestamp>)> = list
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.owner_references.as_ref().is_some_and(|refs| {
                refs.iter()
                    .any(|r| r.kind == "ReleaseGate" && r.name == gate)
            })
        })
        .map(|p| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                p.metadata.creation_timestamp.map(|t| t.0),
            )
        })
        .collect();
    let held = owned.len();
    let mut deleted = 0;
    let mut failed = false;
    for name in passports::to_delete(owned, ctx.config.passport_history, current) {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                deleted += 1;
                ctx.metrics.passports_deleted.inc();
                tracing::debug!(passport = %name, "deleted by retention");
            }
            Err(e) => {
                failed = true;
                tracing::warn!(passport = %name, error = %e, "deleting an old passport failed")
            }
        }
    }
    (!failed).then_some(held - deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_reconciles_come_back_spread_and_later_when_the_apiserver_is_overloaded() {
        let api = |code: u16| {
            Error::Kube(kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..Default::default()
            })))
        };
        let delays: std::collections::BTreeSet<Duration> =
            (0..100).map(|i| retry_delay(&api(409), i * 977)).collect();
        assert!(delays.len() > 50);
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_secs(5) && *d < Duration::from_secs(10))
        );
        for code in [429, 503, 504] {
            let d = retry_delay(&api(code), 12_345);
            assert!(
                d >= Duration::from_secs(15) && d < Duration::from_secs(30),
                "{code}: {d:?}"
            );
        }
    }

    #[test]
    fn resync_spread_is_fixed_per_gate_and_within_a_tenth_of_the_period() {
        let resync = Duration::from_secs(300);
        let a = resync_spread("payments", "payment-api-production", resync);
        assert_eq!(
            a,
            resync_spread("payments", "payment-api-production", resync)
        );
        let spreads: std::collections::BTreeSet<u128> = (0..1000)
            .map(|i| resync_spread("payments", &format!("gate-{i}"), resync).as_millis())
            .collect();
        assert!(spreads.iter().all(|ms| *ms < 30_000), "{spreads:?}");
        // 1,000 gates land on hundreds of distinct instants, not one.
        assert!(spreads.len() > 900, "{} distinct", spreads.len());
        assert_eq!(resync_spread("a", "b", Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn next_evaluation_is_the_first_staleness_or_the_spread_resync() {
        let now: Timestamp = "2026-05-17T06:00:00Z".parse().expect("time");
        let resync = Duration::from_secs(300);
        let spread = Duration::from_secs(12);
        assert_eq!(
            next_evaluation(None, now, resync, spread),
            now + jiff::SignedDuration::from_secs(288)
        );
        let stale = now + jiff::SignedDuration::from_secs(60);
        assert_eq!(
            next_evaluation(Some(stale), now, resync, spread),
            stale + jiff::SignedDuration::from_secs(1)
        );
        // Evidence already stale: evaluate again in a second, not in the past.
        let past = now - jiff::SignedDuration::from_secs(60);
        assert_eq!(
            next_evaluation(Some(past), now, resync, spread),
            now + jiff::SignedDuration::from_secs(1)
        );
    }
}
