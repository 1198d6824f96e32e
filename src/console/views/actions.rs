//! The actions a signed-in person may take on a gate, as themselves: only
//! the buttons the apiserver's SubjectAccessReview allows are rendered, and
//! every form carries the session's CSRF token.

use maud::{Markup, html};

use super::layout::{gate_href, time};
use crate::api::{Decision, GateHistoryEntry, HistoryType};

/// What the person may do on one gate (each from a SubjectAccessReview).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Allowed {
    /// `approve` on the gate and `create` on releaseapprovals.
    pub approve: bool,
    /// `create` on releaserequests: re-run, comment, request approval.
    pub request: bool,
}

impl Allowed {
    pub fn any(&self) -> bool {
        self.approve || self.request
    }
}

/// What the gate page's actions panel shows.
pub struct Panel<'a> {
    pub namespace: &'a str,
    pub gate: &'a str,
    /// The artifact digest, when the image is pinned by one.
    pub digest: Option<&'a str>,
    pub decision: Option<Decision>,
    /// The Passport on record (comments are about it).
    pub passport: Option<&'a str>,
    pub history: &'a [GateHistoryEntry],
    pub csrf: &'a str,
    pub allowed: Allowed,
    /// The action just taken (`?done=`).
    pub done: Option<&'a str>,
}

/// What the last action did, shown above the buttons.
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "approved" => Some(
            "Your approval was created. The operator counts it at the gate's next evaluation (the passport lists it).",
        ),
        "Rerun" => {
            Some("Your re-run request was created: the operator evaluates the gate again now.")
        }
        "Comment" => Some("Your comment was created; it joins the gate's history."),
        "ApprovalRequest" => {
            Some("Your approval request was created: the operator announces it to the approvers.")
        }
        _ => None,
    }
}

/// The actions panel of a gate page, and its comments.
pub fn panel(p: &Panel<'_>) -> Markup {
    let href = gate_href(p.namespace, p.gate);
    let comments: Vec<&GateHistoryEntry> = p
        .history
        .iter()
        .rev()
        .filter(|e| e.type_ == HistoryType::Commented)
        .collect();
    html! {
        h2 #actions { "Act on this gate" }
        div.panel {
            @if let Some(n) = notice(p.done) { p.ok #action-notice role="status" { (n) } }
            @if !p.allowed.any() {
                p.muted #no-actions { "You may not act on this gate: approving needs the approve verb on it (the approver role); re-running and commenting need create on releaserequests." }
            }
            @if p.allowed.approve {
                @match p.digest {
                    Some(d) => {
                        form #approve-form method="post" action=(format!("{href}/approve")) {
                            input type="hidden" name="csrf" value=(p.csrf);
                            input type="hidden" name="digest" value=(d);
                            p { "Approve this release for digest " span.mono { (d) } " as yourself. The approval never counts for another digest, nor when you applied the release yourself." }
                            label for="reference" { "Reference (e.g. a change ticket)" }
                            input #reference type="text" name="reference" maxlength="200";
                            label for="approve-comment" { "Comment" }
                            input #approve-comment type="text" name="comment" maxlength="1000";
                            button #approve type="submit" { "Approve" }
                        }
                    },
                    None => p.muted { "This gate's artifact is not pinned by digest, so it cannot be approved." },
                }
            }
            @if p.allowed.request {
                form #rerun-form method="post" action=(format!("{href}/request")) {
                    input type="hidden" name="csrf" value=(p.csrf);
                    input type="hidden" name="type" value="Rerun";
                    @if let Some(pp) = p.passport { input type="hidden" name="passport" value=(pp); }
                    button #rerun type="submit" { "Re-run evaluation" }
                    span.muted { " Collects the evidence and evaluates the gate again now; it cannot change what the Policy requires." }
                }
                @if p.decision == Some(Decision::RequireApproval) {
                    form #request-approval-form method="post" action=(format!("{href}/request")) {
                        input type="hidden" name="csrf" value=(p.csrf);
                        input type="hidden" name="type" value="ApprovalRequest";
                        @if let Some(pp) = p.passport { input type="hidden" name="passport" value=(pp); }
                        label for="approval-note" { "Note to the approvers" }
                        input #approval-note type="text" name="body" maxlength="2000";
                        button #request-approval type="submit" { "Request approval" }
                    }
                }
                form #comment-form method="post" action=(format!("{href}/request")) {
                    input type="hidden" name="csrf" value=(p.csrf);
                    input type="hidden" name="type" value="Comment";
                    @if let Some(pp) = p.passport { input type="hidden" name="passport" value=(pp); }
                    label for="comment" { "Comment on this release" @if let Some(pp) = p.passport { " (passport " span.mono { (pp) } ")" } }
                    textarea #comment name="body" maxlength="2000" required {}
                    button #add-comment type="submit" { "Comment" }
                }
            }
        }
        h2 #comments-title { "Comments" }
        div.panel {
            @if comments.is_empty() { p.muted #no-comments { "No comment yet." } } @else {
                ul #comments {
                    @for c in &comments {
                        li {
                            strong.comment-author { (c.actor.as_deref().unwrap_or("—")) }
                            " · " (time(c.at))
                            @if let Some(pp) = &c.passport { " · " span.mono { (pp) } }
                            p.comment-body { (c.message) }
                        }
                    }
                }
            }
        }
    }
}
