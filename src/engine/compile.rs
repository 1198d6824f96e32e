//! Policy validation and compilation: everything that can be checked before
//! evidence arrives is checked here, once per policy version.

use std::collections::HashSet;
use std::sync::Arc;

use crate::api::{Decision, Mode, Operator, PolicyRule, PolicySpec, Provenance};

use super::template::Template;
use super::value::TypedValue;
use super::{PolicyError, PolicyErrorReason};

/// Which phase a rule belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `spec.rules`: evaluated before promotion.
    PreDeploy,
    /// `spec.postDeploy.rules`: evaluated during the watch window.
    PostDeploy,
}

#[derive(Clone, Debug)]
pub(crate) enum Check {
    Present,
    Equals(TypedValue),
    NotEquals(TypedValue),
    Ordered(Operator, TypedValue),
    In(Vec<TypedValue>),
}

pub(crate) struct CompiledRule {
    pub id: String,
    pub label: String,
    pub connector: String,
    pub fact: String,
    pub check: Option<Check>,
    pub expression: Option<(String, cel::Program)>,
    pub on_fail: Decision,
    pub required: bool,
    pub max_age_seconds: Option<i64>,
    pub next_action: Option<Template>,
    pub weight: u32,
    pub stage: Stage,
    pub threshold: Option<String>,
    /// `<connector>/<fact>`, as recorded in results.
    pub source: String,
    /// Whether the fact's name marks its value as a secret.
    pub fact_sensitive: bool,
    /// Where the fact must come from, when the rule says.
    pub provenance: Option<Provenance>,
}

/// Who may grant approvals and waivers, and for how long (from the Policy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GrantRules {
    pub required_approvers: u32,
    pub allow_self_approval: bool,
    pub allow_service_account_approvals: bool,
    pub waiver_max_seconds: i64,
    pub allow_self_waiver: bool,
    pub allow_service_account_waivers: bool,
}

/// A waiver lasts at most this long unless the Policy says otherwise (7 days).
pub const DEFAULT_WAIVER_MAX_SECONDS: i64 = 7 * 24 * 3600;

/// A validated policy, ready to evaluate many times.
pub struct CompiledPolicy {
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) min_confidence: Option<u8>,
    pub(crate) canary: Option<crate::api::CanaryPolicy>,
    pub(crate) required_approvers: u32,
    pub(crate) grants: GrantRules,
    pub(crate) approvable_rules: Option<HashSet<String>>,
    pub(crate) rollback_window_seconds: Option<i64>,
    pub(crate) minimum_mode: Option<Mode>,
    pub(crate) post_deploy_window_seconds: Option<i64>,
    pub(crate) hash: String,
    pub(crate) cel_env: Option<Arc<cel::Env>>,
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("rules", &self.rules.len())
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl CompiledPolicy {
    /// `sha256:<hex>` of the policy spec's canonical JSON, as recorded in passports.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Number of pre-deploy rules.
    pub fn rule_count(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| r.stage == Stage::PreDeploy)
            .count()
    }

    /// Ids of every rule, pre-deploy first.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// The post-deploy watch window of the policy, in seconds.
    pub fn post_deploy_window_seconds(&self) -> Option<i64> {
        self.post_deploy_window_seconds
    }

    /// How long after it last ran a proven release stays a rollback target.
    pub fn rollback_window_seconds(&self) -> Option<i64> {
        self.rollback_window_seconds
    }

    /// The weakest mode the policy allows its gates to be evaluated in.
    pub fn minimum_mode(&self) -> Option<Mode> {
        self.minimum_mode
    }
}

fn err(
    rule_id: Option<&str>,
    path: String,
    reason: PolicyErrorReason,
    message: impl Into<String>,
) -> PolicyError {
    PolicyError {
        rule_id: rule_id.map(str::to_string),
        path,
        reason,
        message: message.into(),
    }
}

/// Validates and compiles a policy. Errors name the rule, the field
/// (relative to `spec`, e.g. `rules[2].condition.value`) and a reason a
/// machine can match.
pub fn compile(policy: &PolicySpec) -> Result<CompiledPolicy, PolicyError> {
    let hash = super::policy_hash(policy);
    let mut rules = Vec::with_capacity(policy.rules.len());
    let mut ids = HashSet::new();
    if policy.rules.is_empty() {
        return Err(err(
            None,
            "rules".into(),
            PolicyErrorReason::NoRules,
            "a policy needs at least one rule",
        ));
    }
    let post = policy.post_deploy.as_ref();
    let all = policy
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("rules[{i}]"), r, Stage::PreDeploy))
        .chain(post.into_iter().flat_map(|p| {
            p.rules
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("postDeploy.rules[{i}]"), r, Stage::PostDeploy))
        }));
    let freeze = policy.incident_freeze.as_ref().map(incident_freeze_rule);
    let all = all.chain(
        freeze
            .iter()
            .map(|r| ("incidentFreeze".to_string(), r, Stage::PreDeploy)),
    );
    let mut has_expression = false;
    for (path, rule, stage) in all {
        if !ids.insert(rule.id.clone()) {
            return Err(err(
                Some(&rule.id),
                format!("{path}.id"),
                PolicyErrorReason::DuplicateRuleId,
                format!("rule id {} is used more than once", rule.id),
            ));
        }
        has_expression |= rule.expression.is_some();
        rules.push(compile_rule(&path, rule, stage)?);
    }
    if let Some(c) = &policy.min_confidence
        && *c > 100
    {
        return Err(err(
            None,
            "minConfidence".into(),
            PolicyErrorReason::InvalidValue,
            "minConfidence is a percentage (0-100)",
        ));
    }
    if let Some(canary) = &policy.canary {
        if let Some(step) = canary.max_traffic_step_percent
            && !(1..=100).contains(&step)
        {
            return Err(err(
                None,
                "canary.maxTrafficStepPercent".into(),
                PolicyErrorReason::InvalidValue,
                "maxTrafficStepPercent is a percentage (1-100)",
            ));
        }
        if let Some(c) = canary.min_confidence
            && c > 100
        {
            return Err(err(
                None,
                "canary.minConfidence".into(),
                PolicyErrorReason::InvalidValue,
                "canary.minConfidence is a percentage (0-100)",
            ));
        }
    }
    let mut required_approvers = 1;
    let mut approvable_rules = None;
    if let Some(approval) = &policy.approval {
        if let Some(n) = approval.required_approvers {
            if n == 0 {
                return Err(err(
                    None,
                    "approval.requiredApprovers".into(),
                    PolicyErrorReason::InvalidValue,
                    "requiredApprovers must be at least 1",
                ));
            }
            required_approvers = n;
        }
        if !approval.rules.is_empty() {
            for (i, id) in approval.rules.iter().enumerate() {
                if !ids.contains(id) {
                    return Err(err(
                        Some(id),
                        format!("approval.rules[{i}]"),
                        PolicyErrorReason::UnknownRule,
                        format!("approval.rules names {id}, which is not a rule of this policy"),
                    ));
                }
            }
            approvable_rules = Some(approval.rules.iter().cloned().collect());
        }
    }
    let approval = policy.approval.clone().unwrap_or_default();
    let waiver = policy.waiver.clone().unwrap_or_default();
    let waiver_max_seconds = waiver
        .max_duration_seconds
        .unwrap_or(DEFAULT_WAIVER_MAX_SECONDS);
    if waiver_max_seconds < 60 {
        return Err(err(
            None,
            "waiver.maxDurationSeconds".into(),
            PolicyErrorReason::InvalidValue,
            "waiver.maxDurationSeconds must be at least 60",
        ));
    }
    if let Some(w) = policy.rollback.as_ref().and_then(|r| r.window_seconds)
        && w < 60
    {
        return Err(err(
            None,
            "rollback.windowSeconds".into(),
            PolicyErrorReason::InvalidValue,
            "rollback.windowSeconds must be at least 60",
        ));
    }
    Ok(CompiledPolicy {
        rules,
        min_confidence: policy.min_confidence,
        canary: policy.canary.clone(),
        required_approvers,
        grants: GrantRules {
            required_approvers,
            allow_self_approval: approval.allow_self_approval,
            allow_service_account_approvals: approval.allow_service_accounts,
            waiver_max_seconds,
            allow_self_waiver: waiver.allow_self_waiver,
            allow_service_account_waivers: waiver.allow_service_accounts,
        },
        approvable_rules,
        rollback_window_seconds: policy.rollback.as_ref().and_then(|r| r.window_seconds),
        minimum_mode: policy.minimum_mode,
        post_deploy_window_seconds: post.and_then(|p| p.watch_window_seconds),
        hash,
        cel_env: has_expression.then(|| Arc::new(cel::Env::stdlib())),
    })
}

/// Id of the rule an `incidentFreeze` compiles to.
pub const INCIDENT_FREEZE_RULE: &str = "incident-freeze";

/// The rule behind `incidentFreeze`: BLOCK while the incident connector
/// reports an open incident at the priority or above, naming it.
fn incident_freeze_rule(freeze: &crate::api::IncidentFreeze) -> PolicyRule {
    let priority = freeze.priority.unwrap_or(1).clamp(1, 5);
    let connector = freeze
        .connector
        .clone()
        .unwrap_or_else(|| "pagerduty".into());
    let what = if priority == 1 {
        "Sev-1 (P1)".to_string()
    } else {
        format!("P{priority} or more severe")
    };
    PolicyRule {
        id: INCIDENT_FREEZE_RULE.into(),
        label: format!("Incident freeze: no open {what} incident on the service"),
        connector,
        fact: format!("active_p{priority}_or_higher_incidents"),
        condition: Some(crate::api::RuleCondition {
            operator: Operator::Equals,
            value: Some(serde_json::json!(0)),
            values: None,
        }),
        expression: None,
        on_fail: Decision::Block,
        required: true,
        max_age_seconds: None,
        next_action: Some(
            "Incident freeze: resolve {evidence.most_severe_incident}, then re-run the gate for {service} {release}."
                .into(),
        ),
        weight: None,
        provenance: None,
    }
}

fn scalar(
    rule: &PolicyRule,
    path: String,
    value: Option<&serde_json::Value>,
    operator: Operator,
) -> Result<TypedValue, PolicyError> {
    let Some(value) = value else {
        return Err(err(
            Some(&rule.id),
            path,
            PolicyErrorReason::MissingValue,
            format!("operator {} needs a value", operator_name(operator)),
        ));
    };
    TypedValue::from_json(value).map_err(|e| {
        err(
            Some(&rule.id),
            path,
            PolicyErrorReason::InvalidValue,
            format!(
                "expected a number, string, boolean or timestamp, found {}",
                e.0
            ),
        )
    })
}

fn compile_rule(path: &str, rule: &PolicyRule, stage: Stage) -> Result<CompiledRule, PolicyError> {
    if rule.on_fail == Decision::Allow {
        return Err(err(
            Some(&rule.id),
            format!("{path}.onFail"),
            PolicyErrorReason::InvalidOnFail,
            "onFail must be a decision other than ALLOW",
        ));
    }
    if rule.condition.is_none() && rule.expression.is_none() {
        return Err(err(
            Some(&rule.id),
            path.to_string(),
            PolicyErrorReason::MissingCheck,
            "a rule needs a condition, an expression, or both",
        ));
    }
    if rule.provenance == Some(Provenance::Gate) {
        return Err(err(
            Some(&rule.id),
            format!("{path}.provenance"),
            PolicyErrorReason::InvalidValue,
            "provenance is pulled or pushed",
        ));
    }
    if let Some(p) = rule.provenance
        && rule.connector == super::GATE_CONNECTOR
    {
        return Err(err(
            Some(&rule.id),
            format!("{path}.provenance"),
            PolicyErrorReason::InvalidValue,
            format!(
                "facts of connector {} are the gate's own, never {p}",
                super::GATE_CONNECTOR
            ),
        ));
    }
    if let Some(age) = rule.max_age_seconds
        && age < 1
    {
        return Err(err(
            Some(&rule.id),
            format!("{path}.maxAgeSeconds"),
            PolicyErrorReason::InvalidValue,
            "maxAgeSeconds must be at least 1",
        ));
    }
    let mut threshold = None;
    let check = match &rule.condition {
        None => None,
        Some(condition) => {
            let value_path = format!("{path}.condition.value");
            let op = condition.operator;
            let check = match op {
                Operator::Present => Check::Present,
                Operator::Equals => {
                    Check::Equals(scalar(rule, value_path, condition.value.as_ref(), op)?)
                }
                Operator::NotEquals => {
                    Check::NotEquals(scalar(rule, value_path, condition.value.as_ref(), op)?)
                }
                Operator::LessThan
                | Operator::LessThanOrEqual
                | Operator::GreaterThan
                | Operator::GreaterThanOrEqual => {
                    let v = scalar(rule, value_path.clone(), condition.value.as_ref(), op)?;
                    if !v.is_ordered() {
                        return Err(err(
                            Some(&rule.id),
                            value_path,
                            PolicyErrorReason::InvalidValue,
                            format!(
                                "operator {} needs a number (optionally with a unit) or a timestamp, found {} {:?}",
                                operator_name(op),
                                v.kind(),
                                v.to_string()
                            ),
                        ));
                    }
                    Check::Ordered(op, v)
                }
                Operator::In => {
                    let values_path = format!("{path}.condition.values");
                    let Some(values) = condition.values.as_ref().filter(|v| !v.is_empty()) else {
                        return Err(err(
                            Some(&rule.id),
                            values_path,
                            PolicyErrorReason::MissingValue,
                            "operator in needs a non-empty `values` list",
                        ));
                    };
                    let mut typed = Vec::with_capacity(values.len());
                    for (i, v) in values.iter().enumerate() {
                        typed.push(scalar(rule, format!("{values_path}[{i}]"), Some(v), op)?);
                    }
                    Check::In(typed)
                }
            };
            threshold = Some(threshold_text(
                op,
                condition.value.as_ref(),
                condition.values.as_deref(),
            ));
            Some(check)
        }
    };
    let expression = match &rule.expression {
        None => None,
        Some(source) => {
            let program = cel::Program::compile(source).map_err(|e| {
                let first = e.to_string();
                let first = first.lines().next().unwrap_or("syntax error").to_string();
                err(
                    Some(&rule.id),
                    format!("{path}.expression"),
                    PolicyErrorReason::InvalidExpression,
                    format!("CEL does not compile: {first}"),
                )
            })?;
            threshold = Some(match threshold {
                Some(t) => format!("{t} and {source}"),
                None => source.clone(),
            });
            Some((source.clone(), program))
        }
    };
    let next_action = match &rule.next_action {
        None => None,
        Some(source) => Some(Template::parse(source).map_err(|e| {
            err(
                Some(&rule.id),
                format!("{path}.nextAction"),
                PolicyErrorReason::InvalidTemplate,
                e.0,
            )
        })?),
    };
    Ok(CompiledRule {
        id: rule.id.clone(),
        label: rule.label.clone(),
        connector: rule.connector.clone(),
        fact: rule.fact.clone(),
        check,
        expression,
        on_fail: if stage == Stage::PostDeploy {
            Decision::RollbackRecommended
        } else {
            rule.on_fail
        },
        required: rule.required,
        max_age_seconds: rule.max_age_seconds,
        next_action,
        weight: rule.weight.unwrap_or(1),
        stage,
        threshold,
        source: format!("{}/{}", rule.connector, rule.fact),
        fact_sensitive: crate::passport::redact::is_sensitive_key(&rule.fact),
        provenance: rule.provenance,
    })
}

pub(crate) fn operator_name(op: Operator) -> &'static str {
    match op {
        Operator::Equals => "equals",
        Operator::NotEquals => "notEquals",
        Operator::LessThan => "lessThan",
        Operator::LessThanOrEqual => "lessThanOrEqual",
        Operator::GreaterThan => "greaterThan",
        Operator::GreaterThanOrEqual => "greaterThanOrEqual",
        Operator::In => "in",
        Operator::Present => "present",
    }
}

/// The threshold as written, e.g. `< 2%`.
fn threshold_text(
    op: Operator,
    value: Option<&serde_json::Value>,
    values: Option<&[serde_json::Value]>,
) -> String {
    let value = value.map(raw_text).unwrap_or_default();
    match op {
        Operator::Present => "present".into(),
        Operator::Equals => format!("= {value}"),
        Operator::NotEquals => format!("!= {value}"),
        Operator::LessThan => format!("< {value}"),
        Operator::LessThanOrEqual => format!("<= {value}"),
        Operator::GreaterThan => format!("> {value}"),
        Operator::GreaterThanOrEqual => format!(">= {value}"),
        Operator::In => {
            let list: Vec<String> = values.unwrap_or_default().iter().map(raw_text).collect();
            format!("in [{}]", list.join(", "))
        }
    }
}

/// A JSON scalar as a person wrote it: strings without quotes.
pub(crate) fn raw_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
