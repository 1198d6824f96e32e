//! The actions a signed-in person may take on a gate, as themselves: only
//! the buttons the apiserver's SubjectAccessReview allows are rendered, and
//! every form carries the session's CSRF token.

use maud::{Markup, html};

use super::layout::gate_href;

/// What the person may do on one gate (each from a SubjectAccessReview).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Allowed {
    /// `approve` on the gate and `create` on releaseapprovals.
    pub approve: bool,
}

impl Allowed {
    pub fn any(&self) -> bool {
        self.approve
    }
}

/// What the last action did, shown above the buttons.
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "approved" => Some(
            "Your approval was created. The operator counts it at the gate's next evaluation (the passport lists it).",
        ),
        _ => None,
    }
}

/// The actions panel of a gate page.
pub fn panel(
    namespace: &str,
    gate: &str,
    digest: Option<&str>,
    csrf: &str,
    allowed: Allowed,
    done: Option<&str>,
) -> Markup {
    let href = gate_href(namespace, gate);
    html! {
        h2 #actions { "Act on this gate" }
        div.panel {
            @if let Some(n) = notice(done) { p.ok #action-notice role="status" { (n) } }
            @if !allowed.any() {
                p.muted #no-actions { "You may not act on this gate: approving needs the approve verb on it (the approver role)." }
            }
            @if allowed.approve {
                @match digest {
                    Some(d) => {
                        form #approve-form method="post" action=(format!("{href}/approve")) {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="digest" value=(d);
                            p { "Approve this release for digest " span.mono { (d) } " as yourself. The approval never counts for another digest, nor when you applied the release yourself." }
                            label for="reference" { "Reference (e.g. a change ticket)" }
                            input #reference type="text" name="reference" maxlength="200";
                            label for="approve-comment" { "Comment" }
                            input #approve-comment type="text" name="comment" maxlength="2000";
                            button #approve type="submit" { "Approve" }
                        }
                    },
                    None => p.muted { "This gate's artifact is not pinned by digest, so it cannot be approved." },
                }
            }
        }
    }
}
