//! Release metrics (DORA-style) from gates and their passports.
//!
//! Definitions (docs/metrics.md explains them with examples):
//! - **promotion**: one image digest reaching one (namespace, service,
//!   environment). Its time is the earliest of the `generatedAt` of the
//!   first passport that allowed the digest (ALLOW or ALLOW_WITH_CANARY) and
//!   the gate's `status.deployedAt` when the gate saw the target running
//!   that digest (`status.deployedImage`; a shadow gate may see a deploy
//!   before any ALLOW). Counted in the window by that time.
//! - **lead time for changes**: `spec.artifact.commitTimestamp` of the gate
//!   whose artifact is that digest → the promotion time.
//! - **change failure**: a promotion followed by a ROLLBACK_RECOMMENDED
//!   passport for the same digest.
//! - **rollback recommended**: episodes of consecutive ROLLBACK_RECOMMENDED
//!   passports of a gate, counted by their first passport.
//! - **time to restore**: first ROLLBACK_RECOMMENDED passport of an episode →
//!   the gate's next passport that allows promotion (fixed forward or rolled
//!   back); episodes without one are `openIncidents`.
//! - **approval wait**: first REQUIRE_APPROVAL passport for a digest → the
//!   first later passport for that digest with more approvals that allows
//!   promotion.
//! - **hold reasons**: failing rules (fail; stale or missing when required)
//!   of the passports that did not allow promotion, by rule id.
//! - **evidence completeness**: mean passport confidence; share of evidence
//!   summaries that were fresh.
//! - **connector reliability**: per connector, fresh evidence / (fresh +
//!   stale evidence + passports where a required rule reading it had no
//!   evidence).
//!
//! Passports count in the window by `generatedAt`.
//!
//! Each summary also carries a **timeline**: the window cut into periods
//! (days for windows up to 14 days, else weeks), with the promotions, the
//! failed promotions and the held passports of each: what the console's
//! scorecard charts draw. [`scorecards_csv`] writes the same numbers as CSV.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::api::{Decision, Passport, ReleaseGate, ResultState};

use super::{failing, gate_key, image_digest, passport_gate_key};

/// Median and 90th percentile of durations, in seconds.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DurationStats {
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90_seconds: Option<f64>,
}

impl DurationStats {
    fn from_seconds(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        Self {
            count: v.len() as u64,
            p50_seconds: percentile(&v, 0.5),
            p90_seconds: percentile(&v, 0.9),
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank - 1).copied()
}

/// A rule that kept releases from promotion.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HoldReason {
    pub rule: String,
    pub label: String,
    pub count: u64,
}

/// Evidence completeness.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceCompleteness {
    /// Passports in the window.
    pub passports: u64,
    /// Mean confidence of those passports, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_confidence: Option<f64>,
    /// Evidence summaries in those passports.
    pub evidence: u64,
    /// Of which fresh.
    pub fresh: u64,
    /// fresh / evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fresh_ratio: Option<f64>,
}

/// How reliably one connector delivered fresh evidence.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorReliability {
    pub connector: String,
    pub fresh: u64,
    pub stale: u64,
    /// Passports in which a required rule reading this connector found no evidence.
    pub missing: u64,
    /// fresh / (fresh + stale + missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reliability: Option<f64>,
}

/// The metrics of one group (or of everything).
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSummary {
    /// Promotions in the window.
    pub deployments: u64,
    /// Promotions per day of the window.
    pub deployments_per_day: f64,
    /// Commit → promotion.
    pub lead_time: DurationStats,
    /// Promotions followed by ROLLBACK_RECOMMENDED.
    pub failed_deployments: u64,
    /// failedDeployments / deployments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_failure_rate: Option<f64>,
    /// ROLLBACK_RECOMMENDED episodes started in the window.
    pub rollback_recommended: u64,
    /// ROLLBACK_RECOMMENDED → next allowing passport.
    pub time_to_restore: DurationStats,
    /// ROLLBACK_RECOMMENDED episodes not restored yet.
    pub open_incidents: u64,
    /// First REQUIRE_APPROVAL → approved.
    pub approval_wait: DurationStats,
    /// Failing rules of passports that did not allow promotion, most frequent first.
    pub hold_reasons: Vec<HoldReason>,
    /// Passports in the window by decision.
    pub decisions: BTreeMap<Decision, u64>,
    pub evidence: EvidenceCompleteness,
    /// By connector name.
    pub connectors: Vec<ConnectorReliability>,
    /// The window in periods, oldest first.
    pub timeline: Vec<Period>,
}

/// One period of the window.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    /// Start of the period (exclusive, like the window's).
    pub start: Timestamp,
    /// Length of the period in seconds.
    pub seconds: i64,
    /// Promotions in the period.
    pub deployments: u64,
    /// Of which later followed by ROLLBACK_RECOMMENDED.
    pub failed_deployments: u64,
    /// Passports of the period that did not allow promotion.
    pub held: u64,
}

/// The window and how it is cut into periods.
#[derive(Clone, Copy)]
struct Window {
    since: Timestamp,
    length: SignedDuration,
    period: SignedDuration,
}

impl Window {
    fn new(now: Timestamp, length: SignedDuration) -> Self {
        let period = if length <= SignedDuration::from_hours(24 * 14) {
            SignedDuration::from_hours(24)
        } else {
            SignedDuration::from_hours(24 * 7)
        };
        Window {
            since: now - length,
            length,
            period,
        }
    }

    fn periods(&self) -> usize {
        let (len, p) = (self.length.as_secs(), self.period.as_secs().max(1));
        (len.max(0) as usize).div_ceil(p as usize).max(1)
    }

    /// The period `t` (inside the window) falls in.
    fn index(&self, t: Timestamp) -> usize {
        let offset = t.duration_since(self.since).as_secs().max(1) - 1;
        ((offset / self.period.as_secs().max(1)) as usize).min(self.periods() - 1)
    }
}

/// The metrics of one (namespace, service, environment).
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GroupMetrics {
    pub namespace: String,
    pub service: String,
    pub environment: String,
    #[serde(flatten)]
    pub metrics: MetricsSummary,
}

/// Release metrics over a window.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseMetrics {
    pub now: Timestamp,
    pub window_seconds: i64,
    pub total: MetricsSummary,
    /// Sorted by namespace, service, environment.
    pub groups: Vec<GroupMetrics>,
}

/// (namespace, service, environment), borrowed from the objects.
type Group<'a> = (&'a str, &'a str, &'a str);

/// Everything measured, before aggregation. Keys borrow from the gates and
/// passports: nothing is copied until the summary.
#[derive(Default)]
struct Raw<'a> {
    deployments: u64,
    lead: Vec<f64>,
    failed: u64,
    rollbacks: u64,
    restore: Vec<f64>,
    open: u64,
    approval: Vec<f64>,
    holds: HashMap<&'a str, (&'a str, u64)>,
    decisions: BTreeMap<Decision, u64>,
    passports: u64,
    confidence_sum: u64,
    evidence: u64,
    fresh: u64,
    connectors: BTreeMap<&'a str, [u64; 3]>,
    /// By period index: promotions, failed promotions, held passports.
    timeline: BTreeMap<usize, [u64; 3]>,
}

impl<'a> Raw<'a> {
    fn absorb(&mut self, o: &Raw<'a>) {
        self.deployments += o.deployments;
        self.lead.extend_from_slice(&o.lead);
        self.failed += o.failed;
        self.rollbacks += o.rollbacks;
        self.restore.extend_from_slice(&o.restore);
        self.open += o.open;
        self.approval.extend_from_slice(&o.approval);
        for (rule, (label, n)) in &o.holds {
            let e = self.holds.entry(rule).or_insert((label, 0));
            e.0 = label;
            e.1 += n;
        }
        for (d, n) in &o.decisions {
            *self.decisions.entry(*d).or_default() += n;
        }
        self.passports += o.passports;
        self.confidence_sum += o.confidence_sum;
        self.evidence += o.evidence;
        self.fresh += o.fresh;
        for (c, v) in &o.connectors {
            let e = self.connectors.entry(c).or_default();
            for i in 0..3 {
                e[i] += v[i];
            }
        }
        for (p, v) in &o.timeline {
            let e = self.timeline.entry(*p).or_default();
            for i in 0..3 {
                e[i] += v[i];
            }
        }
    }

    fn summary(self, window: Window) -> MetricsSummary {
        let days = window.length.as_secs_f64() / 86_400.0;
        let timeline = (0..window.periods())
            .map(|i| {
                let [deployments, failed_deployments, held] =
                    self.timeline.get(&i).copied().unwrap_or_default();
                Period {
                    start: window.since + window.period * i as i32,
                    seconds: window.period.as_secs(),
                    deployments,
                    failed_deployments,
                    held,
                }
            })
            .collect();
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let mut holds: Vec<HoldReason> = self
            .holds
            .into_iter()
            .map(|(rule, (label, count))| HoldReason {
                rule: rule.to_string(),
                label: label.to_string(),
                count,
            })
            .collect();
        holds.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.rule.cmp(&b.rule)));
        MetricsSummary {
            deployments: self.deployments,
            deployments_per_day: if days > 0.0 {
                self.deployments as f64 / days
            } else {
                0.0
            },
            lead_time: DurationStats::from_seconds(self.lead),
            failed_deployments: self.failed,
            change_failure_rate: ratio(self.failed, self.deployments),
            rollback_recommended: self.rollbacks,
            time_to_restore: DurationStats::from_seconds(self.restore),
            open_incidents: self.open,
            approval_wait: DurationStats::from_seconds(self.approval),
            hold_reasons: holds,
            decisions: self.decisions,
            evidence: EvidenceCompleteness {
                passports: self.passports,
                mean_confidence: ratio(self.confidence_sum, self.passports),
                evidence: self.evidence,
                fresh: self.fresh,
                fresh_ratio: ratio(self.fresh, self.evidence),
            },
            connectors: self
                .connectors
                .into_iter()
                .map(
                    |(connector, [fresh, stale, missing])| ConnectorReliability {
                        connector: connector.to_string(),
                        fresh,
                        stale,
                        missing,
                        reliability: ratio(fresh, fresh + stale + missing),
                    },
                )
                .collect(),
            timeline,
        }
    }
}

/// Release metrics per (namespace, service, environment) and in total, for
/// the window `(now - window, now]`. See the module documentation for the
/// definitions.
pub fn release_metrics(
    gates: &[&ReleaseGate],
    passports: &[&Passport],
    now: Timestamp,
    window: SignedDuration,
) -> ReleaseMetrics {
    let win = Window::new(now, window);
    let since = win.since;
    let in_window = |t: Timestamp| t > since && t <= now;
    let gates_by_key: HashMap<(&str, &str), &ReleaseGate> =
        gates.iter().map(|g| (gate_key(g), *g)).collect();

    // Passports per gate, oldest first. What happened after `now` is not
    // known yet.
    let mut per_gate: HashMap<(&str, Cow<'_, str>), Vec<&Passport>> = HashMap::new();
    for p in passports.iter().filter(|p| p.spec.generated_at <= now) {
        per_gate.entry(passport_gate_key(p)).or_default().push(p);
    }
    let mut raw: BTreeMap<Group<'_>, Raw<'_>> = BTreeMap::new();
    // Promotions: (group, digest) → (time, commit timestamp).
    let mut promotions: HashMap<(Group<'_>, &str), (Timestamp, Option<Timestamp>)> = HashMap::new();
    // Rollback-recommended passports: (group, digest) → times.
    let mut rollbacks: HashMap<(Group<'_>, &str), Vec<Timestamp>> = HashMap::new();

    for (key, list) in &mut per_gate {
        list.sort_by_key(|p| p.spec.generated_at);
        let gate = gates_by_key.get(&(key.0, key.1.as_ref())).copied();
        let ns = key.0;
        let gate_commit = gate.and_then(|g| {
            Some((
                image_digest(&g.spec.artifact.image)?,
                g.spec.artifact.commit_timestamp?,
            ))
        });
        for p in list.iter() {
            let s = &p.spec;
            let group = (ns, s.service.as_str(), s.environment.as_str());
            let digest = s.artifact.digest.as_str();
            if s.decision == Decision::RollbackRecommended {
                rollbacks
                    .entry((group, digest))
                    .or_default()
                    .push(s.generated_at);
            }
            if s.decision.allows_promotion() {
                let commit = gate_commit.filter(|(d, _)| *d == digest).map(|(_, c)| c);
                promotions
                    .entry((group, digest))
                    .and_modify(|e| e.0 = e.0.min(s.generated_at))
                    .or_insert((s.generated_at, commit));
            }
            let r = raw.entry(group).or_default();
            if !in_window(s.generated_at) {
                continue;
            }
            r.passports += 1;
            r.confidence_sum += u64::from(s.confidence);
            *r.decisions.entry(s.decision).or_default() += 1;
            for e in &s.evidence {
                r.evidence += 1;
                let c = r.connectors.entry(e.connector.as_str()).or_default();
                if e.status == "fresh" {
                    r.fresh += 1;
                    c[0] += 1;
                } else {
                    c[1] += 1;
                }
            }
            let mut missing: Vec<&str> = s
                .policy_results
                .iter()
                .filter(|x| x.state == ResultState::Missing && x.required)
                .filter_map(|x| x.source.as_deref()?.split_once('/').map(|(c, _)| c))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            for c in missing {
                r.connectors.entry(c).or_default()[2] += 1;
            }
            if !s.decision.allows_promotion() {
                r.timeline.entry(win.index(s.generated_at)).or_default()[2] += 1;
                for x in s.policy_results.iter().filter(|x| failing(x)) {
                    let e = r.holds.entry(x.id.as_str()).or_insert((&x.label, 0));
                    e.0 = &x.label;
                    e.1 += 1;
                }
            }
        }

        // Episodes along the gate's timeline.
        let mut rollback_start: Option<(Timestamp, Group<'_>)> = None;
        let mut approval_start: Option<(Timestamp, &str, usize)> = None;
        for p in list.iter() {
            let s = &p.spec;
            let group = (ns, s.service.as_str(), s.environment.as_str());
            match (&rollback_start, s.decision) {
                (None, Decision::RollbackRecommended) => {
                    rollback_start = Some((s.generated_at, group));
                    if in_window(s.generated_at) {
                        raw.entry(group).or_default().rollbacks += 1;
                    }
                }
                (Some((start, g)), d) if d.allows_promotion() => {
                    if in_window(*start) {
                        let secs = s.generated_at.duration_since(*start).as_secs_f64();
                        raw.entry(*g).or_default().restore.push(secs);
                    }
                    rollback_start = None;
                }
                _ => {}
            }
            if approval_start.is_some_and(|(_, digest, _)| digest != s.artifact.digest) {
                approval_start = None;
            }
            match (&approval_start, s.decision) {
                (None, Decision::RequireApproval) => {
                    approval_start = Some((
                        s.generated_at,
                        s.artifact.digest.as_str(),
                        s.approvals.len(),
                    ));
                }
                (Some((start, _, before)), d)
                    if d.allows_promotion() && s.approvals.len() > *before =>
                {
                    if in_window(*start) {
                        let secs = s.generated_at.duration_since(*start).as_secs_f64();
                        raw.entry(group).or_default().approval.push(secs);
                    }
                    approval_start = None;
                }
                _ => {}
            }
        }
        if let Some((start, g)) = rollback_start
            && in_window(start)
        {
            raw.entry(g).or_default().open += 1;
        }

        // The deploy the gate saw promotes that digest, if nothing allowed it earlier.
        if let Some(g) = gate
            && let Some(status) = &g.status
            && let (Some(at), Some(image)) = (status.deployed_at, status.deployed_image.as_deref())
            && let Some(digest) = image_digest(image)
        {
            let group = (ns, g.spec.service.as_str(), g.spec.environment.as_str());
            let commit = gate_commit.filter(|(d, _)| *d == digest).map(|(_, c)| c);
            let e = promotions.entry((group, digest)).or_insert((at, commit));
            e.0 = e.0.min(at);
            e.1 = e.1.or(commit);
        }
    }

    for ((group, digest), (at, commit)) in &promotions {
        if !in_window(*at) {
            continue;
        }
        let r = raw.entry(*group).or_default();
        r.deployments += 1;
        let period = win.index(*at);
        r.timeline.entry(period).or_default()[0] += 1;
        if let Some(c) = commit {
            let lead = at.duration_since(*c);
            if !lead.is_negative() {
                r.lead.push(lead.as_secs_f64());
            }
        }
        if rollbacks
            .get(&(*group, *digest))
            .is_some_and(|times| times.iter().any(|t| t >= at))
        {
            r.failed += 1;
            r.timeline.entry(period).or_default()[1] += 1;
        }
    }

    let mut total = Raw::default();
    let groups = raw
        .into_iter()
        .map(|((namespace, service, environment), r)| {
            total.absorb(&r);
            GroupMetrics {
                namespace: namespace.to_string(),
                service: service.to_string(),
                environment: environment.to_string(),
                metrics: r.summary(win),
            }
        })
        .collect();
    ReleaseMetrics {
        now,
        window_seconds: window.as_secs(),
        total: total.summary(win),
        groups,
    }
}

/// The columns of [`scorecards_csv`].
pub const SCORECARD_COLUMNS: &[&str] = &[
    "namespace",
    "service",
    "environment",
    "deployments",
    "deployments_per_day",
    "lead_time_p50_seconds",
    "lead_time_p90_seconds",
    "failed_deployments",
    "change_failure_rate",
    "rollback_recommended",
    "time_to_restore_p50_seconds",
    "time_to_restore_p90_seconds",
    "open_incidents",
    "approval_wait_p50_seconds",
    "approval_wait_p90_seconds",
    "passports",
    "mean_confidence",
    "evidence_fresh_ratio",
    "hold_reasons",
];

/// The service scorecards as CSV (RFC 4180): one row per (namespace,
/// service, environment), then a row `*,*,*` for everything. Numbers are
/// written exactly as computed (shortest text that reads back to the same
/// value); a missing value is an empty field; `hold_reasons` is
/// `rule:count` pairs separated by `;`, most frequent first.
pub fn scorecards_csv(m: &ReleaseMetrics) -> String {
    let mut out = SCORECARD_COLUMNS.join(",");
    out.push('\n');
    let all = GroupMetrics {
        namespace: "*".into(),
        service: "*".into(),
        environment: "*".into(),
        metrics: m.total.clone(),
    };
    for g in m.groups.iter().chain(std::iter::once(&all)) {
        let x = &g.metrics;
        let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let holds: Vec<String> = x
            .hold_reasons
            .iter()
            .map(|h| format!("{}:{}", h.rule, h.count))
            .collect();
        let fields = [
            g.namespace.clone(),
            g.service.clone(),
            g.environment.clone(),
            x.deployments.to_string(),
            x.deployments_per_day.to_string(),
            num(x.lead_time.p50_seconds),
            num(x.lead_time.p90_seconds),
            x.failed_deployments.to_string(),
            num(x.change_failure_rate),
            x.rollback_recommended.to_string(),
            num(x.time_to_restore.p50_seconds),
            num(x.time_to_restore.p90_seconds),
            x.open_incidents.to_string(),
            num(x.approval_wait.p50_seconds),
            num(x.approval_wait.p90_seconds),
            x.evidence.passports.to_string(),
            num(x.evidence.mean_confidence),
            num(x.evidence.fresh_ratio),
            holds.join(";"),
        ];
        let row: Vec<String> = fields.iter().map(|f| super::audit::csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}
