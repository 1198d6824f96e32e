//! One evaluation: facts in, decision, results, next actions and trace out.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use crate::api::{
    ArtifactRecord, CanaryRecord, Decision, EvidenceDocument, EvidenceSummary, Fact, GateReference,
    Operator, PassportSpec, PolicyRecord, PolicyResult, ReleaseGateSpec, ResultState,
    RollbackRecord, TraceStep, WaiverRecord,
};
use crate::passport::redact;

use super::compile::{Check, CompiledPolicy, CompiledRule, Stage, raw_text};
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
    /// Earliest time a piece of evidence used by the evaluation goes stale:
    /// re-evaluate before then.
    pub next_stale_at: Option<Timestamp>,
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

/// Where a fact came from.
struct Observation<'a> {
    fact: &'a Fact,
    observed_at: Timestamp,
    doc_max_age: Option<i64>,
}

/// Digest of an image reference pinned by digest: `sha256:<64 lowercase hex>`.
pub(crate) fn image_digest(image: &str) -> Option<&str> {
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

    // Index facts: the latest observation of each (connector, fact).
    let docs: Vec<&EvidenceDocument> = gate.evidence.iter().chain(input.evidence).collect();
    let mut facts: HashMap<(&str, &str), Observation<'_>> = HashMap::new();
    let mut connectors: HashSet<&str> = HashSet::new();
    for doc in &docs {
        connectors.insert(doc.connector.as_str());
        for fact in &doc.facts {
            let observed_at = fact.observed_at.unwrap_or(doc.freshness.observed_at);
            let obs = Observation {
                fact,
                observed_at,
                doc_max_age: doc.freshness.max_age_seconds,
            };
            facts
                .entry((doc.connector.as_str(), fact.name.as_str()))
                .and_modify(|prev| {
                    if obs.observed_at >= prev.observed_at {
                        *prev = Observation { ..obs };
                    }
                })
                .or_insert(Observation { ..obs });
        }
    }

    // Facts of the ReleaseGate itself.
    let rollback_image_ready = gate
        .rollback
        .as_ref()
        .and_then(|r| r.image.as_deref())
        .is_some_and(|i| image_digest(i).is_some());
    let approvers: Vec<&str> = {
        let mut seen = Vec::new();
        for a in &gate.approvals {
            if a.approved_at.is_none_or(|t| t <= now) && !seen.contains(&a.actor.as_str()) {
                seen.push(a.actor.as_str());
            }
        }
        seen
    };
    let gate_fact = |name: &str| -> Option<serde_json::Value> {
        use serde_json::Value;
        match name {
            "rollback_ready" => Some(Value::Bool(rollback_image_ready)),
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
    let mut evidence = Vec::with_capacity(docs.len());
    let mut sorted_docs = docs.clone();
    sorted_docs.sort_by_key(|d| d.freshness.observed_at);
    for doc in sorted_docs {
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
        let status = if stale { "stale" } else { "fresh" };
        trace.push(TraceStep {
            at: doc.freshness.observed_at,
            step: "evidence".into(),
            message: format!(
                "{} evidence observed with {} (max age {max_age}s): {status}",
                doc.connector,
                plural(doc.facts.len(), "fact", "facts"),
            ),
        });
        evidence.push(EvidenceSummary {
            connector: doc.connector.clone(),
            scope: doc.scope.clone(),
            observed_at: doc.freshness.observed_at,
            max_age_seconds: doc.freshness.max_age_seconds,
            status: status.into(),
            fact_count: u32::try_from(doc.facts.len()).unwrap_or(u32::MAX),
            // An evidence document always serialises (string-keyed maps).
            digest: crate::passport::digest::canonical_sha256(doc).ok(),
        });
    }

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
                gate_fact(&rule.fact).map(|v| (Some(Cow::Owned(v)), None, false))
            } else {
                facts
                    .get(&(rule.connector.as_str(), rule.fact.as_str()))
                    .map(|obs| {
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
                    if rule.connector != GATE_CONNECTOR
                        && !connectors.contains(rule.connector.as_str())
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
                                .get(&(rule.connector.as_str(), rule.fact.as_str()))
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

    // Waivers.
    let mut waivers = Vec::with_capacity(gate.waivers.len());
    for waiver in &gate.waivers {
        let active = waiver.expires_at > now;
        let known = outcomes.iter().any(|o| o.rule.id == waiver.rule_id);
        let state = if !known {
            "unmatched"
        } else if active {
            "active"
        } else {
            "expired"
        };
        waivers.push(WaiverRecord {
            rule_id: waiver.rule_id.clone(),
            reason: waiver.reason.clone(),
            actor: waiver.actor.clone(),
            expires_at: waiver.expires_at,
            state: state.into(),
        });
        let message = match state {
            "unmatched" => format!(
                "waiver for {} by {} names no rule of this evaluation; ignored",
                waiver.rule_id, waiver.actor
            ),
            "expired" => format!(
                "waiver for {} by {} expired at {}; ignored",
                waiver.rule_id, waiver.actor, waiver.expires_at
            ),
            _ => format!(
                "waiver for {} by {} active until {}: {}",
                waiver.rule_id, waiver.actor, waiver.expires_at, waiver.reason
            ),
        };
        trace.push(TraceStep {
            at: now,
            step: "waiver".into(),
            message,
        });
        if state == "active" {
            for o in outcomes.iter_mut().filter(|o| o.rule.id == waiver.rule_id) {
                if o.result.state != ResultState::Pass && o.result.state != ResultState::Waived {
                    let was = state_name(o.result.state);
                    o.result.state = ResultState::Waived;
                    o.result.reason = Some(format!(
                        "{was}, waived by {} until {}: {}",
                        waiver.actor, waiver.expires_at, waiver.reason
                    ));
                    o.asks = None;
                }
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
    if outcomes.iter().any(&approvable) || !gate.approvals.is_empty() {
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
    let failing_checks: Vec<String> = outcomes
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
            let action = match &o.rule.next_action {
                Some(t) => t.render(|p| lookup(p, Some(o.rule))),
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
        if decision == Decision::RequireApproval && !approvals_satisfied {
            push(format!(
                "Record {} on ReleaseGate approvals for {} {} ({} so far).",
                plural(policy.required_approvers as usize, "approval", "approvals"),
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
        mode: gate.mode,
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
        policy_results: outcomes.into_iter().map(|o| o.result).collect(),
        evidence,
        rollback: gate.rollback.as_ref().map(|r| RollbackRecord {
            release: r.release.clone(),
            image: r.image.clone(),
            ready: rollback_image_ready,
        }),
        approvals: gate.approvals.clone(),
        waivers,
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
    })
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
fn cel_facts(facts: &HashMap<(&str, &str), Observation<'_>>) -> cel::Value {
    let mut by_connector: HashMap<String, HashMap<String, cel::Value>> = HashMap::new();
    for ((connector, name), obs) in facts {
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
