//! Approvals and waivers: which of them count for a release (pure).
//!
//! Both are objects created by authenticated people (`ReleaseApproval`,
//! `ReleaseWaiver`); the apiserver has already checked that their author is
//! the user who created them and that this user holds the `approve` or
//! `waive` verb on the gate. What needs the Policy or the gate is judged
//! here, at each evaluation: an approval or waiver that fails a check simply
//! does not count, and the passport says why.

use jiff::{SignedDuration, Timestamp};

use crate::api::{ApprovalRecord, ReleaseApprovalSpec, ReleaseWaiverSpec, WaiverRecord};

use super::compile::GrantRules;

/// Prefix of the user name of every ServiceAccount.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// A ReleaseApproval of the gate, as the engine reads it.
#[derive(Clone, Copy, Debug)]
pub struct ApprovalInput<'a> {
    /// Name of the ReleaseApproval object.
    pub name: &'a str,
    pub spec: &'a ReleaseApprovalSpec,
    /// Its `metadata.creationTimestamp`: when it was approved.
    pub created_at: Option<Timestamp>,
}

/// A ReleaseWaiver of the gate, as the engine reads it.
#[derive(Clone, Copy, Debug)]
pub struct WaiverInput<'a> {
    /// Name of the ReleaseWaiver object.
    pub name: &'a str,
    pub spec: &'a ReleaseWaiverSpec,
    /// Its `metadata.creationTimestamp`: the start of its lifetime.
    pub created_at: Option<Timestamp>,
}

/// The release approvals and waivers are judged against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject<'a> {
    pub release: &'a str,
    pub digest: &'a str,
    /// The authenticated user who applied the release, when known.
    pub released_by: Option<&'a str>,
}

/// Machine-matchable reasons an approval or waiver does not count.
pub mod reason {
    pub const UNAUTHENTICATED: &str = "Unauthenticated";
    pub const OTHER_RELEASE: &str = "OtherRelease";
    pub const OTHER_DIGEST: &str = "OtherDigest";
    pub const SERVICE_ACCOUNT: &str = "ServiceAccount";
    pub const SELF_APPROVAL: &str = "SelfApproval";
    pub const SELF_WAIVER: &str = "SelfWaiver";
    pub const DUPLICATE_APPROVER: &str = "DuplicateApprover";
    pub const BEYOND_MAXIMUM_DURATION: &str = "BeyondMaximumDuration";
}

/// Whether a user name is a ServiceAccount's.
pub fn is_service_account(user: &str) -> bool {
    user.starts_with(SERVICE_ACCOUNT_PREFIX)
}

/// One approval, judged: the record for the passport and, when it does not
/// count, the sentence that says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JudgedApproval {
    pub record: ApprovalRecord,
    pub why_not: Option<String>,
}

/// Judges every approval of the gate, oldest first. N approvals need N
/// distinct people: a second approval by the same user does not count.
pub(crate) fn judge_approvals(
    approvals: &[ApprovalInput<'_>],
    subject: &Subject<'_>,
    rules: &GrantRules,
) -> Vec<JudgedApproval> {
    let mut ordered: Vec<&ApprovalInput<'_>> = approvals.iter().collect();
    ordered.sort_by(|a, b| (a.created_at, a.name).cmp(&(b.created_at, b.name)));
    let mut counted: Vec<(&str, &str)> = Vec::new();
    let mut judged = Vec::with_capacity(ordered.len());
    for a in ordered {
        let approver = a.spec.approver.as_str();
        let refusal: Option<(&str, String)> = if approver.is_empty() {
            Some((
                reason::UNAUTHENTICATED,
                "it has no authenticated approver".to_string(),
            ))
        } else if a.spec.release != subject.release {
            Some((
                reason::OTHER_RELEASE,
                format!(
                    "it approves release {}, the gate's release is {}",
                    a.spec.release, subject.release
                ),
            ))
        } else if a.spec.digest != subject.digest {
            Some((
                reason::OTHER_DIGEST,
                format!(
                    "it approves {}, the gate's artifact is {}",
                    a.spec.digest, subject.digest
                ),
            ))
        } else if is_service_account(approver) && !rules.allow_service_account_approvals {
            Some((
                reason::SERVICE_ACCOUNT,
                format!(
                    "{approver} is a ServiceAccount; approvals are for people unless the Policy sets approval.allowServiceAccounts"
                ),
            ))
        } else if subject.released_by == Some(approver) && !rules.allow_self_approval {
            Some((
                reason::SELF_APPROVAL,
                format!(
                    "{approver} applied release {} and cannot approve it; the Policy does not allow self-approval (approval.allowSelfApproval)",
                    subject.release
                ),
            ))
        } else if let Some((_, first)) = counted.iter().find(|(who, _)| *who == approver) {
            Some((
                reason::DUPLICATE_APPROVER,
                format!(
                    "{approver} already approved (ReleaseApproval {first}); {} approvals need {} distinct people",
                    rules.required_approvers, rules.required_approvers
                ),
            ))
        } else {
            None
        };
        if refusal.is_none() {
            counted.push((approver, a.name));
        }
        judged.push(JudgedApproval {
            record: ApprovalRecord {
                name: Some(a.name.to_string()),
                actor: approver.to_string(),
                reference: a.spec.reference.clone(),
                approved_at: a.created_at,
                counted: refusal.is_none(),
                reason: refusal.as_ref().map(|(code, _)| code.to_string()),
            },
            why_not: refusal.map(|(_, why)| why),
        });
    }
    judged
}

/// One waiver, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JudgedWaiver {
    pub record: WaiverRecord,
    /// Why it does not count, when it does not (refused, expired, unmatched).
    pub why_not: Option<String>,
}

impl JudgedWaiver {
    pub fn active(&self) -> bool {
        self.record.state == "active"
    }
}

/// Judges every waiver of the gate, oldest first. `known_rule` says whether
/// a rule id is a rule of this evaluation.
pub(crate) fn judge_waivers(
    waivers: &[WaiverInput<'_>],
    subject: &Subject<'_>,
    known_rule: impl Fn(&str) -> bool,
    rules: &GrantRules,
    now: Timestamp,
) -> Vec<JudgedWaiver> {
    let mut ordered: Vec<&WaiverInput<'_>> = waivers.iter().collect();
    ordered.sort_by(|a, b| (a.created_at, a.name).cmp(&(b.created_at, b.name)));
    let max = SignedDuration::from_secs(rules.waiver_max_seconds);
    ordered
        .into_iter()
        .map(|w| {
            let author = w.spec.author.as_str();
            let lifetime = w.created_at.map(|c| w.spec.expires_at.duration_since(c));
            let refusal: Option<(&str, String)> = if author.is_empty() {
                Some((
                    reason::UNAUTHENTICATED,
                    "it has no authenticated author".to_string(),
                ))
            } else if w.spec.digest != subject.digest {
                Some((
                    reason::OTHER_DIGEST,
                    format!(
                        "it waives {}, the gate's artifact is {}",
                        w.spec.digest, subject.digest
                    ),
                ))
            } else if is_service_account(author) && !rules.allow_service_account_waivers {
                Some((
                    reason::SERVICE_ACCOUNT,
                    format!(
                        "{author} is a ServiceAccount; waivers are for people unless the Policy sets waiver.allowServiceAccounts"
                    ),
                ))
            } else if subject.released_by == Some(author) && !rules.allow_self_waiver {
                Some((
                    reason::SELF_WAIVER,
                    format!(
                        "{author} applied release {} and cannot waive its rules; the Policy does not allow it (waiver.allowSelfWaiver)",
                        subject.release
                    ),
                ))
            } else if let Some(l) = lifetime.filter(|l| *l > max) {
                Some((
                    reason::BEYOND_MAXIMUM_DURATION,
                    format!(
                        "it would last {}s, longer than the Policy's waiver.maxDurationSeconds {}",
                        l.as_secs(),
                        rules.waiver_max_seconds
                    ),
                ))
            } else {
                None
            };
            let (state, why_not) = if !known_rule(&w.spec.rule_id) {
                (
                    "unmatched",
                    Some(format!(
                        "it names rule {}, which is not a rule of this evaluation",
                        w.spec.rule_id
                    )),
                )
            } else if let Some((_, why)) = &refusal {
                ("refused", Some(why.clone()))
            } else if w.spec.expires_at <= now {
                (
                    "expired",
                    Some(format!("it expired at {}", w.spec.expires_at)),
                )
            } else {
                ("active", None)
            };
            JudgedWaiver {
                record: WaiverRecord {
                    name: Some(w.name.to_string()),
                    rule_id: w.spec.rule_id.clone(),
                    reason: w.spec.reason.clone(),
                    actor: author.to_string(),
                    expires_at: w.spec.expires_at,
                    state: state.into(),
                    refusal: (state == "refused")
                        .then(|| refusal.map(|(code, _)| code.to_string()))
                        .flatten(),
                },
                why_not,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn rules() -> GrantRules {
        GrantRules {
            required_approvers: 2,
            allow_self_approval: false,
            allow_service_account_approvals: false,
            waiver_max_seconds: 3600,
            allow_self_waiver: false,
            allow_service_account_waivers: false,
        }
    }

    fn approval(approver: &str, digest: &str) -> ReleaseApprovalSpec {
        ReleaseApprovalSpec {
            gate: "g".into(),
            release: "v2".into(),
            digest: digest.into(),
            reference: None,
            comment: None,
            approver: approver.into(),
        }
    }

    fn subject() -> Subject<'static> {
        Subject {
            release: "v2",
            digest: A,
            released_by: Some("ci-bot"),
        }
    }

    fn reasons(judged: &[JudgedApproval]) -> Vec<Option<&str>> {
        judged.iter().map(|j| j.record.reason.as_deref()).collect()
    }

    #[test]
    fn an_approval_counts_only_for_its_release_and_digest() {
        let specs = [approval("alice", A), approval("bob", B), {
            let mut s = approval("carol", A);
            s.release = "v1".into();
            s
        }];
        let inputs: Vec<ApprovalInput<'_>> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| ApprovalInput {
                name: ["a", "b", "c"][i],
                spec,
                created_at: Some(ts("2026-05-17T06:00:00Z")),
            })
            .collect();
        let judged = judge_approvals(&inputs, &subject(), &rules());
        assert_eq!(
            reasons(&judged),
            vec![
                None,
                Some(reason::OTHER_DIGEST),
                Some(reason::OTHER_RELEASE)
            ]
        );
        assert!(judged[1].why_not.as_deref().unwrap_or("").contains(B));
    }

    #[test]
    fn the_releasing_user_service_accounts_and_repeated_approvers_do_not_count() {
        let specs = [
            approval("ci-bot", A),
            approval("system:serviceaccount:payments:deployer", A),
            approval("alice", A),
            approval("alice", A),
        ];
        let inputs: Vec<ApprovalInput<'_>> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| ApprovalInput {
                name: ["w", "x", "y", "z"][i],
                spec,
                created_at: Some(ts("2026-05-17T06:00:00Z") + SignedDuration::from_secs(i as i64)),
            })
            .collect();
        let judged = judge_approvals(&inputs, &subject(), &rules());
        assert_eq!(
            reasons(&judged),
            vec![
                Some(reason::SELF_APPROVAL),
                Some(reason::SERVICE_ACCOUNT),
                None,
                Some(reason::DUPLICATE_APPROVER)
            ]
        );
        let mut lenient = rules();
        lenient.allow_self_approval = true;
        lenient.allow_service_account_approvals = true;
        let judged = judge_approvals(&inputs, &subject(), &lenient);
        assert_eq!(
            reasons(&judged),
            vec![None, None, None, Some(reason::DUPLICATE_APPROVER)]
        );
    }

    #[test]
    fn waivers_are_bounded_by_the_policy_and_bound_to_the_digest() {
        let created = ts("2026-05-17T06:00:00Z");
        let waiver = |author: &str, digest: &str, hours: i64, rule: &str| ReleaseWaiverSpec {
            gate: "g".into(),
            rule_id: rule.into(),
            digest: digest.into(),
            reason: "known flake".into(),
            expires_at: created + SignedDuration::from_hours(hours),
            author: author.into(),
        };
        let specs = [
            waiver("alice", A, 1, "error-rate"),
            waiver("alice", A, 2, "error-rate"),
            waiver("alice", B, 1, "error-rate"),
            waiver("ci-bot", A, 1, "error-rate"),
            waiver("alice", A, 1, "no-such-rule"),
        ];
        let inputs: Vec<WaiverInput<'_>> = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| WaiverInput {
                name: ["a", "b", "c", "d", "e"][i],
                spec,
                created_at: Some(created),
            })
            .collect();
        let known = |id: &str| id == "error-rate";
        let judged = judge_waivers(
            &inputs,
            &subject(),
            known,
            &rules(),
            created + SignedDuration::from_mins(30),
        );
        let states: Vec<(&str, Option<&str>)> = judged
            .iter()
            .map(|j| (j.record.state.as_str(), j.record.refusal.as_deref()))
            .collect();
        assert_eq!(
            states,
            vec![
                ("active", None),
                ("refused", Some(reason::BEYOND_MAXIMUM_DURATION)),
                ("refused", Some(reason::OTHER_DIGEST)),
                ("refused", Some(reason::SELF_WAIVER)),
                ("unmatched", None),
            ]
        );
        let later = judge_waivers(
            &inputs[..1],
            &subject(),
            known,
            &rules(),
            created + SignedDuration::from_hours(1),
        );
        assert_eq!(later[0].record.state, "expired");
    }
}
