//! Notifications out: when a gate's decision changes, every `slack` and
//! `email` ConnectorScope the gate lists is told, with content redacted like
//! an export and a link to the Passport. A delivery never changes or delays
//! the decision (the Passport is written first); its outcome is recorded in
//! the gate's history and, at the next evaluation, as the scope's evidence.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::incidents::fact;
use super::{ConnectorError, Connectors, ScopeRequest};
use crate::api::{ConnectorKind, Decision, EvidenceDocument, Freshness, Mode};
use crate::passport::redact;

/// What a decision change says.
#[derive(Clone, Debug)]
pub struct Notification {
    pub namespace: String,
    pub gate: String,
    pub service: String,
    pub release: String,
    pub environment: String,
    pub mode: Mode,
    pub decision: Decision,
    pub previous: Option<Decision>,
    pub confidence: u8,
    pub failing_checks: Vec<String>,
    pub next_actions: Vec<String>,
    /// The Passport's name.
    pub passport: String,
    /// Where a person opens it: the console page when its URL is known.
    pub link: Option<String>,
}

impl Notification {
    /// `HOLD: payment-api v2.18.4 -> production (shadow)`
    pub fn subject(&self) -> String {
        let text = format!(
            "{}: {} {} -> {} ({} mode)",
            self.decision,
            self.service,
            self.release,
            self.environment,
            self.mode.as_str()
        );
        redact::redact_str(&text).into_owned()
    }

    /// The plain-text body (email, and Slack's fallback text), redacted.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{}\n\nDecision {} at {}% confidence",
            self.subject(),
            self.decision,
            self.confidence
        );
        if let Some(p) = self.previous {
            out.push_str(&format!(" (was {p})"));
        }
        out.push_str(&format!(
            ", ReleaseGate {}/{}.\n",
            self.namespace, self.gate
        ));
        if !self.failing_checks.is_empty() {
            out.push_str(&format!(
                "Failing checks: {}\n",
                self.failing_checks.join(", ")
            ));
        }
        if !self.next_actions.is_empty() {
            out.push_str("\nNext actions:\n");
            for (i, a) in self.next_actions.iter().enumerate() {
                out.push_str(&format!("  {}. {a}\n", i + 1));
            }
        }
        out.push_str(&format!("\nPassport: {}\n", self.passport_reference()));
        redact::redact_str(&out).into_owned()
    }

    fn passport_reference(&self) -> String {
        match &self.link {
            Some(link) => format!("{} ({link})", self.passport),
            None => format!(
                "{} (kubectl get passport {} -n {} -o yaml)",
                self.passport, self.passport, self.namespace
            ),
        }
    }

    /// A Slack incoming-webhook payload: `text` plus Block Kit sections.
    pub fn slack_payload(&self) -> Value {
        let headline = format!(
            "*{}* {} {} → {} ({} mode), confidence {}%{}",
            self.decision,
            self.service,
            self.release,
            self.environment,
            self.mode.as_str(),
            self.confidence,
            self.previous
                .map(|p| format!(", was {p}"))
                .unwrap_or_default()
        );
        let mut blocks =
            vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": headline}})];
        if !self.failing_checks.is_empty() || !self.next_actions.is_empty() {
            let mut body = String::new();
            if !self.failing_checks.is_empty() {
                body.push_str(&format!("*Failing:* {}\n", self.failing_checks.join(", ")));
            }
            for a in &self.next_actions {
                body.push_str(&format!("• {a}\n"));
            }
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": body}}));
        }
        let passport = match &self.link {
            Some(link) => format!("<{link}|Passport {}>", self.passport),
            None => format!(
                "Passport `{}` in namespace `{}`",
                self.passport, self.namespace
            ),
        };
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": passport}]}));
        let mut payload = json!({"text": self.text(), "blocks": blocks});
        redact::redact_value(&mut payload);
        payload
    }
}

/// The outcome of one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub at: jiff::Timestamp,
    pub decision: Decision,
    pub delivered: bool,
    /// What happened (never a credential).
    pub detail: String,
}

/// (namespace, gate, ConnectorScope).
type DeliveryKey = (String, String, String);

/// Deliveries by gate and scope: how many, and the latest.
#[derive(Clone, Default)]
pub(crate) struct Deliveries(Arc<Mutex<HashMap<DeliveryKey, (u64, Delivery)>>>);

impl Deliveries {
    fn record(&self, req: &ScopeRequest<'_>, delivery: Delivery) {
        if let Ok(mut map) = self.0.lock() {
            let key = (req.namespace.into(), req.gate_name.into(), req.name.into());
            let count = map.get(&key).map_or(0, |(n, _)| *n);
            map.insert(key, (count + 1, delivery));
        }
    }

    fn latest(&self, req: &ScopeRequest<'_>) -> Option<(u64, Delivery)> {
        let map = self.0.lock().ok()?;
        map.get(&(req.namespace.into(), req.gate_name.into(), req.name.into()))
            .cloned()
    }
}

impl Connectors {
    /// Sends a notification through a `slack` or `email` scope and records
    /// the outcome. Bounded by the connector timeout; never retried here.
    pub async fn notify(
        &self,
        req: &ScopeRequest<'_>,
        notification: &Notification,
    ) -> Result<String, ConnectorError> {
        let kind = req.spec.connector;
        let work = async {
            match kind {
                ConnectorKind::Slack => super::slack::send(self, req, notification).await,
                ConnectorKind::Email => super::email::send(self, req, notification).await,
                other => Err(ConnectorError::Invalid(format!(
                    "connector {other} does not send notifications"
                ))),
            }
        };
        let result = match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(ConnectorError::Unreachable(format!(
                "{kind} did not accept the notification within {}s",
                self.timeout.as_secs()
            ))),
        };
        let (delivered, detail) = match &result {
            Ok(d) => (true, d.clone()),
            Err(e) => (false, format!("{}: {e}", e.reason())),
        };
        self.deliveries.record(
            req,
            Delivery {
                at: req.now,
                decision: notification.decision,
                delivered,
                detail: redact::redact_str(&detail).into_owned(),
            },
        );
        result
    }
}

/// The evidence of a notification scope: its deliveries for this gate.
pub(super) fn delivery_evidence(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
    target: String,
) -> EvidenceDocument {
    let mut facts = Vec::new();
    let mut observed_at = req.now;
    match connectors.deliveries.latest(req) {
        Some((count, d)) => {
            facts.push(fact("notifications_sent", json!(count)));
            facts.push(fact("last_notification_delivered", json!(d.delivered)));
            facts.push(fact("last_notified_decision", json!(d.decision.as_str())));
            facts.push(fact("last_notification_result", json!(d.detail)));
            observed_at = d.at;
        }
        None => facts.push(fact("notifications_sent", json!(0))),
    }
    let mut scope = req.evidence_scope();
    scope.insert("target".into(), redact::redact_str(&target).into_owned());
    EvidenceDocument {
        connector: req.spec.connector.as_str().into(),
        scope,
        freshness: Freshness {
            observed_at,
            // A delivery stays the latest until the next decision change.
            max_age_seconds: Some(i64::from(i32::MAX)),
        },
        facts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(link: Option<&str>, action: &str) -> Notification {
        Notification {
            namespace: "payments".into(),
            gate: "payment-api-production".into(),
            service: "payment-api".into(),
            release: "v2.18.4".into(),
            environment: "production".into(),
            mode: Mode::Shadow,
            decision: Decision::Hold,
            previous: Some(Decision::Allow),
            confidence: 82,
            failing_checks: vec!["error-rate".into()],
            next_actions: vec![action.into()],
            passport: "payment-api-production-3179e15b72".into(),
            link: link.map(Into::into),
        }
    }

    #[test]
    fn text_names_the_decision_the_actions_and_the_passport() {
        let n = note(
            Some(
                "https://rp.example.com/console/passports/payments/payment-api-production-3179e15b72",
            ),
            "Attach rollback artifact for payment-api v2.17.9.",
        );
        let text = n.text();
        assert!(
            text.starts_with("HOLD: payment-api v2.18.4 -> production (shadow mode)"),
            "{text}"
        );
        assert!(text.contains("(was ALLOW)"));
        assert!(text.contains("  1. Attach rollback artifact for payment-api v2.17.9."));
        assert!(text.contains(
            "https://rp.example.com/console/passports/payments/payment-api-production-3179e15b72"
        ));
        let slack = n.slack_payload();
        assert_eq!(slack["blocks"][0]["type"], "section");
        assert!(
            slack["blocks"][2]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("<https://rp.example.com/")
        );
    }

    #[test]
    fn content_is_redacted_like_exports() {
        let n = note(None, "Rotate password=hunter2hunter2 on the bridge");
        assert!(!n.text().contains("hunter2hunter2"));
        assert!(!n.slack_payload().to_string().contains("hunter2hunter2"));
        assert!(
            n.text()
                .contains("kubectl get passport payment-api-production-3179e15b72 -n payments")
        );
    }
}
