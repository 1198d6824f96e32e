//! Behaviour of the decision engine, on the example scenarios and on small
//! policies built in the tests.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use proptest::prelude::*;
use releasepassport::api::{
    AppliedBy, Decision, EvidenceDocument, GrantState, Mode, Policy, PolicySpec, ProvenRelease,
    Provenance, ReleaseApproval, ReleaseGate, ReleaseGateSpec, ReleaseWaiver, ReleaseWaiverSpec,
    ResultState, RollbackRecommendation,
};
use releasepassport::engine::{
    self, ApprovalInput, Evaluation, EvaluationInput, GateContext, PolicyErrorReason, Stage,
    WaiverInput, combine,
};
use serde_json::json;

fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/evaluate")
        .join(name)
}

fn yaml<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

struct Scenario {
    policy: PolicySpec,
    gate: ReleaseGateSpec,
    evidence: Vec<EvidenceDocument>,
    approvals: Vec<ReleaseApproval>,
    waivers: Vec<ReleaseWaiver>,
}

fn scenario(name: &str) -> Scenario {
    let dir = example_dir(name);
    let policy: Policy = yaml(&dir.join("policy.yaml"));
    let gate: ReleaseGate = yaml(&dir.join("releasegate.yaml"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("evidence"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let evidence = files
        .iter()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect();
    let approvals = optional_yaml(&dir.join("approval.yaml"));
    let waivers = optional_yaml(&dir.join("waiver.yaml"));
    Scenario {
        policy: policy.spec,
        gate: gate.spec,
        evidence,
        approvals,
        waivers,
    }
}

fn optional_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    if path.exists() {
        vec![yaml(path)]
    } else {
        Vec::new()
    }
}

/// The digest of the scenario's artifact.
fn digest(s: &Scenario) -> String {
    s.gate
        .artifact
        .image
        .rsplit_once('@')
        .unwrap()
        .1
        .to_string()
}

fn now() -> Timestamp {
    "2026-05-17T06:30:00Z".parse().unwrap()
}

fn run_at(s: &Scenario, at: Timestamp) -> Evaluation {
    let compiled = engine::compile(&s.policy).unwrap();
    let approvals: Vec<ApprovalInput<'_>> = s
        .approvals
        .iter()
        .map(|a| ApprovalInput {
            name: a.metadata.name.as_deref().unwrap(),
            spec: &a.spec,
            created_at: a.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect();
    let waivers: Vec<WaiverInput<'_>> = s
        .waivers
        .iter()
        .map(|w| WaiverInput {
            name: w.metadata.name.as_deref().unwrap(),
            spec: &w.spec,
            created_at: w.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect();
    engine::evaluate(&EvaluationInput {
        context: GateContext {
            approvals: &approvals,
            waivers: &waivers,
            ..Default::default()
        },
        policy_name: "payment-api-production",
        policy: &compiled,
        gate: &s.gate,
        gate_ref: None,
        evidence: &s.evidence,
        now: at,
        actor: "test",
        stage: Stage::PreDeploy,
    })
    .unwrap()
}

fn run(s: &Scenario) -> Evaluation {
    run_at(s, now())
}

fn state_of(e: &Evaluation, id: &str) -> ResultState {
    e.passport
        .policy_results
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
        .state
}

#[test]
fn seed_example_holds_with_the_three_failing_checks_and_next_actions() {
    let e = run(&scenario("payment-api-hold"));
    assert_eq!(e.decision(), Decision::Hold);
    assert_eq!(
        e.failing_checks,
        ["error-rate", "rollback-image", "change-approval"]
    );
    let labels: Vec<(&str, ResultState)> = e
        .passport
        .policy_results
        .iter()
        .map(|r| (r.label.as_str(), r.state))
        .collect();
    assert_eq!(
        labels,
        [
            ("Argo CD application synced", ResultState::Pass),
            ("No active Sev-1 incident", ResultState::Pass),
            ("Prometheus error rate above 2%", ResultState::Fail),
            ("Rollback image missing", ResultState::Fail),
            ("Jira change approval not linked", ResultState::Fail),
        ]
    );
    assert_eq!(
        e.passport.next_actions,
        [
            "Re-sync the GitOps application and wait for fresh runtime evidence.",
            "Attach rollback artifact for payment-api v2.17.9.",
            "Link the Jira change approval, then re-run the shadow gate.",
        ]
    );
}

#[test]
fn hold_when_rollback_image_missing() {
    let mut s = scenario("allow");
    s.gate.rollback.as_mut().unwrap().image = None;
    let e = run(&s);
    assert_eq!(e.decision(), Decision::Hold);
    assert_eq!(state_of(&e, "rollback-image"), ResultState::Fail);
    assert!(!e.passport.rollback.as_ref().unwrap().ready);
}

#[test]
fn allow_when_every_rule_passes_on_fresh_evidence() {
    let e = run(&scenario("allow"));
    assert_eq!(e.decision(), Decision::Allow);
    assert_eq!(e.confidence(), 100);
    assert!(e.failing_checks.is_empty());
    assert!(e.passport.next_actions.is_empty());
    assert!(e.passport.rollback.as_ref().unwrap().ready);
}

#[test]
fn allow_with_canary_carries_the_policy_constraints() {
    let e = run(&scenario("allow-with-canary"));
    assert_eq!(e.decision(), Decision::AllowWithCanary);
    let canary = e.passport.canary.as_ref().unwrap();
    assert_eq!(canary.max_traffic_step_percent, Some(10));
    assert_eq!(canary.watch_window_seconds, Some(600));
    assert!(
        e.passport
            .next_actions
            .iter()
            .any(|a| a.contains("at most 10% of traffic per step"))
    );
}

#[test]
fn require_approval_when_change_approval_missing_and_no_approver() {
    let e = run(&scenario("require-approval"));
    assert_eq!(e.decision(), Decision::RequireApproval);
    assert_eq!(e.failing_checks, ["change-approval"]);
}

#[test]
fn an_approval_satisfies_require_approval() {
    let e = run(&scenario("require-approval-approved"));
    assert_eq!(e.decision(), Decision::Allow);
    assert!(e.failing_checks.is_empty());
    assert_eq!(e.passport.approvals.len(), 1);
    let reason = e.passport.policy_results[4].reason.clone().unwrap();
    assert!(
        reason.contains("satisfied by approval of alice@example.com"),
        "{reason}"
    );
}

#[test]
fn two_required_approvers_need_two_distinct_people() {
    let mut s = scenario("require-approval-approved");
    s.policy.approval.as_mut().unwrap().required_approvers = Some(2);
    let mut same = s.approvals[0].clone();
    same.metadata.name = Some("again".into());
    same.spec.reference = Some("CHG-1043".into());
    s.approvals.push(same);
    let e = run(&s);
    assert_eq!(e.decision(), Decision::RequireApproval);
    assert_eq!(
        e.passport.approvals[1].reason.as_deref(),
        Some("DuplicateApprover")
    );
    let mut other = s.approvals[0].clone();
    other.metadata.name = Some("carol".into());
    other.spec.approver = "carol@example.com".into();
    s.approvals.push(other);
    assert_eq!(run(&s).decision(), Decision::Allow);
}

#[test]
fn approvals_do_not_satisfy_hold_rules() {
    let mut s = scenario("require-approval-approved");
    s.gate.rollback.as_mut().unwrap().image = None;
    assert_eq!(run(&s).decision(), Decision::Hold);
}

#[test]
fn block_outranks_every_other_failure() {
    let mut s = scenario("block");
    s.gate.rollback.as_mut().unwrap().image = None;
    let e = run(&s);
    assert_eq!(e.decision(), Decision::Block);
    assert_eq!(e.failing_checks, ["no-active-sev1", "rollback-image"]);
}

#[test]
fn stale_evidence_holds_and_lowers_confidence() {
    let e = run(&scenario("stale-hold"));
    assert_eq!(e.decision(), Decision::Hold);
    assert_eq!(state_of(&e, "error-rate"), ResultState::Stale);
    assert!(e.confidence() < 100);
    let prom = e
        .passport
        .evidence
        .iter()
        .find(|ev| ev.connector == "prometheus")
        .unwrap();
    assert_eq!(prom.status, "stale");
}

#[test]
fn evidence_turns_stale_when_the_clock_passes_its_max_age() {
    let s = scenario("allow");
    let fresh = run(&s);
    let stale_at = fresh.next_stale_at.unwrap();
    // Prometheus: observed 06:23, max age 600s.
    assert_eq!(
        stale_at,
        "2026-05-17T06:33:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(run_at(&s, stale_at).decision(), Decision::Allow);
    let later = stale_at
        .checked_add(jiff::SignedDuration::from_secs(1))
        .unwrap();
    let e = run_at(&s, later);
    assert_eq!(e.decision(), Decision::Hold);
    assert_eq!(state_of(&e, "error-rate"), ResultState::Stale);
}

#[test]
fn expired_waiver_is_ignored_and_the_trace_says_so() {
    let e = run(&scenario("expired-waiver"));
    assert_eq!(e.decision(), Decision::Hold);
    assert_eq!(state_of(&e, "error-rate"), ResultState::Fail);
    assert_eq!(e.passport.waivers[0].state, "expired");
    assert!(e.passport.trace.iter().any(|t| t.step == "waiver"
        && t.message.contains("expired")
        && t.message.contains("ignored")));
}

#[test]
fn active_waiver_turns_the_failure_into_waived() {
    let mut s = scenario("expired-waiver");
    s.waivers[0].metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-05-17T06:00:00Z".parse().unwrap(),
        ));
    s.waivers[0].spec.expires_at = "2026-05-18T00:00:00Z".parse().unwrap();
    let e = run(&s);
    assert_eq!(e.decision(), Decision::Allow);
    assert_eq!(state_of(&e, "error-rate"), ResultState::Waived);
    assert_eq!(e.passport.waivers[0].state, "active");
}

#[test]
fn missing_required_evidence_holds() {
    let mut s = scenario("allow");
    s.evidence.retain(|d| d.connector != "argocd");
    let e = run(&s);
    assert_eq!(e.decision(), Decision::Hold);
    assert_eq!(state_of(&e, "argocd-synced"), ResultState::Missing);
}

#[test]
fn missing_optional_evidence_does_not_change_the_decision() {
    let mut s = scenario("allow");
    s.policy.rules[0].required = false;
    s.policy.min_confidence = None;
    s.evidence.retain(|d| d.connector != "argocd");
    let e = run(&s);
    assert_eq!(e.decision(), Decision::Allow);
    assert_eq!(state_of(&e, "argocd-synced"), ResultState::Missing);
}

#[test]
fn confidence_is_the_weighted_share_of_required_evidence_present_and_fresh() {
    // Weights: argocd 1, sev1 1, error-rate 2, rollback 1, change 1 = 6.
    let mut s = scenario("allow");
    s.policy.min_confidence = None;
    s.evidence.retain(|d| d.connector != "prometheus");
    assert_eq!(run(&s).confidence(), 66); // 4 of 6, rounded down
}

fn waive(s: &mut Scenario, rule_id: &str) {
    let mut waiver = ReleaseWaiver::new(
        &format!("waive-{rule_id}"),
        ReleaseWaiverSpec {
            gate: "payment-api-production".into(),
            rule_id: rule_id.into(),
            digest: digest(s),
            reason: "connector outage, tracked in OPS-7".into(),
            expires_at: "2026-05-18T00:00:00Z".parse().unwrap(),
            author: "dana@example.com".into(),
        },
    );
    waiver.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-05-17T06:00:00Z".parse().unwrap(),
        ));
    s.waivers.push(waiver);
}

#[test]
fn low_confidence_within_the_canary_band_allows_with_canary() {
    // argocd evidence is missing but waived: no rule asks for anything, and
    // confidence is 5 of 6 = 83%, below the 90% minimum, above the 50% canary band.
    let mut s = scenario("allow");
    s.evidence.retain(|d| d.connector != "argocd");
    waive(&mut s, "argocd-synced");
    s.policy.min_confidence = Some(90);
    s.policy.canary = Some(releasepassport::api::CanaryPolicy {
        max_traffic_step_percent: Some(5),
        watch_window_seconds: Some(300),
        min_confidence: Some(50),
    });
    let e = run(&s);
    assert_eq!(e.confidence(), 83);
    assert_eq!(e.decision(), Decision::AllowWithCanary);
    assert_eq!(
        e.passport.canary.as_ref().unwrap().max_traffic_step_percent,
        Some(5)
    );
}

#[test]
fn confidence_below_minimum_is_at_least_hold() {
    // Prometheus (weight 2 of 6) missing but waived: 66% < 80%.
    let mut s = scenario("allow");
    s.evidence.retain(|d| d.connector != "prometheus");
    waive(&mut s, "error-rate");
    let e = run(&s);
    assert_eq!(e.confidence(), 66);
    assert!(e.failing_checks.is_empty());
    assert_eq!(e.decision(), Decision::Hold);
    assert!(
        e.passport
            .next_actions
            .iter()
            .any(|a| a.contains("confidence 66% is below the policy minimum 80%")),
        "{:?}",
        e.passport.next_actions
    );
}

#[test]
fn cel_expression_over_facts_decides_the_rule() {
    let mut s = scenario("allow");
    s.policy.rules[2].condition = None;
    s.policy.rules[2].expression =
        Some("facts.prometheus.error_rate < 1.0 && facts.argocd.sync_status == 'Synced'".into());
    assert_eq!(run(&s).decision(), Decision::Allow);
    s.policy.rules[2].expression = Some("facts.prometheus.error_rate < 0.1".into());
    let e = run(&s);
    assert_eq!(e.decision(), Decision::Hold);
    assert_eq!(state_of(&e, "error-rate"), ResultState::Fail);
}

#[test]
fn cel_expression_that_is_not_boolean_fails_the_rule_with_a_reason() {
    let mut s = scenario("allow");
    s.policy.rules[2].expression = Some("facts.prometheus.error_rate".into());
    let e = run(&s);
    assert_eq!(state_of(&e, "error-rate"), ResultState::Fail);
    let reason = e.passport.policy_results[2].reason.clone().unwrap();
    assert!(reason.contains("not a boolean"), "{reason}");
}

#[test]
fn invalid_cel_is_reported_with_the_rule_id() {
    let mut s = scenario("allow");
    s.policy.rules[2].expression = Some("facts.prometheus.error_rate <".into());
    let err = engine::compile(&s.policy).unwrap_err();
    assert_eq!(err.reason, PolicyErrorReason::InvalidExpression);
    assert_eq!(err.rule_id.as_deref(), Some("error-rate"));
    assert_eq!(err.path, "rules[2].expression");
}

#[test]
fn ordered_operator_with_a_word_threshold_is_an_invalid_value() {
    let mut s = scenario("allow");
    s.policy.rules[2].condition.as_mut().unwrap().value = Some(json!("low"));
    let err = engine::compile(&s.policy).unwrap_err();
    assert_eq!(err.reason, PolicyErrorReason::InvalidValue);
    assert_eq!(err.path, "rules[2].condition.value");
}

#[test]
fn in_without_values_is_a_missing_value() {
    let mut s = scenario("allow");
    s.policy.rules[0].condition = Some(serde_json::from_value(json!({"operator": "in"})).unwrap());
    let err = engine::compile(&s.policy).unwrap_err();
    assert_eq!(err.reason, PolicyErrorReason::MissingValue);
    assert_eq!(err.path, "rules[0].condition.values");
}

#[test]
fn in_accepts_any_listed_value() {
    let mut s = scenario("allow");
    s.policy.rules[0].condition = Some(
        serde_json::from_value(json!({"operator": "in", "values": ["OutOfSync", "Synced"]}))
            .unwrap(),
    );
    assert_eq!(run(&s).decision(), Decision::Allow);
}

#[test]
fn unknown_next_action_placeholder_is_rejected() {
    let mut s = scenario("allow");
    s.policy.rules[3].next_action = Some("Page {owner}".into());
    let err = engine::compile(&s.policy).unwrap_err();
    assert_eq!(err.reason, PolicyErrorReason::InvalidTemplate);
    assert_eq!(err.rule_id.as_deref(), Some("rollback-image"));
}

#[test]
fn duplicate_rule_ids_are_rejected() {
    let mut s = scenario("allow");
    let copy = s.policy.rules[0].clone();
    s.policy.rules.push(copy);
    assert_eq!(
        engine::compile(&s.policy).unwrap_err().reason,
        PolicyErrorReason::DuplicateRuleId
    );
}

#[test]
fn unpinned_artifact_is_a_gate_error() {
    let mut s = scenario("allow");
    s.gate.artifact.image = "registry.example.com/payment-api:latest".into();
    let compiled = engine::compile(&s.policy).unwrap();
    let err = engine::evaluate(&EvaluationInput {
        context: Default::default(),
        policy_name: "p",
        policy: &compiled,
        gate: &s.gate,
        gate_ref: None,
        evidence: &s.evidence,
        now: now(),
        actor: "test",
        stage: Stage::PreDeploy,
    })
    .unwrap_err();
    assert!(err.to_string().starts_with("artifact.image:"), "{err}");
}

#[test]
fn post_deploy_failures_recommend_rollback() {
    let mut s = scenario("allow");
    s.policy.post_deploy = Some(
        serde_json::from_value(json!({
            "rules": [{"id": "runtime-errors", "label": "Runtime error rate below 1%",
                       "connector": "prometheus", "fact": "error_rate",
                       "condition": {"operator": "lessThan", "value": "0.1%"}}]
        }))
        .unwrap(),
    );
    let compiled = engine::compile(&s.policy).unwrap();
    let mut input = EvaluationInput {
        context: Default::default(),
        policy_name: "p",
        policy: &compiled,
        gate: &s.gate,
        gate_ref: None,
        evidence: &s.evidence,
        now: now(),
        actor: "test",
        stage: Stage::PreDeploy,
    };
    assert_eq!(
        engine::evaluate(&input).unwrap().decision(),
        Decision::Allow
    );
    input.stage = Stage::PostDeploy;
    assert_eq!(
        engine::evaluate(&input).unwrap().decision(),
        Decision::RollbackRecommended
    );
}

#[test]
fn the_trace_ends_with_the_decision_and_does_not_repeat_the_policy_results() {
    // Each rule's outcome is in policyResults; the trace names the failing
    // checks once, in the decision step.
    let e = run(&scenario("payment-api-hold"));
    assert!(e.passport.trace.iter().all(|t| t.step != "rule"));
    let last = e.passport.trace.last().unwrap();
    assert_eq!(last.step, "decision");
    assert!(last.message.starts_with("HOLD"));
    for id in &e.failing_checks {
        assert!(last.message.contains(id.as_str()), "{}", last.message);
    }
}

#[test]
fn every_evidence_summary_carries_the_digest_of_its_document() {
    let s = scenario("payment-api-hold");
    let e = run(&s);
    let mut checked = 0;
    for summary in &e.passport.evidence {
        let Some(doc) = s.evidence.iter().find(|d| d.connector == summary.connector) else {
            continue;
        };
        checked += 1;
        assert_eq!(
            summary.digest.as_deref(),
            Some(
                releasepassport::passport::digest::canonical_sha256(doc)
                    .unwrap()
                    .as_str()
            )
        );
    }
    assert_eq!(checked, s.evidence.len());
}

#[test]
fn policy_hash_changes_with_the_policy() {
    let s = scenario("allow");
    let a = engine::policy_hash(&s.policy);
    let mut changed = s.policy.clone();
    changed.min_confidence = Some(81);
    assert_ne!(a, engine::policy_hash(&changed));
    assert!(a.starts_with("sha256:") && a.len() == 7 + 64);
}

const NON_ALLOW: [Decision; 5] = [
    Decision::AllowWithCanary,
    Decision::RequireApproval,
    Decision::Hold,
    Decision::RollbackRecommended,
    Decision::Block,
];

fn outcome_policy(rules: &[(Decision, bool)]) -> (PolicySpec, EvidenceDocument) {
    let rules_json: Vec<serde_json::Value> = rules
        .iter()
        .enumerate()
        .map(|(i, (on_fail, _))| {
            json!({"id": format!("r{i}"), "label": format!("rule {i}"), "connector": "ingest",
                   "fact": format!("f{i}"), "condition": {"operator": "equals", "value": true},
                   "onFail": on_fail})
        })
        .collect();
    let policy: PolicySpec = serde_json::from_value(json!({"rules": rules_json})).unwrap();
    let facts: Vec<serde_json::Value> = rules
        .iter()
        .enumerate()
        .map(|(i, (_, passes))| json!({"name": format!("f{i}"), "value": passes}))
        .collect();
    let evidence: EvidenceDocument = serde_json::from_value(json!({
        "connector": "ingest",
        "freshness": {"observedAt": "2026-05-17T06:29:00Z", "maxAgeSeconds": 600},
        "facts": facts
    }))
    .unwrap();
    (policy, evidence)
}

proptest! {
    #[test]
    fn decision_follows_precedence_for_any_rule_outcomes(
        rules in prop::collection::vec((prop::sample::select(NON_ALLOW.to_vec()), any::<bool>()), 1..12)
    ) {
        let (policy, evidence) = outcome_policy(&rules);
        let s = scenario("allow");
        let compiled = engine::compile(&policy).unwrap();
        let evidence = [evidence];
        let e = engine::evaluate(&EvaluationInput {
            context: Default::default(),
            policy_name: "p",
            policy: &compiled,
            gate: &s.gate,
            gate_ref: None,
            evidence: &evidence,
            now: now(),
            actor: "test",
            stage: Stage::PreDeploy,
        }).unwrap();
        let expected = rules
            .iter()
            .filter(|(_, passes)| !passes)
            .map(|(d, _)| *d)
            .max()
            .unwrap_or(Decision::Allow);
        prop_assert_eq!(e.decision(), expected);
        prop_assert_eq!(e.decision() == Decision::Allow, e.passport.next_actions.is_empty());
        // The precedence of SPEC.md, most severe first.
        let order = [Decision::Block, Decision::RollbackRecommended, Decision::Hold,
                     Decision::RequireApproval, Decision::AllowWithCanary, Decision::Allow];
        let asked: Vec<Decision> = rules.iter().filter(|(_, p)| !p).map(|(d, _)| *d).collect();
        let first = order.iter().find(|d| asked.contains(d)).copied().unwrap_or(Decision::Allow);
        prop_assert_eq!(e.decision(), first);
        prop_assert_eq!(combine(asked), first);
    }
}

// --- The trust model: who approved, what was pushed, what the platform requires.

fn approval_from(s: &Scenario, approver: &str, digest: &str) -> ReleaseApproval {
    let mut a = s.approvals[0].clone();
    a.metadata.name = Some(format!("{approver}-approves"));
    a.spec.approver = approver.into();
    a.spec.digest = digest.into();
    a
}

#[test]
fn an_approval_of_another_digest_does_not_count() {
    let mut s = scenario("require-approval-approved");
    let other = format!("sha256:{}", "0".repeat(64));
    s.approvals = vec![approval_from(&s, "alice@example.com", &other)];
    let e = run(&s);
    assert_eq!(e.decision(), Decision::RequireApproval);
    assert_eq!(
        e.passport.approvals[0].reason.as_deref(),
        Some("OtherDigest")
    );
    let grant = &e.grants[0];
    assert_eq!(grant.state, GrantState::NotCounted);
    assert!(grant.message.contains(&other), "{}", grant.message);
}

#[test]
fn the_user_who_applied_the_release_cannot_approve_it_unless_the_policy_allows() {
    let mut s = scenario("require-approval-approved");
    s.gate.applied_by = Some(AppliedBy {
        release: Some("alice@example.com".into()),
        evidence: None,
        configuration: None,
    });
    let e = run(&s);
    assert_eq!(e.decision(), Decision::RequireApproval);
    assert_eq!(
        e.passport.approvals[0].reason.as_deref(),
        Some("SelfApproval")
    );
    assert_eq!(e.passport.released_by.as_deref(), Some("alice@example.com"));
    assert!(
        e.passport
            .next_actions
            .iter()
            .any(|a| a.contains("other than alice@example.com")),
        "{:?}",
        e.passport.next_actions
    );
    s.policy.approval.as_mut().unwrap().allow_self_approval = true;
    assert_eq!(run(&s).decision(), Decision::Allow);
}

#[test]
fn approvals_by_service_accounts_count_only_when_the_policy_allows() {
    let mut s = scenario("require-approval-approved");
    let digest = digest(&s);
    s.approvals = vec![approval_from(
        &s,
        "system:serviceaccount:payments:deployer",
        &digest,
    )];
    let e = run(&s);
    assert_eq!(e.decision(), Decision::RequireApproval);
    assert_eq!(
        e.passport.approvals[0].reason.as_deref(),
        Some("ServiceAccount")
    );
    s.policy.approval.as_mut().unwrap().allow_service_accounts = true;
    assert_eq!(run(&s).decision(), Decision::Allow);
}

#[test]
fn a_waiver_longer_than_the_policy_allows_does_not_count_and_an_active_one_is_reevaluated_at_expiry()
 {
    let mut s = scenario("allow");
    s.evidence.retain(|d| d.connector != "argocd");
    waive(&mut s, "argocd-synced");
    let e = run(&s);
    assert_eq!(state_of(&e, "argocd-synced"), ResultState::Waived);
    // Created 06:00, expires tomorrow 00:00: re-evaluate then at the latest.
    assert!(e.next_stale_at.unwrap() <= "2026-05-18T00:00:00Z".parse().unwrap());
    s.policy.waiver = Some(releasepassport::api::WaiverPolicy {
        max_duration_seconds: Some(3600),
        ..Default::default()
    });
    let e = run(&s);
    assert_eq!(e.decision(), Decision::Hold);
    assert_eq!(e.passport.waivers[0].state, "refused");
    assert_eq!(
        e.passport.waivers[0].refusal.as_deref(),
        Some("BeyondMaximumDuration")
    );
}

fn pushed(
    connector: &str,
    observed: &str,
    fact: &str,
    value: serde_json::Value,
) -> EvidenceDocument {
    serde_json::from_value(json!({
        "connector": connector, "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
        "facts": [{"name": fact, "value": value}]
    }))
    .unwrap()
}

#[test]
fn pushed_evidence_under_a_pulled_name_or_from_the_future_is_refused_and_said_so() {
    let mut s = scenario("allow");
    s.evidence.retain(|d| d.connector != "prometheus");
    // CI pushes a passing error rate under Prometheus's name: it does not count.
    s.gate.evidence = vec![pushed(
        "prometheus",
        "2026-05-17T06:29:00Z",
        "error_rate",
        json!("0.1%"),
    )];
    let e = run(&s);
    assert_eq!(state_of(&e, "error-rate"), ResultState::Missing);
    assert!(
        e.refused_evidence[0].contains("which the operator pulls"),
        "{:?}",
        e.refused_evidence
    );
    assert_eq!(
        e.passport
            .evidence
            .iter()
            .filter(|d| d.status == "refused")
            .count(),
        1
    );
    // Facts observed tomorrow never go stale: refused.
    s.gate.evidence = vec![pushed(
        "ingest",
        "2026-05-18T06:00:00Z",
        "active_sev1_incidents",
        json!(0),
    )];
    let e = run(&s);
    assert!(
        e.refused_evidence[0].contains("in the future"),
        "{:?}",
        e.refused_evidence
    );
}

#[test]
fn evidence_says_whether_it_was_pulled_or_pushed_and_who_pushed_it() {
    let mut s = scenario("allow");
    s.gate.evidence = vec![pushed(
        "ingest",
        "2026-05-17T06:29:00Z",
        "scan_critical",
        json!(0),
    )];
    s.gate.applied_by = Some(AppliedBy {
        release: None,
        evidence: Some("system:serviceaccount:payments:ci".into()),
        configuration: None,
    });
    let e = run(&s);
    let ingest = e
        .passport
        .evidence
        .iter()
        .find(|d| d.connector == "ingest" && d.fact_count == 1)
        .unwrap();
    assert_eq!(ingest.provenance, Some(Provenance::Pushed));
    assert_eq!(
        ingest.pushed_by.as_deref(),
        Some("system:serviceaccount:payments:ci")
    );
    let prom = e
        .passport
        .evidence
        .iter()
        .find(|d| d.connector == "prometheus")
        .unwrap();
    assert_eq!(prom.provenance, Some(Provenance::Pulled));
    assert_eq!(prom.pushed_by, None);
    let rate = e
        .passport
        .policy_results
        .iter()
        .find(|r| r.id == "error-rate")
        .unwrap();
    assert_eq!(rate.provenance, Some(Provenance::Pulled));
}

#[test]
fn a_rule_may_require_pulled_evidence() {
    let mut s = scenario("allow");
    // The incident count arrives only as pushed evidence.
    let incidents = s
        .evidence
        .iter()
        .position(|d| d.connector == "ingest")
        .unwrap();
    let doc = s.evidence.remove(incidents);
    s.gate.evidence = vec![doc];
    assert_eq!(run(&s).decision(), Decision::Allow);
    let rule = s
        .policy
        .rules
        .iter_mut()
        .find(|r| r.id == "no-active-sev1")
        .unwrap();
    rule.provenance = Some(Provenance::Pulled);
    let e = run(&s);
    assert_eq!(state_of(&e, "no-active-sev1"), ResultState::Missing);
    let result = e
        .passport
        .policy_results
        .iter()
        .find(|r| r.id == "no-active-sev1")
        .unwrap();
    assert!(
        result
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("requires pulled evidence"),
        "{:?}",
        result.reason
    );
}

#[test]
fn a_platform_minimum_evaluates_a_shadow_gate_as_enforce_and_the_passport_says_so() {
    let mut s = scenario("payment-api-hold");
    assert_eq!(s.gate.mode, Mode::Shadow);
    let compiled = engine::compile(&s.policy).unwrap();
    let evaluate = |s: &Scenario, minimum: Option<&str>| {
        engine::evaluate(&EvaluationInput {
            context: GateContext {
                enforce_minimum: minimum,
                ..Default::default()
            },
            policy_name: "payment-api-production",
            policy: &compiled,
            gate: &s.gate,
            gate_ref: None,
            evidence: &s.evidence,
            now: now(),
            actor: "test",
            stage: Stage::PreDeploy,
        })
        .unwrap()
    };
    let e = evaluate(&s, Some("namespace payments requires enforce mode"));
    assert_eq!(e.passport.mode, Mode::Enforce);
    assert_eq!(e.passport.requested_mode, Some(Mode::Shadow));
    assert_eq!(
        e.passport.enforced_by.as_deref(),
        Some("namespace payments requires enforce mode")
    );
    assert!(e.passport.trace.iter().any(|t| t.step == "mode"));
    // The Policy can make it the minimum too.
    s.policy.minimum_mode = Some(Mode::Enforce);
    let compiled = engine::compile(&s.policy).unwrap();
    let e = engine::evaluate(&EvaluationInput {
        context: Default::default(),
        policy_name: "payment-api-production",
        policy: &compiled,
        gate: &s.gate,
        gate_ref: None,
        evidence: &s.evidence,
        now: now(),
        actor: "test",
        stage: Stage::PreDeploy,
    })
    .unwrap();
    assert_eq!(e.passport.mode, Mode::Enforce);
    assert!(e.passport.enforced_by.unwrap().contains("minimumMode"));
}

#[test]
fn a_standing_rollback_recommendation_keeps_the_decision_and_rollback_readiness_says_if_proven() {
    let s = scenario("allow");
    let digest = digest(&s);
    let rollback_digest = s
        .gate
        .rollback
        .as_ref()
        .unwrap()
        .image
        .as_deref()
        .unwrap()
        .rsplit_once('@')
        .unwrap()
        .1
        .to_string();
    let standing = RollbackRecommendation {
        release: s.gate.release.clone(),
        digest: digest.clone(),
        since: "2026-05-17T06:10:00Z".parse().unwrap(),
        passport: "payment-api-production-1".into(),
        failing_checks: vec!["post-deploy-error-rate".into()],
    };
    let proven = vec![ProvenRelease {
        release: "v2.17.9".into(),
        image: format!("registry.example.com/payment-api@{rollback_digest}"),
        digest: rollback_digest,
        passport: "payment-api-production-0".into(),
        allowed_at: "2026-05-10T06:00:00Z".parse().unwrap(),
        proven_at: Some("2026-05-10T06:05:00Z".parse().unwrap()),
        last_seen_at: Some("2026-05-17T06:00:00Z".parse().unwrap()),
        rollback_until: None,
    }];
    let compiled = engine::compile(&s.policy).unwrap();
    let e = engine::evaluate(&EvaluationInput {
        context: GateContext {
            rollback_recommended: Some(&standing),
            proven_releases: Some(&proven),
            ..Default::default()
        },
        policy_name: "payment-api-production",
        policy: &compiled,
        gate: &s.gate,
        gate_ref: None,
        evidence: &s.evidence,
        now: now(),
        actor: "test",
        stage: Stage::PreDeploy,
    })
    .unwrap();
    assert_eq!(e.decision(), Decision::RollbackRecommended);
    assert_eq!(e.failing_checks, ["post-deploy-error-rate"]);
    assert!(
        e.passport.next_actions[0].starts_with("Roll payment-api back to a proven release"),
        "{:?}",
        e.passport.next_actions
    );
    assert_eq!(e.passport.rollback.as_ref().unwrap().proven, Some(true));
    // Offline (nothing known about proven releases) it stays unknown.
    assert_eq!(run(&s).passport.rollback.unwrap().proven, None);
}
