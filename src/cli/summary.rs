//! The text summary of a passport, shared by `evaluate` and `gate`.

use crate::api::{PassportSpec, ResultState};

/// How a rule state is shown: failures in capitals so they stand out.
pub fn state_word(state: ResultState) -> &'static str {
    match state {
        ResultState::Pass => "pass",
        ResultState::Fail => "FAIL",
        ResultState::Stale => "STALE",
        ResultState::Missing => "MISSING",
        ResultState::Waived => "waived",
    }
}

/// The decision, confidence, policy and one line per rule.
pub fn push_decision_and_checks(s: &mut String, doc: &PassportSpec) {
    s.push_str(&format!(
        "Decision: {}  Confidence: {}%\n",
        doc.decision, doc.confidence
    ));
    s.push_str(&format!(
        "Policy: {} ({})\n\nChecks:\n",
        doc.policy.name, doc.policy.hash
    ));
    let width = doc
        .policy_results
        .iter()
        .map(|r| r.id.len())
        .max()
        .unwrap_or(0);
    for r in &doc.policy_results {
        let reason = if r.state == ResultState::Pass {
            String::new()
        } else {
            r.reason
                .as_ref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        };
        s.push_str(&format!(
            "  {:<7} {:<width$}  {}{reason}\n",
            state_word(r.state),
            r.id,
            r.label
        ));
    }
}

/// Who approved and waived (and what did not count), when anyone did; the
/// mode a platform minimum imposed; who applied the release.
pub fn push_approvals_and_waivers(s: &mut String, doc: &PassportSpec) {
    if let (Some(requested), Some(by)) = (doc.requested_mode, &doc.enforced_by) {
        s.push_str(&format!(
            "\nMode: {} (the gate asks for {requested}; {by})\n",
            doc.mode
        ));
    }
    if let Some(by) = &doc.released_by {
        s.push_str(&format!("\nReleased by: {by}\n"));
    }
    if !doc.approvals.is_empty() {
        s.push_str("\nApprovals:\n");
        for a in &doc.approvals {
            let reference = a
                .reference
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let verdict = if a.counted {
                "counts".to_string()
            } else {
                format!(
                    "does not count: {}",
                    a.reason.as_deref().unwrap_or("refused")
                )
            };
            s.push_str(&format!("  {}{reference}: {verdict}\n", a.actor));
        }
    }
    if !doc.waivers.is_empty() {
        s.push_str("\nWaivers:\n");
        for w in &doc.waivers {
            let refusal = w
                .refusal
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            s.push_str(&format!(
                "  {} by {} until {}: {}{refusal}\n",
                w.rule_id, w.actor, w.expires_at, w.state
            ));
        }
    }
}

/// The numbered next actions, if any.
pub fn push_next_actions(s: &mut String, doc: &PassportSpec) {
    if !doc.next_actions.is_empty() {
        s.push_str("\nNext actions:\n");
        for (i, a) in doc.next_actions.iter().enumerate() {
            s.push_str(&format!("  {}. {a}\n", i + 1));
        }
    }
}
