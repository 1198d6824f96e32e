//! Release metrics, the graduation report and the audit merge over 1,000
//! passports of 50 gates. Results: docs/benchmarks.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use releasepassport::api::{Passport, ReleaseGate};
use releasepassport::insights::{self, AuditEvent};
use serde_json::json;

const GATES: usize = 50;
const PER_GATE: usize = 20;
const DECISIONS: [&str; 6] = [
    "HOLD",
    "REQUIRE_APPROVAL",
    "ALLOW",
    "ALLOW",
    "ROLLBACK_RECOMMENDED",
    "ALLOW_WITH_CANARY",
];

fn digest(g: usize, i: usize) -> String {
    format!("sha256:{:064x}", g * 1000 + i / 3)
}

fn fixtures(now: Timestamp) -> (Vec<ReleaseGate>, Vec<Passport>) {
    let mut gates = Vec::new();
    let mut passports = Vec::new();
    for g in 0..GATES {
        let name = format!("svc-{g}-production");
        let last = format!("registry.example.com/svc-{g}@{}", digest(g, PER_GATE - 1));
        gates.push(
            serde_json::from_value(json!({
                "apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
                "metadata": {"name": name, "namespace": format!("team-{}", g % 5)},
                "spec": {"service": format!("svc-{g}"), "release": "v1", "environment": "production",
                         "mode": if g % 2 == 0 { "shadow" } else { "enforce" }, "policyRef": {"name": "p"},
                         "target": {"kind": "Deployment", "name": "w"},
                         "artifact": {"image": last, "commitTimestamp": (now - SignedDuration::from_hours(30)).to_string()}},
                "status": {"deployedAt": (now - SignedDuration::from_hours(2)).to_string(), "deployedImage": last}
            }))
            .expect("gate"),
        );
        for i in 0..PER_GATE {
            let at = now - SignedDuration::from_hours(((PER_GATE - i) * 6) as i64);
            let d = digest(g, i);
            let results: Vec<serde_json::Value> = (0..20)
                .map(|r| {
                    let state = if (r + i) % 7 == 0 {
                        "fail"
                    } else if (r + i) % 11 == 0 {
                        "missing"
                    } else {
                        "pass"
                    };
                    let connector = ["prometheus", "argocd", "kubernetes", "ingest"][r % 4];
                    json!({"id": format!("rule-{r}"), "label": format!("Rule {r}"), "state": state,
                           "onFail": "HOLD", "required": true, "source": format!("{connector}/fact-{r}")})
                })
                .collect();
            let evidence: Vec<serde_json::Value> = ["prometheus", "argocd", "kubernetes", "ingest"]
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    let status = if (i + k) % 5 == 0 { "stale" } else { "fresh" };
                    json!({"connector": c, "observedAt": at.to_string(), "status": status, "factCount": 5})
                })
                .collect();
            let approvals: Vec<serde_json::Value> = (0..(i % 3))
                .map(|a| json!({"actor": format!("a{a}")}))
                .collect();
            passports.push(
                serde_json::from_value(json!({
                    "apiVersion": "releasepassport.io/v1alpha1", "kind": "Passport",
                    "metadata": {"name": format!("{name}-{i:010}"), "namespace": format!("team-{}", g % 5)},
                    "spec": {
                        "passportVersion": "2026-05", "service": format!("svc-{g}"), "release": format!("v{}", i / 3),
                        "environment": "production", "mode": if g % 2 == 0 { "shadow" } else { "enforce" },
                        "decision": DECISIONS[i % DECISIONS.len()], "confidence": 80 + (i % 20),
                        "generatedAt": at.to_string(),
                        "gate": {"namespace": format!("team-{}", g % 5), "name": name},
                        "artifact": {"image": format!("registry.example.com/svc-{g}@{d}"), "digest": d},
                        "policy": {"name": "p", "hash": "h"}, "actor": "controller",
                        "policyResults": results,
                        "evidence": evidence,
                        "approvals": approvals,
                        "nextActions": ["Fix it."],
                        "signature": {"algorithm": "ed25519", "keyId": "k", "value": "v"}
                    }
                }))
                .expect("passport"),
            );
        }
    }
    (gates, passports)
}

fn bench(c: &mut Criterion) {
    let now: Timestamp = "2026-05-20T00:00:00Z".parse().expect("now");
    let (gates, passports) = fixtures(now);
    let g: Vec<&ReleaseGate> = gates.iter().collect();
    let p: Vec<&Passport> = passports.iter().collect();
    assert_eq!(p.len(), 1000);
    let events: Vec<AuditEvent> = (0..1000)
        .map(|i| AuditEvent {
            at: now - SignedDuration::from_mins(i),
            namespace: "team-1".into(),
            gate: Some(format!("svc-{}-production", i % 50)),
            kind: releasepassport::api::HistoryType::DecisionChanged,
            decision: None,
            previous_decision: None,
            passport: None,
            actor: None,
            message: format!("Decision HOLD → ALLOW, Passport p-{i}"),
        })
        .collect();

    let mut group = c.benchmark_group("insights");
    group.bench_function("release_metrics_1000_passports_50_gates", |b| {
        b.iter(|| {
            insights::release_metrics(
                black_box(&g),
                black_box(&p),
                now,
                SignedDuration::from_hours(24 * 30),
            )
        })
    });
    group.bench_function("graduation_1000_passports_50_gates", |b| {
        b.iter(|| insights::graduation(black_box(&g), black_box(&p)))
    });
    group.bench_function("merge_audit_1000_plus_1000", |b| {
        b.iter(|| insights::merge_audit(black_box(events.clone()), black_box(events.clone())))
    });
    group.bench_function("audit_csv_1000", |b| {
        b.iter(|| insights::audit_csv(black_box(&events)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(4))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
