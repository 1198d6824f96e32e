//! `email`: decision notifications sent over SMTP, with STARTTLS (the
//! default: a server that cannot upgrade is refused), implicit TLS, or no
//! TLS for a relay on loopback. With `user`, the `secretRef` value is the
//! SMTP password, sent only over TLS. As evidence, the scope reports its
//! deliveries for the gate.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::notify::{Notification, delivery_evidence};
use super::saas;
use super::{ConnectorError, Connectors, ScopeRequest};
use crate::api::{EmailScope, EvidenceDocument, SmtpTls};
use crate::passport::redact;

fn scope<'a>(req: &'a ScopeRequest<'_>) -> Result<&'a EmailScope, ConnectorError> {
    req.spec.email.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector email needs spec.email (host, from, to)".into())
    })
}

fn mailbox(text: &str, field: &str) -> Result<Mailbox, ConnectorError> {
    text.parse().map_err(|e| {
        ConnectorError::Invalid(format!("email.{field} {text:?} is not an address: {e}"))
    })
}

fn target(scope: &EmailScope) -> String {
    format!("email to {} via {}", scope.to.join(", "), scope.host)
}

/// The password, when the scope authenticates.
async fn password(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
    scope: &EmailScope,
) -> Result<Option<String>, ConnectorError> {
    if scope.user.is_none() {
        return Ok(None);
    }
    saas::required_token(connectors, req, "the SMTP server")
        .await
        .map(Some)
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = scope(req)?;
    mailbox(&scope.from, "from")?;
    for to in &scope.to {
        mailbox(to, "to")?;
    }
    password(connectors, req, scope).await?;
    Ok(delivery_evidence(connectors, req, target(scope)))
}

fn transport(
    scope: &EmailScope,
    password: Option<String>,
    timeout: std::time::Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, ConnectorError> {
    let mode = scope.tls.unwrap_or(SmtpTls::Starttls);
    let tls = || -> Result<TlsParameters, ConnectorError> {
        let mut params = TlsParameters::builder(scope.host.clone());
        if let Some(pem) = &scope.ca_certificate {
            let cert = Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                ConnectorError::Invalid(format!(
                    "email.caCertificate is not a PEM certificate: {e}"
                ))
            })?;
            params = params.add_root_certificate(cert);
        }
        params
            .build_rustls()
            .map_err(|e| ConnectorError::Invalid(format!("TLS settings for {}: {e}", scope.host)))
    };
    let (tls, default_port) = match mode {
        SmtpTls::Starttls => (Tls::Required(tls()?), 587),
        SmtpTls::Implicit => (Tls::Wrapper(tls()?), 465),
        SmtpTls::None => {
            if password.is_some() {
                return Err(ConnectorError::Invalid(
                    "email: a password is sent only over TLS; use tls: starttls or implicit".into(),
                ));
            }
            (Tls::None, 25)
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(scope.host.clone())
        .port(scope.port.unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&scope.user, password) {
        // PLAIN over TLS only: a refused login is refused once, not retried.
        builder = builder
            .credentials(Credentials::new(user.clone(), password))
            .authentication(vec![Mechanism::Plain]);
    }
    Ok(builder.build())
}

pub(super) async fn send(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
    notification: &Notification,
) -> Result<String, ConnectorError> {
    let scope = scope(req)?;
    let mut message = Message::builder()
        .from(mailbox(&scope.from, "from")?)
        .subject(format!("[Release Passport] {}", notification.subject()))
        .header(ContentType::TEXT_PLAIN);
    for to in &scope.to {
        message = message.to(mailbox(to, "to")?);
    }
    let message = message
        .body(notification.text())
        .map_err(|e| ConnectorError::Invalid(format!("building the email: {e}")))?;
    let password = password(connectors, req, scope).await?;
    let mailer = transport(scope, password, connectors.timeout)?;
    mailer.send(message).await.map_err(|e| {
        let text = redact::redact_str(&e.to_string()).into_owned();
        let code = e.status().map(|c| c.to_string()).unwrap_or_default();
        if matches!(code.as_str(), "530" | "534" | "535" | "538") {
            ConnectorError::CredentialRequired(format!(
                "{} refused the SMTP login ({text})",
                scope.host
            ))
        } else if e.is_permanent() {
            ConnectorError::Invalid(format!("{} refused the email ({text})", scope.host))
        } else {
            ConnectorError::Unreachable(format!("sending to {} failed: {text}", scope.host))
        }
    })?;
    Ok(format!(
        "sent {} to {}",
        notification.decision,
        target(scope)
    ))
}
