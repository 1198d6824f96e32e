//! What a gate proved, and a rollback recommendation that stays (pure).
//!
//! A release is **allowed** when its artifact held an ALLOW (or
//! ALLOW_WITH_CANARY) Passport of the gate, and **proven** once the gate's
//! target was then seen running it (pulled `kubernetes` evidence). Only
//! proven digests are rollback targets: the admission webhook and the
//! apiserver's admission policy admit a change back to one under any
//! decision, and nothing else.
//!
//! A ROLLBACK_RECOMMENDED for a digest stays on record until the target runs
//! a proven release again (a **restore**) or the gate moves to another
//! digest; the recommended digest is never proven.

use jiff::{SignedDuration, Timestamp};

use crate::api::{
    Decision, EvidenceDocument, PROVEN_RELEASES_LIMIT, ProvenRelease, RollbackRecommendation,
};
use crate::webhook::decide::image_digest;

/// The digests the target runs, from pulled `kubernetes` evidence (its
/// `images` fact); `None` when no such evidence was read.
pub fn running_digests(pulled: &[EvidenceDocument]) -> Option<Vec<String>> {
    let mut found = None;
    for doc in pulled.iter().filter(|d| d.connector == "kubernetes") {
        let images = doc
            .facts
            .iter()
            .filter(|f| f.name == "images")
            .filter_map(|f| f.value.as_ref()?.as_str());
        let list: &mut Vec<String> = found.get_or_insert_with(Vec::new);
        for image in images.flat_map(|s| s.split(',')) {
            if let Some(d) = image_digest(image.trim())
                && !list.iter().any(|x| x == d)
            {
                list.push(d.to_string());
            }
        }
    }
    found
}

/// The gate's current release, as the record sees it.
pub struct Current<'a> {
    pub release: &'a str,
    pub image: &'a str,
    pub digest: &'a str,
}

/// One evaluation, as the record sees it.
pub struct Evaluated<'a> {
    pub decision: Decision,
    pub passport: &'a str,
    pub failing_checks: &'a [String],
}

/// The record kept in the gate's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub allowed: Vec<ProvenRelease>,
    pub proven: Vec<ProvenRelease>,
    pub rollback_recommended: Option<RollbackRecommendation>,
}

/// Before evaluating: the recommendation that still holds for the current
/// digest (for the engine), and the sentence of a restore when the target
/// runs a proven release again.
pub fn standing_recommendation(
    old: Option<&RollbackRecommendation>,
    current: &Current<'_>,
    running: Option<&[String]>,
    proven: &[ProvenRelease],
) -> (Option<RollbackRecommendation>, Option<String>) {
    let Some(r) = old.filter(|r| r.digest == current.digest) else {
        return (None, None);
    };
    let running = running.unwrap_or_default();
    let restored_to = running
        .iter()
        .filter(|d| **d != r.digest)
        .find_map(|d| proven.iter().find(|p| &p.digest == d));
    match restored_to {
        Some(p) if !running.contains(&r.digest) => (
            None,
            Some(format!(
                "The target runs proven release {} ({}) again: ROLLBACK_RECOMMENDED for {} (since {}) is over",
                p.release, p.digest, r.release, r.since
            )),
        ),
        _ => (Some(r.clone()), None),
    }
}

/// After evaluating: the new record. `standing` is what
/// [`standing_recommendation`] returned for this evaluation.
pub fn update(
    old: &Record,
    standing: Option<&RollbackRecommendation>,
    current: &Current<'_>,
    evaluated: &Evaluated<'_>,
    running: Option<&[String]>,
    window_seconds: Option<i64>,
    now: Timestamp,
) -> Record {
    let rollback_recommended = match standing {
        Some(r) => Some(r.clone()),
        None if evaluated.decision == Decision::RollbackRecommended => {
            Some(RollbackRecommendation {
                release: current.release.to_string(),
                digest: current.digest.to_string(),
                since: now,
                passport: evaluated.passport.to_string(),
                failing_checks: evaluated.failing_checks.to_vec(),
            })
        }
        None => None,
    };
    let recommended = rollback_recommended.as_ref().map(|r| r.digest.as_str());
    let mut allowed: Vec<ProvenRelease> = old
        .allowed
        .iter()
        .filter(|a| Some(a.digest.as_str()) != recommended)
        .cloned()
        .collect();
    let mut proven: Vec<ProvenRelease> = old
        .proven
        .iter()
        .filter(|p| Some(p.digest.as_str()) != recommended)
        .cloned()
        .collect();

    if evaluated.decision.allows_promotion()
        && recommended != Some(current.digest)
        && !allowed.iter().any(|a| a.digest == current.digest)
        && !proven.iter().any(|p| p.digest == current.digest)
    {
        allowed.insert(
            0,
            ProvenRelease {
                release: current.release.to_string(),
                image: current.image.to_string(),
                digest: current.digest.to_string(),
                passport: evaluated.passport.to_string(),
                allowed_at: now,
                proven_at: None,
                last_seen_at: None,
                rollback_until: None,
            },
        );
    }
    for digest in running.unwrap_or_default() {
        if let Some(p) = proven.iter_mut().find(|p| &p.digest == digest) {
            p.last_seen_at = Some(now);
        } else if let Some(i) = allowed.iter().position(|a| &a.digest == digest) {
            let mut p = allowed.remove(i);
            p.proven_at = Some(now);
            p.last_seen_at = Some(now);
            proven.push(p);
        }
    }
    for p in &mut proven {
        p.rollback_until = window_seconds.and_then(|w| {
            p.last_seen_at
                .or(p.proven_at)
                .and_then(|t| t.checked_add(SignedDuration::from_secs(w)).ok())
        });
    }
    proven.retain(|p| p.rollback_until.is_none_or(|until| until > now));
    proven.sort_by(|a, b| {
        let key = |p: &ProvenRelease| p.last_seen_at.or(p.proven_at).unwrap_or(p.allowed_at);
        key(b).cmp(&key(a))
    });
    proven.truncate(PROVEN_RELEASES_LIMIT);
    allowed.truncate(PROVEN_RELEASES_LIMIT);
    Record {
        allowed,
        proven,
        rollback_recommended,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn ts(minutes: i64) -> Timestamp {
        "2026-05-17T06:00:00Z"
            .parse::<Timestamp>()
            .expect("ts")
            .checked_add(SignedDuration::from_mins(minutes))
            .expect("ts")
    }

    fn current(release: &'static str, digest: &'static str) -> Current<'static> {
        Current {
            release,
            image: "registry.example.com/x@sha256:...",
            digest,
        }
    }

    fn evaluated(decision: Decision) -> Evaluated<'static> {
        Evaluated {
            decision,
            passport: "gate-1",
            failing_checks: &[],
        }
    }

    #[test]
    fn a_release_is_proven_once_it_held_allow_and_ran() {
        let allowed = update(
            &Record::default(),
            None,
            &current("v1", A),
            &evaluated(Decision::Allow),
            Some(&[]),
            Some(3600),
            ts(0),
        );
        assert_eq!(allowed.allowed.len(), 1);
        assert!(allowed.proven.is_empty());
        let running = vec![A.to_string()];
        let proven = update(
            &allowed,
            None,
            &current("v1", A),
            &evaluated(Decision::Allow),
            Some(&running),
            Some(3600),
            ts(5),
        );
        assert!(proven.allowed.is_empty());
        assert_eq!(proven.proven[0].digest, A);
        assert_eq!(proven.proven[0].rollback_until, Some(ts(65)));
        // Past its window after it last ran, it is no longer a target.
        let later = update(
            &proven,
            None,
            &current("v2", B),
            &evaluated(Decision::Hold),
            Some(&[]),
            Some(3600),
            ts(70),
        );
        assert!(later.proven.is_empty());
    }

    #[test]
    fn a_digest_that_never_held_allow_is_not_proven_even_when_it_runs() {
        let running = vec![B.to_string()];
        let r = update(
            &Record::default(),
            None,
            &current("v2", B),
            &evaluated(Decision::Hold),
            Some(&running),
            None,
            ts(0),
        );
        assert_eq!(r, Record::default());
    }

    #[test]
    fn rollback_recommended_stays_until_a_proven_release_runs_again() {
        let proven = vec![ProvenRelease {
            release: "v1".into(),
            image: "x".into(),
            digest: A.into(),
            passport: "gate-0".into(),
            allowed_at: ts(0),
            proven_at: Some(ts(1)),
            last_seen_at: Some(ts(1)),
            rollback_until: None,
        }];
        let old = Record {
            allowed: vec![],
            proven: proven.clone(),
            rollback_recommended: Some(RollbackRecommendation {
                release: "v2".into(),
                digest: B.into(),
                since: ts(10),
                passport: "gate-2".into(),
                failing_checks: vec!["post-deploy-error-rate".into()],
            }),
        };
        let running_b = vec![B.to_string()];
        let (standing, restored) = standing_recommendation(
            old.rollback_recommended.as_ref(),
            &current("v2", B),
            Some(&running_b),
            &proven,
        );
        assert!(standing.is_some() && restored.is_none());
        // The recommended digest is never proven, even though it ran with ALLOW before.
        let kept = update(
            &old,
            standing.as_ref(),
            &current("v2", B),
            &evaluated(Decision::RollbackRecommended),
            Some(&running_b),
            None,
            ts(30),
        );
        assert_eq!(kept.rollback_recommended, old.rollback_recommended);
        assert!(kept.proven.iter().all(|p| p.digest != B));
        let running_a = vec![A.to_string()];
        let (standing, restored) = standing_recommendation(
            kept.rollback_recommended.as_ref(),
            &current("v2", B),
            Some(&running_a),
            &kept.proven,
        );
        assert!(standing.is_none());
        assert!(
            restored
                .unwrap_or_default()
                .contains("runs proven release v1")
        );
        // A new release ends it too, without a restore.
        let (standing, restored) = standing_recommendation(
            kept.rollback_recommended.as_ref(),
            &current("v3", "sha256:cc"),
            Some(&running_b),
            &kept.proven,
        );
        assert!(standing.is_none() && restored.is_none());
    }
}
