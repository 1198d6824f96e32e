//! Console page render time from the in-memory caches, for a namespace with
//! 1,000 passports (50 gates × 20 passports, the default history). Target:
//! each page ≤ 50 ms. Results: docs/benchmarks.md ("Console").

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use releasepassport::api::{Decision, Mode, Passport, Policy, ReleaseGate, ReleaseGateStatus};
use releasepassport::console::ConsoleState;
use releasepassport::console::views::{audit, gates, metrics, overview, passports, radar};
use releasepassport::passport::VerifyingKeySet;
use serde_json::json;

const NS: &str = "payments";
const GATES: usize = 50;
const PER_GATE: usize = 20;

fn load<T: serde::de::DeserializeOwned>(path: &str) -> T {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("example file");
    serde_saphyr::from_str(&text).expect("example YAML")
}

fn state() -> (ConsoleState, Timestamp) {
    let template: Passport = load("examples/passport.yaml");
    let mut policy: Policy = load("examples/policy.yaml");
    policy.metadata.namespace = Some(NS.into());
    let now = Timestamp::now();
    let decisions = [
        Decision::Hold,
        Decision::Allow,
        Decision::RequireApproval,
        Decision::Allow,
        Decision::RollbackRecommended,
        Decision::AllowWithCanary,
    ];
    let mut gate_objects = Vec::new();
    let mut passport_objects = Vec::new();
    for g in 0..GATES {
        let gate_name = format!("service-{g:02}-production");
        let mut gate: ReleaseGate = load("examples/releasegate.yaml");
        gate.metadata.name = Some(gate_name.clone());
        gate.metadata.namespace = Some(NS.into());
        gate.metadata.generation = Some(3);
        gate.spec.service = format!("service-{g:02}");
        gate.spec.mode = if g % 2 == 0 {
            Mode::Shadow
        } else {
            Mode::Enforce
        };
        let mut last = None;
        for i in 0..PER_GATE {
            let mut p = template.clone();
            let name = format!("{gate_name}-{i:010x}");
            p.metadata.name = Some(name.clone());
            p.metadata.namespace = Some(NS.into());
            p.spec.service = gate.spec.service.clone();
            p.spec.release = format!("v2.{g}.{i}");
            p.spec.decision = decisions[(g + i) % decisions.len()];
            p.spec.mode = gate.spec.mode;
            p.spec.generated_at =
                now - SignedDuration::from_mins((PER_GATE - i) as i64 * 97 + g as i64);
            p.spec.gate = Some(
                serde_json::from_value(json!({"namespace": NS, "name": gate_name}))
                    .expect("gate ref"),
            );
            last = Some((name, p.spec.decision));
            passport_objects.push(p);
        }
        let (name, decision) = last.expect("passports");
        gate.status = Some(ReleaseGateStatus {
            observed_generation: Some(3),
            decision: Some(decision),
            confidence: Some(90),
            passport_name: Some(name),
            evaluated_at: Some(now),
            failing_checks: vec!["error-rate".into(), "rollback-image".into()],
            next_actions: vec!["Attach rollback artifact.".into()],
            ..Default::default()
        });
        gate_objects.push(gate);
    }
    let state = ConsoleState::from_objects(
        gate_objects,
        passport_objects,
        vec![policy],
        Vec::new(),
        Vec::new(),
        VerifyingKeySet::new(),
    );
    (state, now)
}

fn bench(c: &mut Criterion) {
    let (state, now) = state();
    let visible: BTreeSet<String> = [NS.to_string()].into();
    let one = state.passports_in(&visible)[0].clone();
    let gate = state.gate(NS, "service-00-production").expect("gate");
    let gate_passports = state.passports_of(NS, "service-00-production");
    let policy = state.policy(NS, "payment-api-production");
    let mut group = c.benchmark_group("console render, 1,000 passports");
    group.bench_function("overview", |b| {
        b.iter(|| black_box(overview::render(&state, &visible).into_string().len()))
    });
    group.bench_function("releases list", |b| {
        let q = passports::ListQuery::default();
        b.iter(|| black_box(passports::list(&state, &visible, &q).into_string().len()))
    });
    group.bench_function("passport page", |b| {
        let sig = passports::SignatureStatus::Verified {
            key_id: "k".into(),
            subjects: vec![],
        };
        b.iter(|| black_box(passports::detail(&one, &sig, None).into_string().len()))
    });
    group.bench_function("gate page", |b| {
        b.iter(|| {
            let page = gates::GatePage {
                gate: &gate,
                policy: policy.as_deref(),
                passports: &gate_passports,
                csrf: "token",
                policy_text: "rules: []",
                result: gates::SimulatorResult::None,
                history: audit::gate_history(&gate),
                actions: maud::html! {},
            };
            black_box(gates::detail(&page).into_string().len())
        })
    });
    group.bench_function("radar", |b| {
        b.iter(|| black_box(radar::render(&state, &visible, now).into_string().len()))
    });
    group.bench_function("metrics and graduation", |b| {
        b.iter(|| {
            black_box(
                metrics::render(&state, &visible, now, 30)
                    .into_string()
                    .len(),
            )
        })
    });
    group.bench_function("audit log", |b| {
        b.iter(|| {
            let events = audit::collect(&state, &visible);
            black_box(audit::render(&events, None).into_string().len())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
