//! One evaluation: facts in, decision, results, next actions and trace out.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};

use crate::api::{
    ArtifactRecord, CanaryRecord, Decision, EvidenceDocument, EvidenceSummary, GateReference,
    GrantState, Mode, Operator, PassportSpec, PolicyRecord, PolicyResult, ProvenRelease,
    Provenance, ReleaseGateSpec, ResultState, RollbackRecommendation, RollbackRecord, TraceStep,
};
use crate::passport::redact;

use super::compile::{Check, CompiledPolicy, CompiledRule, Stage, raw_text};
use super::evidence::{self, FactIndex};
use super::grants::{self, ApprovalInput, Subject, WaiverInput};
use super::template::Placeholder;
use super::value::TypedValue;
use super::{DEFAULT_MAX_AGE_SECONDS, GATE_CONNECTOR, PASSPORT_VERSION, combine};

/// What an evaluation reads.
#[derive(Clone, Copy, Debug)]
pub struct EvaluationInput<'a> {
    /// Name of the Policy object, recorded in the passport.
    pub policy_name: &'a str,
    /// The compiled policy.
    pub policy: &'a CompiledPolicy,
    /// The ReleaseGate spec. Its own `evidence` is read along with `evidence`.
    pub gate: &'a ReleaseGateSpec,
    /// The ReleaseGate object, when evaluated in a cluster.
    pub gate_ref: Option<&'a GateReference>,
    /// Evidence gathered by connectors (or read from files).
    pub evidence: &'a [EvidenceDocument],
    /// The clock. Freshness, waiver expiry and `generatedAt` use it.
    pub now: Timestamp,
    /// Who asked: the controller, a CLI user, a CI run.
    pub actor: &'a str,
    /// Pre-deploy evaluates `rules`; post-deploy also evaluates
    /// `postDeploy.rules`, whose failures ask for ROLLBACK_RECOMMENDED.
    pub stage: Stage,
    /// What the cluster knows about the gate beyond its spec.
    pub context: GateContext<'a>,
}

/// What the cluster knows about a gate beyond its spec: its approvals and
/// waivers, the platform's minimum mode, the releases it proved and a
/// rollback recommendation on record. Offline evaluations know only what
/// their files say (`GateContext::default()` knows nothing).
#[derive(Clone, Copy, Debug, Default)]
pub struct GateContext<'a> {
    /// The gate's ReleaseApprovals (the caller leaves out other gates').
    pub approvals: &'a [ApprovalInput<'a>],
    /// The gate's ReleaseWaivers.
    pub waivers: &'a [WaiverInput<'a>],
    /// Why enforce is the minimum mode of the gate (e.g. its namespace's
    /// label), when the platform made it so.
    pub enforce_minimum: Option<&'a str>,
    /// The releases the gate proved; `None` when not known.
    pub proven_releases: Option<&'a [ProvenRelease]>,
    /// A ROLLBACK_RECOMMENDED on record for the gate's current digest: the
    /// decision stays at least ROLLBACK_RECOMMENDED while it is given.
    pub rollback_recommended: Option<&'a RollbackRecommendation>,
}

/// Whether the latest evaluation counted an approval or waiver, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantOutcome {
    /// `ReleaseApproval` or `ReleaseWaiver`.
    pub kind: &'static str,
    /// Name of the object.
    pub name: String,
    pub state: GrantState,
    /// Machine-matchable: `Counted`, `Expired`, or why it does not count.
    pub reason: String,
    pub message: String,
}

/// Input that cannot be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvaluateError {
    /// A field of the ReleaseGate is unusable.
    #[error("{field}: {message}")]
    Gate {
        /// Field of the ReleaseGate spec, e.g. `artifact.image`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The outcome of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The passport document, redacted and not yet signed (empty signature).
    pub passport: PassportSpec,
    /// Ids of the rules that asked for a decision other than ALLOW (not
    /// waived, not satisfied by approval), in policy order.
    pub failing_checks: Vec<String>,
    /// Earliest time a piece of evidence used by the evaluation goes stale,
    /// or an active waiver expires: re-evaluate then.
    pub next_stale_at: Option<Timestamp>,
    /// Each approval and waiver of the gate: counted or not, and why.
    pub grants: Vec<GrantOutcome>,
    /// Evidence documents that were refused (a pulled connector's name on
    /// pushed evidence, an observation in the future), and why.
    pub refused_evidence: Vec<String>,
}

impl Evaluation {
    /// The decision.
    pub fn decision(&self) -> Decision {
        self.passport.decision
    }

    /// Confidence in percent.
    pub fn confidence(&self) -> u8 {
        self.passport.confidence
    }

    /// The unsigned passport; sign it with [`crate::passport::sign`].
    pub fn into_passport(self) -> PassportSpec {
        self.passport
    }

    /// The passport as evaluated, signed. `evaluate` has redacted it
    /// already, so unlike [`crate::passport::sign`] this does not redact
    /// again: sign a passport changed after evaluation with
    /// `passport::sign`, which does.
    pub fn sign(
        &self,
        signer: &crate::passport::PassportSigner,
    ) -> Result<PassportSpec, crate::passport::SignError> {
        let mut passport = self.passport.clone();
        crate::passport::sign_redacted(&mut passport, signer)?;
        Ok(passport)
    }

    /// Like [`Evaluation::sign`], without keeping the evaluation.
    pub fn into_signed(
        self,
        signer: &crate::passport::PassportSigner,
    ) -> Result<PassportSpec, crate::passport::SignError> {
        let mut passport = self.passport;
        crate::passport::sign_redacted(&mut passport, signer)?;
        Ok(passport)
    }
}

/// Digest of an image reference pinned by digest: `sha256:<64 lowercase hex>`.
pub fn image_digest(image: &str) -> Option<&str> {
    let (name, digest) = image.rsplit_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    (!name.is_empty()
        && !name.chars().any(char::is_whitespace)
        && hex.len() == 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then_some(digest)
}

fn seconds(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Evaluates a release against a compiled policy.
pub fn evaluate<'a>(input: &EvaluationInput<'a>) -> Result<Evaluation, EvaluateError> {
    let gate = input.gate;
    let policy = input.policy;
    let now = input.now;

    let digest = image_digest(&gate.artifact.image).ok_or_else(|| EvaluateError::Gate {
        field: "artifact.image".into(),
        message: format!(
            "{:?} is not pinned by digest (expected image@sha256:<64 lowercase hex characters>)",
            gate.artifact.image
        ),
    })?;

    // Index facts: the latest observation of each (connector, fact), by
    // provenance; refused documents count for nothing.
    let (documents, facts) = evidence::index(&gate.evidence, input.evidence, now);
    let pushed_by = gate.applied_by.as_ref().and_then(|a| a.evidence.as_deref());
    let released_by = gate.applied_by.as_ref().and_then(|a| a.release.as_deref());
    let ctx = &input.context;
    let subject = Subject {
        release: &gate.release,
        digest,
        released_by,
    };
    let (mode, enforced_by) =
        effective_mode(gate.mode, policy, ctx.enforce_minimum, input.policy_name);

    // Approvals: who counts (the apiserver authenticated them; the Policy
    // and the gate decide which count).
    let approvals = grants::judge_approvals(ctx.approvals, &subject, &policy.grants);
    let approvers: Vec<&str> = approvals
        .iter()
        .filter(|a| a.record.counted)
        .map(|a| a.record.actor.as_str())
        .collect();

    // Facts of the ReleaseGate itself.
    let rollback_digest = gate
        .rollback
        .as_ref()
        .and_then(|r| r.image.as_deref())
        .and_then(image_digest);
    let rollback_image_ready = rollback_digest.is_some();
    let rollback_proven: Option<bool> = ctx
        .proven_releases
        .map(|proven| rollback_digest.is_some_and(|d| proven.iter().any(|p| p.digest == d)));
    let gate_fact = |name: &str| -> Option<serde_json::Value> {
        use serde_json::Value;
        match name {
            "rollback_ready" => Some(Value::Bool(rollback_image_ready)),
            "rollback_proven" => rollback_proven.map(Value::Bool),
            "rollback_release" => gate
                .rollback
                .as_ref()
                .map(|r| Value::from(r.release.clone())),
            "rollback_image" => gate
                .rollback
                .as_ref()
                .and_then(|r| r.image.clone())
                .map(Value::from),
            "approvals" => Some(Value::from(approvers.len())),
            "artifact_digest" => Some(Value::from(digest)),
            "source_sha" => gate.artifact.source_sha.clone().map(Value::from),
            _ => None,
        }
    };

    let lookup = |p: Placeholder, rule: Option<&'a CompiledRule>| -> Cow<'a, str> {
        match p {
            Placeholder::Service => Cow::Borrowed(&gate.service),
            Placeholder::Release => Cow::Borrowed(&gate.release),
            Placeholder::Environment => Cow::Borrowed(&gate.environment),
            Placeholder::Mode => Cow::Borrowed(gate.mode.as_str()),
            Placeholder::Policy => Cow::Borrowed(input.policy_name),
            Placeholder::RollbackRelease => Cow::Borrowed(
                gate.rollback
                    .as_ref()
                    .map_or("the previous release", |r| r.release.as_str()),
            ),
            Placeholder::RollbackImage => Cow::Borrowed(
                gate.rollback
                    .as_ref()
                    .and_then(|r| r.image.as_deref())
                    .unwrap_or("the previous image"),
            ),
            Placeholder::ArtifactImage => Cow::Borrowed(&gate.artifact.image),
            Placeholder::ArtifactDigest => Cow::Borrowed(digest),
            Placeholder::RuleId => Cow::Borrowed(rule.map_or("", |r| r.id.as_str())),
            Placeholder::RuleLabel => Cow::Borrowed(rule.map_or("", |r| r.label.as_str())),
            Placeholder::RequiredApprovers => Cow::Owned(policy.required_approvers.to_string()),
        }
    };

    let mut trace = Vec::new();
    if let Some(why) = &enforced_by {
        trace.push(TraceStep {
            at: now,
            step: "mode".into(),
            message: format!(
                "the gate asks for {} mode; {why}: evaluated as {mode}",
                gate.mode
            ),
        });
    }
    let (evidence, refused_evidence) = summarize_evidence(&documents, pushed_by, now, &mut trace);

    // CEL sees every fact, built once and only when a rule has an expression.
    let cel_facts = policy.cel_env.as_ref().map(|_| cel_facts(&facts));

    struct Outcome<'r> {
        rule: &'r CompiledRule,
        result: PolicyResult,
        evidence_ok: bool,
        asks: Option<Decision>,
    }

    let mut outcomes: Vec<Outcome<'_>> = Vec::with_capacity(policy.rules.len());
    let mut next_stale_at: Option<Timestamp> = None;
    for rule in &policy.rules {
        if rule.stage == Stage::PostDeploy && input.stage != Stage::PostDeploy {
            continue;
        }
        let source = rule.source.as_str();
        let mut result = PolicyResult {
            id: rule.id.clone(),
            label: rule.label.clone(),
            state: ResultState::Missing,
            on_fail: rule.on_fail,
            required: rule.required,
            observed: None,
            threshold: rule.threshold.clone(),
            source: Some(rule.source.clone()),
            observed_at: None,
            provenance: None,
            reason: None,
        };
        let sensitive = rule.fact_sensitive;
        let observed_text = |v: &serde_json::Value| {
            if sensitive {
                redact::REDACTED.to_string()
            } else {
                raw_text(v)
            }
        };

        // (value, observed_at, stale)
        let observation: Option<(Option<Cow<'_, serde_json::Value>>, Option<Timestamp>, bool)> =
            if rule.connector == GATE_CONNECTOR {
                result.provenance = Some(Provenance::Gate);
                gate_fact(&rule.fact).map(|v| (Some(Cow::Owned(v)), None, false))
            } else {
                facts
                    .get(&rule.connector, &rule.fact, rule.provenance)
                    .map(|obs| {
                        result.provenance = Some(obs.provenance);
                        let max_age = rule
                            .max_age_seconds
                            .or(obs.doc_max_age)
                            .unwrap_or(DEFAULT_MAX_AGE_SECONDS);
                        let stale_at = obs
                            .observed_at
                            .saturating_add(seconds(max_age))
                            .unwrap_or(Timestamp::MAX);
                        let stale = stale_at < now;
                        if !stale {
                            next_stale_at =
                                Some(next_stale_at.map_or(stale_at, |t| t.min(stale_at)));
                        }
                        (
                            obs.fact.value.as_ref().map(Cow::Borrowed),
                            Some(obs.observed_at),
                            stale,
                        )
                    })
            };

        let mut evidence_ok = false;
        match observation {
            None => {
                result.state = ResultState::Missing;
                result.reason = Some(
                    if let Some(p) = rule.provenance
                        && facts.get(&rule.connector, &rule.fact, None).is_some()
                    {
                        format!(
                            "no {p} evidence has fact {source} (the rule requires {p} evidence)"
                        )
                    } else if rule.connector != GATE_CONNECTOR
                        && !facts.connectors.contains(rule.connector.as_str())
                    {
                        format!("no evidence from connector {}", rule.connector)
                    } else {
                        format!("no evidence has fact {source}")
                    },
                );
            }
            Some((value, observed_at, stale)) => {
                result.observed = value.as_deref().map(observed_text);
                result.observed_at = observed_at;
                if stale {
                    result.state = ResultState::Stale;
                    let max_age = rule
                        .max_age_seconds
                        .or_else(|| {
                            facts
                                .get(&rule.connector, &rule.fact, rule.provenance)
                                .and_then(|o| o.doc_max_age)
                        })
                        .unwrap_or(DEFAULT_MAX_AGE_SECONDS);
                    result.reason = Some(format!(
                        "evidence observed at {} is older than {max_age}s",
                        observed_at.map(|t| t.to_string()).unwrap_or_default()
                    ));
                } else {
                    evidence_ok = true;
                    let verdict = check_rule(rule, value.as_deref(), cel_facts.as_ref(), policy);
                    let shown = result.observed.as_deref().unwrap_or("no value");
                    let threshold = rule.threshold.as_deref().unwrap_or_default();
                    match verdict {
                        Ok(true) => {
                            result.state = ResultState::Pass;
                            result.reason = Some(format!("observed {shown}, required {threshold}"));
                        }
                        Ok(false) => {
                            result.state = ResultState::Fail;
                            result.reason = Some(format!("observed {shown}, required {threshold}"));
                        }
                        Err(why) => {
                            result.state = ResultState::Fail;
                            result.reason = Some(format!("observed {shown}: {why}"));
                        }
                    }
                }
            }
        }
        let asks = match result.state {
            ResultState::Pass | ResultState::Waived => None,
            ResultState::Fail => Some(rule.on_fail),
            ResultState::Missing | ResultState::Stale => rule.required.then_some(Decision::Hold),
        };
        outcomes.push(Outcome {
            rule,
            result,
            evidence_ok,
            asks,
        });
    }

    // Waivers: only active ones, for this digest, within the Policy's bounds, count.
    let waivers = grants::judge_waivers(
        ctx.waivers,
        &subject,
        |id| outcomes.iter().any(|o| o.rule.id == id),
        &policy.grants,
        now,
    );
    for w in &waivers {
        let r = &w.record;
        trace.push(TraceStep {
            at: now,
            step: "waiver".into(),
            message: match &w.why_not {
                Some(why) => format!(
                    "waiver {} of {} by {}: {}; ignored",
                    r.name.as_deref().unwrap_or("-"),
                    r.rule_id,
                    r.actor,
                    why
                ),
                None => format!(
                    "waiver {} of {} by {} active until {}: {}",
                    r.name.as_deref().unwrap_or("-"),
                    r.rule_id,
                    r.actor,
                    r.expires_at,
                    r.reason
                ),
            },
        });
        if !w.active() {
            continue;
        }
        // Evaluate again when it expires: it stops counting without anyone acting.
        next_stale_at = Some(next_stale_at.map_or(r.expires_at, |t| t.min(r.expires_at)));
        for o in outcomes.iter_mut().filter(|o| o.rule.id == r.rule_id) {
            if o.result.state != ResultState::Pass && o.result.state != ResultState::Waived {
                let was = state_name(o.result.state);
                o.result.state = ResultState::Waived;
                o.result.reason = Some(format!(
                    "{was}, waived by {} until {}: {}",
                    r.actor, r.expires_at, r.reason
                ));
                o.asks = None;
            }
        }
    }

    // Approvals satisfy fresh failures of REQUIRE_APPROVAL rules.
    let approvals_satisfied = approvers.len() as u64 >= u64::from(policy.required_approvers);
    let approvable = |o: &Outcome<'_>| {
        o.result.state == ResultState::Fail
            && o.rule.on_fail == Decision::RequireApproval
            && policy
                .approvable_rules
                .as_ref()
                .is_none_or(|ids| ids.contains(&o.rule.id))
    };
    for a in approvals.iter().filter(|a| !a.record.counted) {
        trace.push(TraceStep {
            at: now,
            step: "approval".into(),
            message: format!(
                "approval {} by {} does not count: {}",
                a.record.name.as_deref().unwrap_or("-"),
                a.record.actor,
                a.why_not.as_deref().unwrap_or_default()
            ),
        });
    }
    if outcomes.iter().any(&approvable) || !approvals.is_empty() {
        let message = format!(
            "{} of {} required ({}){}",
            plural(approvers.len(), "approver", "approvers"),
            policy.required_approvers,
            if approvers.is_empty() {
                "none".to_string()
            } else {
                approvers.join(", ")
            },
            if approvals_satisfied {
                ": approval requirement met"
            } else {
                ": approval requirement not met"
            }
        );
        trace.push(TraceStep {
            at: now,
            step: "approval".into(),
            message,
        });
    }
    if approvals_satisfied {
        for o in outcomes.iter_mut() {
            if approvable(o) {
                o.asks = None;
                let reason = o.result.reason.take().unwrap_or_default();
                o.result.reason = Some(format!(
                    "{reason}; satisfied by approval of {}",
                    approvers.join(", ")
                ));
            }
        }
    }

    // Confidence: weighted share of required evidence present and fresh.
    let (mut total, mut fresh) = (0u64, 0u64);
    for o in outcomes.iter().filter(|o| o.rule.required) {
        total += u64::from(o.rule.weight);
        if o.evidence_ok {
            fresh += u64::from(o.rule.weight);
        }
    }
    let confidence = (fresh * 100)
        .checked_div(total)
        .map_or(100, |c| u8::try_from(c).unwrap_or(100));
    trace.push(TraceStep {
        at: now,
        step: "confidence".into(),
        message: format!(
            "{confidence}%: weight {fresh} of {total} of required evidence present and fresh{}",
            policy
                .min_confidence
                .map(|m| format!(" (policy minimum {m}%)"))
                .unwrap_or_default()
        ),
    });

    let mut decision = combine(outcomes.iter().filter_map(|o| o.asks));
    let mut failing_checks: Vec<String> = outcomes
        .iter()
        .filter(|o| o.asks.is_some())
        .map(|o| o.rule.id.clone())
        .collect();

    let mut low_confidence = None;
    if let Some(min) = policy.min_confidence
        && confidence < min
    {
        let floor = match policy.canary.as_ref().and_then(|c| c.min_confidence) {
            Some(canary_min) if confidence >= canary_min => Decision::AllowWithCanary,
            _ => Decision::Hold,
        };
        low_confidence = Some((min, floor));
        if floor > decision {
            decision = floor;
        }
        trace.push(TraceStep {
            at: now,
            step: "confidence".into(),
            message: format!(
                "confidence {confidence}% is below the minimum {min}%: at least {floor}"
            ),
        });
    }

    // A ROLLBACK_RECOMMENDED on record for this digest stays, even when the
    // watch window has closed or the signals recovered.
    let sticky = ctx.rollback_recommended.filter(|r| r.digest == digest);
    if let Some(r) = sticky {
        decision = decision.max(Decision::RollbackRecommended);
        for check in &r.failing_checks {
            if !failing_checks.contains(check) {
                failing_checks.push(check.clone());
            }
        }
        trace.push(TraceStep {
            at: now,
            step: "rollback".into(),
            message: format!(
                "ROLLBACK_RECOMMENDED for {} since {} (Passport {}) stays until the target runs a proven release again or a new release is applied",
                r.release, r.since, r.passport
            ),
        });
    }

    let canary = (decision == Decision::AllowWithCanary).then(|| {
        let c = policy.canary.clone().unwrap_or_default();
        CanaryRecord {
            max_traffic_step_percent: c.max_traffic_step_percent,
            watch_window_seconds: c.watch_window_seconds,
        }
    });

    // Next actions, in policy order, without duplicates.
    let mut next_actions: Vec<String> = Vec::new();
    let mut push = |action: String| {
        if !next_actions.contains(&action) {
            next_actions.push(action);
        }
    };
    if decision != Decision::Allow {
        for o in outcomes.iter().filter(|o| o.asks.is_some()) {
            let rendered = o.rule.next_action.as_ref().and_then(|t| {
                t.render_with_evidence(
                    |p| lookup(p, Some(o.rule)),
                    |name| {
                        facts
                            .get(o.rule.connector.as_str(), name, o.rule.provenance)
                            .and_then(|obs| obs.fact.value.as_ref())
                            .map(|v| Cow::Owned(raw_text(v)))
                    },
                )
            });
            let action = match rendered {
                Some(action) => action,
                None => match o.result.state {
                    ResultState::Missing => format!(
                        "Attach {} evidence for {} {} ({}), then re-run the gate.",
                        o.rule.connector, gate.service, gate.release, o.rule.label
                    ),
                    ResultState::Stale => format!(
                        "Refresh {} evidence for {} {} ({}), then re-run the gate.",
                        o.rule.connector, gate.service, gate.release, o.rule.label
                    ),
                    _ => format!(
                        "Fix \"{}\" for {} {}, then re-run the gate.",
                        o.rule.label, gate.service, gate.release
                    ),
                },
            };
            push(action);
        }
        if let Some((min, _)) = low_confidence {
            push(format!(
                "Attach fresh evidence for {} {}: confidence {confidence}% is below the policy minimum {min}%.",
                gate.service, gate.release
            ));
        }
        if let Some(r) = sticky {
            push(format!(
                "Roll {} back to a proven release ({}): ROLLBACK_RECOMMENDED since {} stays until the target runs one again or a new release is applied.",
                gate.service,
                gate.rollback
                    .as_ref()
                    .map_or("the previous release", |r| r.release.as_str()),
                r.since
            ));
        }
        if decision == Decision::RequireApproval && !approvals_satisfied {
            let by = released_by
                .filter(|_| !policy.grants.allow_self_approval)
                .map(|u| format!(" other than {u}"))
                .unwrap_or_default();
            let how = input
                .gate_ref
                .map(|g| format!(": releasepassport approve {} -n {}", g.name, g.namespace))
                .unwrap_or_default();
            push(format!(
                "Ask {} with the approve verb{by} to approve {} {} ({digest}){how} ({} so far).",
                plural(policy.required_approvers as usize, "person", "people"),
                gate.service,
                gate.release,
                approvers.len()
            ));
        }
        if let Some(c) = &canary {
            let step = c
                .max_traffic_step_percent
                .map(|s| format!("at most {s}% of traffic per step"))
                .unwrap_or_else(|| "in small traffic steps".into());
            let watch = c
                .watch_window_seconds
                .map(|w| format!(", watching {w}s after each step"))
                .unwrap_or_default();
            push(format!(
                "Roll out {} {} progressively: {step}{watch}.",
                gate.service, gate.release
            ));
        }
    }

    trace.push(TraceStep {
        at: now,
        step: "decision".into(),
        message: format!(
            "{decision} at {confidence}% confidence{}",
            if failing_checks.is_empty() {
                String::new()
            } else {
                format!(
                    " ({}: {})",
                    plural(failing_checks.len(), "failing check", "failing checks"),
                    failing_checks.join(", ")
                )
            }
        ),
    });

    let build_run: BTreeMap<String, String> = gate
        .artifact
        .build_run
        .as_ref()
        .map(|b| {
            [("provider", &b.provider), ("id", &b.id), ("url", &b.url)]
                .into_iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v)))
                .collect()
        })
        .unwrap_or_default();

    let mut passport = PassportSpec {
        passport_version: PASSPORT_VERSION.into(),
        service: gate.service.clone(),
        release: gate.release.clone(),
        environment: gate.environment.clone(),
        mode,
        requested_mode: enforced_by.as_ref().map(|_| gate.mode),
        enforced_by: enforced_by.clone(),
        decision,
        confidence,
        generated_at: now,
        gate: input.gate_ref.cloned(),
        artifact: ArtifactRecord {
            image: gate.artifact.image.clone(),
            digest: digest.to_string(),
            source_sha: gate.artifact.source_sha.clone(),
            build_run,
        },
        policy: PolicyRecord {
            name: input.policy_name.to_string(),
            hash: policy.hash.clone(),
        },
        actor: input.actor.to_string(),
        released_by: released_by.map(str::to_string),
        policy_results: outcomes.into_iter().map(|o| o.result).collect(),
        evidence,
        rollback: gate.rollback.as_ref().map(|r| RollbackRecord {
            release: r.release.clone(),
            image: r.image.clone(),
            ready: rollback_image_ready,
            proven: rollback_proven,
        }),
        approvals: approvals.iter().map(|a| a.record.clone()).collect(),
        waivers: waivers.iter().map(|w| w.record.clone()).collect(),
        canary,
        next_actions,
        trace,
        envelope: None,
    };
    redact::redact_passport(&mut passport);
    Ok(Evaluation {
        passport,
        failing_checks,
        next_stale_at,
        grants: grant_outcomes(&approvals, &waivers),
        refused_evidence,
    })
}

/// The mode the gate is evaluated in, and why it is stricter than the
/// gate's own, when it is.
fn effective_mode(
    requested: Mode,
    policy: &CompiledPolicy,
    enforce_minimum: Option<&str>,
    policy_name: &str,
) -> (Mode, Option<String>) {
    if requested == Mode::Enforce {
        return (Mode::Enforce, None);
    }
    if let Some(why) = enforce_minimum {
        return (Mode::Enforce, Some(why.to_string()));
    }
    if policy.minimum_mode == Some(Mode::Enforce) {
        return (
            Mode::Enforce,
            Some(format!("Policy {policy_name} sets minimumMode enforce")),
        );
    }
    (requested, None)
}

/// The passport's evidence summaries (oldest first) and the trace steps
/// for them; returns the refusals too.
fn summarize_evidence(
    documents: &[evidence::Document<'_>],
    pushed_by: Option<&str>,
    now: Timestamp,
    trace: &mut Vec<TraceStep>,
) -> (Vec<EvidenceSummary>, Vec<String>) {
    let mut sorted: Vec<&evidence::Document<'_>> = documents.iter().collect();
    sorted.sort_by_key(|d| d.doc.freshness.observed_at);
    let mut summaries = Vec::with_capacity(sorted.len());
    let mut refused = Vec::new();
    for d in sorted {
        let doc = d.doc;
        let max_age = doc
            .freshness
            .max_age_seconds
            .unwrap_or(DEFAULT_MAX_AGE_SECONDS);
        let stale = doc
            .freshness
            .observed_at
            .saturating_add(seconds(max_age))
            .unwrap_or(Timestamp::MAX)
            < now;
        let status = match (&d.refused, stale) {
            (Some(_), _) => "refused",
            (None, true) => "stale",
            (None, false) => "fresh",
        };
        let by = match (d.provenance, pushed_by) {
            (Provenance::Pushed, Some(user)) => format!(", pushed by {user}"),
            (Provenance::Pushed, None) => ", pushed".to_string(),
            _ => String::new(),
        };
        let message = match &d.refused {
            Some(why) => {
                refused.push(why.clone());
                why.clone()
            }
            None => format!(
                "{} {} evidence{by} observed with {} (max age {max_age}s): {status}",
                d.provenance,
                doc.connector,
                plural(doc.facts.len(), "fact", "facts"),
            ),
        };
        trace.push(TraceStep {
            at: doc.freshness.observed_at.min(now),
            step: "evidence".into(),
            message,
        });
        summaries.push(EvidenceSummary {
            connector: doc.connector.clone(),
            scope: doc.scope.clone(),
            observed_at: doc.freshness.observed_at,
            max_age_seconds: doc.freshness.max_age_seconds,
            status: status.into(),
            fact_count: u32::try_from(doc.facts.len()).unwrap_or(u32::MAX),
            provenance: Some(d.provenance),
            pushed_by: (d.provenance == Provenance::Pushed)
                .then(|| pushed_by.map(str::to_string))
                .flatten(),
            // An evidence document always serialises (string-keyed maps).
            digest: crate::passport::digest::canonical_sha256(doc).ok(),
        });
    }
    (summaries, refused)
}

/// What the controller writes into each approval's and waiver's status.
fn grant_outcomes(
    approvals: &[grants::JudgedApproval],
    waivers: &[grants::JudgedWaiver],
) -> Vec<GrantOutcome> {
    let approvals = approvals.iter().map(|a| {
        let name = a.record.name.clone().unwrap_or_default();
        match &a.why_not {
            None => GrantOutcome {
                kind: "ReleaseApproval",
                name,
                state: GrantState::Counted,
                reason: "Counted".into(),
                message: format!("Counts as the approval of {}", a.record.actor),
            },
            Some(why) => GrantOutcome {
                kind: "ReleaseApproval",
                name,
                state: GrantState::NotCounted,
                reason: a.record.reason.clone().unwrap_or_default(),
                message: format!("Does not count: {why}"),
            },
        }
    });
    let waivers = waivers.iter().map(|w| {
        let r = &w.record;
        let (state, reason, message) = match r.state.as_str() {
            "active" => (
                GrantState::Counted,
                "Counted".to_string(),
                format!("Waives {} until {}", r.rule_id, r.expires_at),
            ),
            "expired" => (
                GrantState::Expired,
                "Expired".to_string(),
                format!("Expired at {}", r.expires_at),
            ),
            "unmatched" => (
                GrantState::NotCounted,
                "UnknownRule".to_string(),
                format!(
                    "Does not count: {}",
                    w.why_not.as_deref().unwrap_or_default()
                ),
            ),
            _ => (
                GrantState::NotCounted,
                r.refusal.clone().unwrap_or_default(),
                format!(
                    "Does not count: {}",
                    w.why_not.as_deref().unwrap_or_default()
                ),
            ),
        };
        GrantOutcome {
            kind: "ReleaseWaiver",
            name: r.name.clone().unwrap_or_default(),
            state,
            reason,
            message,
        }
    });
    approvals.chain(waivers).collect()
}

fn state_name(state: ResultState) -> &'static str {
    match state {
        ResultState::Pass => "pass",
        ResultState::Fail => "fail",
        ResultState::Stale => "stale",
        ResultState::Missing => "missing",
        ResultState::Waived => "waived",
    }
}

/// Runs a rule's condition and expression on a fresh value.
fn check_rule(
    rule: &CompiledRule,
    value: Option<&serde_json::Value>,
    cel_facts: Option<&cel::Value>,
    policy: &CompiledPolicy,
) -> Result<bool, String> {
    if let Some(check) = &rule.check
        && !check_condition(check, value)?
    {
        return Ok(false);
    }
    if let (Some((_, program)), Some(env), Some(facts)) =
        (&rule.expression, &policy.cel_env, cel_facts)
    {
        let mut ctx = cel::Context::with_env(env.clone());
        ctx.add_variable_from_value("facts", facts.clone());
        return match program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "expression returned {}, not a boolean",
                cel_type_name(&other)
            )),
            Err(e) => Err(format!("expression failed: {e}")),
        };
    }
    Ok(true)
}

fn cel_type_name(v: &cel::Value) -> &'static str {
    match v {
        cel::Value::List(_) => "a list",
        cel::Value::Map(_) => "a map",
        cel::Value::Int(_) | cel::Value::UInt(_) => "an integer",
        cel::Value::Float(_) => "a double",
        cel::Value::String(_) => "a string",
        cel::Value::Bytes(_) => "bytes",
        cel::Value::Null => "null",
        _ => "a value",
    }
}

fn check_condition(check: &Check, value: Option<&serde_json::Value>) -> Result<bool, String> {
    if let Check::Present = check {
        return Ok(true);
    }
    let Some(value) = value else {
        return Err("the fact has no value".into());
    };
    let typed = TypedValue::from_json(value).map_err(|e| format!("the value is {}", e.0))?;
    match check {
        Check::Present => Ok(true),
        Check::Equals(want) => typed.equals(want).map_err(|m| m.to_string()),
        Check::NotEquals(want) => typed.equals(want).map(|eq| !eq).map_err(|m| m.to_string()),
        Check::Ordered(op, want) => {
            let ord = typed.compare(want).map_err(|m| m.to_string())?;
            Ok(match op {
                Operator::LessThan => ord.is_lt(),
                Operator::LessThanOrEqual => ord.is_le(),
                Operator::GreaterThan => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        Check::In(values) => Ok(values.iter().any(|w| typed.equals(w) == Ok(true))),
    }
}

/// `facts.<connector>.<fact>` for CEL: numbers as int or double (units dropped),
/// booleans, strings.
fn cel_facts(facts: &FactIndex<'_>) -> cel::Value {
    let mut by_connector: HashMap<String, HashMap<String, cel::Value>> = HashMap::new();
    for (connector, name, obs) in facts.newest() {
        let value = match obs.fact.value.as_ref().map(TypedValue::from_json) {
            Some(Ok(TypedValue::Number { value, .. })) => {
                if value.fract() == 0.0 && value.abs() < 9.0e15 {
                    cel::Value::Int(value as i64)
                } else {
                    cel::Value::Float(value)
                }
            }
            Some(Ok(TypedValue::Bool(b))) => cel::Value::Bool(b),
            Some(Ok(TypedValue::Timestamp(t))) => cel::Value::from(t.to_string()),
            Some(Ok(TypedValue::Text(s))) => cel::Value::from(s),
            _ => cel::Value::Null,
        };
        by_connector
            .entry((*connector).to_string())
            .or_default()
            .insert((*name).to_string(), value);
    }
    cel::Value::from(by_connector)
}
