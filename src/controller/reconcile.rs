//! Reconciling one ReleaseGate, as named steps:
//! dereference → collect evidence → evaluate → sign → apply Passport →
//! update status. Everything between the I/O ends is pure (engine, passport,
//! `status`, `passports`).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::{
    ConnectorHealth, ConnectorScope, EvidenceDocument, GateReference, HistoryType, Passport,
    Policy, ReleaseGate,
};
use crate::connectors::ScopeRequest;
use crate::engine::{self, EvaluationInput, Stage};
use crate::insights::history;
use crate::passport;

use super::metrics::{
    ConnectorErrorLabels, ConnectorEvidenceLabels, ConnectorLabels, DecisionLabels, DurationTimer,
    ReasonLabels, ReleaseLabels, ResultLabels, RuleLabels,
};
use super::{Context, MANAGER, attest, passports, status};

/// Why a reconcile failed. Each variant is a reason a machine can match.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("serialising: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("signing: {0}")]
    Sign(String),
}

impl Error {
    /// Label of the `reconcile_errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeError",
            Error::Serialize(_) => "SerializeError",
            Error::Sign(_) => "SignError",
        }
    }
}

/// Reconciles one ReleaseGate.
pub async fn reconcile(gate: Arc<ReleaseGate>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = DurationTimer::new(&ctx.metrics.reconcile_duration);
    let result = reconcile_inner(&gate, &ctx).await;
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
pub fn error_policy(gate: Arc<ReleaseGate>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(gate = %gate.name_any(), namespace = ?gate.namespace(), error = %error, "reconcile failed; retrying");
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ReasonLabels {
            reason: error.metric_label().into(),
        })
        .inc();
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile_inner(gate: &ReleaseGate, ctx: &Context) -> Result<Action, Error> {
    let ns = gate.namespace().unwrap_or_default();
    let name = gate.name_any();
    let generation = gate.metadata.generation;
    let now = Timestamp::now();
    let client = ctx.client.clone();

    // 1. Dereference the Policy and compile it.
    let policy_name = gate.spec.policy_ref.name.clone();
    let policies: Api<Policy> = Api::namespaced(client.clone(), &ns);
    let Some(policy) = policies.get_opt(&policy_name).await? else {
        let msg = format!("Policy {policy_name} not found in namespace {ns}");
        return gate_failed(gate, ctx, "PolicyNotFound", &msg, now).await;
    };
    let compiled = match engine::compile(&policy.spec) {
        Ok(compiled) => {
            policy_status(&policies, &policy, Ok(&compiled)).await;
            compiled
        }
        Err(err) => {
            let msg = format!("Policy {policy_name} is invalid: {err}");
            policy_status(&policies, &policy, Err(&err.to_string())).await;
            return gate_failed(gate, ctx, "InvalidPolicy", &msg, now).await;
        }
    };

    // 2. Collect evidence from the ConnectorScopes.
    let evidence = collect(gate, ctx, &ns, now).await?;

    // 3. Evaluate: post-deploy rules too while the target runs this release
    //    and its watch window is open.
    let watch = post_deploy_watch(gate, &evidence, &compiled, now);
    let stage = match &watch {
        Some(w) if now < w.until => Stage::PostDeploy,
        _ => Stage::PreDeploy,
    };
    let gate_ref = GateReference {
        namespace: ns.clone(),
        name: name.clone(),
        generation,
    };
    let input = EvaluationInput {
        policy_name: &policy_name,
        policy: &compiled,
        gate: &gate.spec,
        gate_ref: Some(&gate_ref),
        evidence: &evidence,
        now,
        actor: &ctx.config.actor,
        stage,
    };
    let evaluation = match engine::evaluate(&input) {
        Ok(e) => e,
        Err(err) => {
            let msg = format!("ReleaseGate cannot be evaluated: {err}");
            return gate_failed(gate, ctx, "InvalidReleaseGate", &msg, now).await;
        }
    };

    // 4. Sign.
    let document = evaluation
        .sign(&ctx.signer)
        .map_err(|e| Error::Sign(e.to_string()))?;

    // 5. Apply the Passport, unless an identical decision is already on record.
    let identity = passports::identity(&document)?;
    let passport_name = passports::name(&name, &identity);
    let passport_api: Api<Passport> = Api::namespaced(client.clone(), &ns);
    let existing = passport_api.get_opt(&passport_name).await?;
    // The key of the Passport on record: an unchanged decision keeps its
    // earlier signature even when the signing key changed since.
    let signing_key_id = existing
        .as_ref()
        .map(|p| p.spec.signing_key_id().to_string())
        .unwrap_or_else(|| document.signing_key_id().to_string());
    let mut written = false;
    if existing.is_none() {
        let mut object = Passport::new(&passport_name, document.clone());
        object.metadata.namespace = Some(ns.clone());
        object.metadata.labels = Some(passports::labels(&name, &document));
        object.metadata.owner_references = gate.controller_owner_ref(&()).map(|r| vec![r]);
        let applied = passport_api
            .patch(
                &passport_name,
                &PatchParams::apply(MANAGER),
                &Patch::Apply(&object),
            )
            .await;
        match applied {
            Ok(_) => {
                written = true;
                ctx.metrics.passports_written.inc();
                tracing::info!(gate = %name, namespace = %ns, passport = %passport_name, decision = %document.decision, "wrote passport");
            }
            // Another writer (or an earlier attempt) already stored this decision.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 422 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let release = ReleaseLabels {
        namespace: ns.clone(),
        service: gate.spec.service.clone(),
        environment: gate.spec.environment.clone(),
    };
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

    // 6. Update the status, and tell people when the decision changed.
    let old = gate.status.as_ref();
    let mut next_evaluation_at = next_evaluation(evaluation.next_stale_at, now, ctx.config.resync);
    if let Some(w) = &watch
        && w.until > now
        && w.until < next_evaluation_at
    {
        // Evaluate once more when the watch window closes.
        next_evaluation_at = w.until;
    }
    let mut new_status = status::evaluated(
        old,
        &status::Evaluated {
            generation,
            passport_name: &passport_name,
            passport: &document,
            failing_checks: &evaluation.failing_checks,
            next_evaluation_at: Some(next_evaluation_at),
            policy_name: &policy_name,
            now,
            watch: watch.clone(),
        },
    );
    // The governance history travels in the same status write.
    let recorded = history::record(
        old,
        &history::Observation {
            spec: &gate.spec,
            passport: &document,
            passport_name: &passport_name,
            signing_key_id: &signing_key_id,
            failing_checks: &evaluation.failing_checks,
            deployed_at: new_status.deployed_at,
            now,
        },
    );
    let added = history::append(&mut new_status.history, recorded.entries.clone());
    new_status.audit = Some(recorded.cursor.clone());
    write_status(ctx, gate, &new_status).await?;
    release_metrics(
        ctx,
        gate,
        &release,
        &document,
        &evaluation.failing_checks,
        &recorded,
        written,
    );
    for entry in &added {
        let type_ = match entry.decision {
            Some(d) if entry.type_ == HistoryType::DecisionChanged && !d.allows_promotion() => {
                EventType::Warning
            }
            _ if entry.type_ == HistoryType::WaiverExpired => EventType::Warning,
            _ => EventType::Normal,
        };
        publish_history(
            ctx,
            gate,
            type_,
            entry.type_.as_str(),
            entry.message.clone(),
        )
        .await;
    }
    if old.and_then(|s| s.decision) != Some(document.decision)
        || old.and_then(|s| s.passport_name.as_deref()) != Some(passport_name.as_str())
    {
        let note = if evaluation.failing_checks.is_empty() {
            format!(
                "{} {}: {} (confidence {}%), Passport {passport_name}",
                document.service, document.release, document.decision, document.confidence
            )
        } else {
            format!(
                "{} {}: {} (confidence {}%), failing: {}; Passport {passport_name}",
                document.service,
                document.release,
                document.decision,
                document.confidence,
                evaluation.failing_checks.join(", ")
            )
        };
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

    // 7. Attach the attestation to the image, when enabled: the current
    //    Passport's envelope (the stored one when the decision was on record).
    if let Some(config) = &ctx.config.attach
        && attest::needed(existing.as_ref())
    {
        let current = existing.as_ref().map_or(&document, |p| &p.spec);
        if let Some(message) = attest::attach(ctx, config, &ns, &passport_name, current).await {
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

    // Retention: the newest passports stay, older ones go.
    retain(ctx, &passport_api, &name, &passport_name).await;

    let wait = next_evaluation_at.duration_since(now).as_secs().max(1) as u64;
    Ok(Action::requeue(Duration::from_secs(wait)))
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
    let digest = gate.spec.artifact.image.rsplit_once('@')?.1;
    let running = evidence
        .iter()
        .filter(|d| d.connector == "kubernetes")
        .any(|d| {
            d.facts.iter().any(|f| {
                f.name == "images"
                    && f.value
                        .as_ref()
                        .and_then(|v| v.as_str())
                        .is_some_and(|s| s.contains(digest))
            })
        });
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
/// least every `resync`.
fn next_evaluation(next_stale: Option<Timestamp>, now: Timestamp, resync: Duration) -> Timestamp {
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

async fn collect(
    gate: &ReleaseGate,
    ctx: &Context,
    ns: &str,
    now: Timestamp,
) -> Result<Vec<EvidenceDocument>, Error> {
    let scopes: Api<ConnectorScope> = Api::namespaced(ctx.client.clone(), ns);
    let mut evidence = Vec::new();
    for reference in &gate.spec.connector_scopes {
        let Some(scope) = scopes.get_opt(&reference.name).await? else {
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
        let (health, message, observed) = match result {
            Ok(Some(doc)) => {
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
                evidence.push(doc);
                (ConnectorHealth::Healthy, message, Some(observed))
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
                (err.health(), message, None)
            }
        };
        scope_status(ctx, &scopes, &scope, health, &message, observed, now).await;
    }
    Ok(evidence)
}

async fn scope_status(
    ctx: &Context,
    api: &Api<ConnectorScope>,
    scope: &ConnectorScope,
    health: ConnectorHealth,
    message: &str,
    observed: Option<Timestamp>,
    now: Timestamp,
) {
    let old = scope.status.clone().unwrap_or_default();
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

async fn write_status(
    ctx: &Context,
    gate: &ReleaseGate,
    status: &crate::api::ReleaseGateStatus,
) -> Result<(), Error> {
    let api: Api<ReleaseGate> =
        Api::namespaced(ctx.client.clone(), &gate.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": "releasepassport.io/v1alpha1",
        "kind": "ReleaseGate",
        "status": status,
    });
    api.patch_status(
        &gate.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
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

async fn retain(ctx: &Context, api: &Api<Passport>, gate: &str, current: &str) {
    let lp = ListParams::default().labels(&format!(
        "{}={}",
        passports::GATE_NAME_LABEL,
        passports::gate_label(gate)
    ));
    let Ok(list) = api.list_metadata(&lp).await else {
        return;
    };
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
    for name in passports::to_delete(owned, ctx.config.passport_history, current) {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                ctx.metrics.passports_deleted.inc();
                tracing::debug!(passport = %name, "deleted by retention");
            }
            Err(e) => {
                tracing::warn!(passport = %name, error = %e, "deleting an old passport failed")
            }
        }
    }
}
