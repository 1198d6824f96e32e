//! The `email` notification connector against a real SMTP server process
//! (aiosmtpd from PyPI, installed into the project cache by
//! `e2e/tools/tools.sh path aiosmtpd`, run by e2e/tools/smtp-server.py):
//! STARTTLS with a private CA, AUTH, the message as received, and the
//! refusals (no STARTTLS, a wrong password, no Secret).

mod replay;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use releasepassport::api::{ConnectorHealth, ConnectorScopeSpec, Decision, Mode};
use releasepassport::connectors::notify::Notification;
use replay::{fact, request};
use serde_json::json;

const PASSWORD: &str = "Vt7qP2xLm9Rw4Zs8Kd";

struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
    ca_pem: String,
    _dir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(repo.join("e2e/tools/tools.sh"))
        .args(["path", "aiosmtpd"])
        .output()
        .expect("running e2e/tools/tools.sh");
    assert!(
        out.status.success(),
        "installing aiosmtpd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("path").trim())
}

fn smtp(extra: &[&str]) -> Smtp {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = releasepassport::webhook::tls::generate(&["localhost".into()]).expect("certificate");
    std::fs::write(dir.path().join("tls.crt"), &tls.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &tls.key_pem).unwrap();
    let maildir = dir.path().join("mail");
    std::fs::create_dir(&maildir).unwrap();
    let mut child = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/tools/smtp-server.py"))
        .args(["--cert", dir.path().join("tls.crt").to_str().unwrap()])
        .args(["--key", dir.path().join("tls.key").to_str().unwrap()])
        .args(["--maildir", maildir.to_str().unwrap()])
        .args(["--user", "release-passport", "--password", PASSWORD])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the SMTP server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reading the port");
    let port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the SMTP server did not start: {line:?}"));
    Smtp {
        child,
        port,
        maildir,
        ca_pem: tls.ca_pem,
        _dir: dir,
    }
}

fn spec(server: &Smtp) -> ConnectorScopeSpec {
    serde_json::from_value(json!({
        "connector": "email",
        "email": {
            "host": "localhost", "port": server.port, "tls": "starttls",
            "caCertificate": server.ca_pem, "user": "release-passport",
            "from": "Release Passport <release-passport@acme.example>",
            "to": ["payments-oncall@acme.example", "cab@acme.example"]
        },
        "secretRef": {"name": "smtp", "key": "password"}
    }))
    .unwrap()
}

fn notification() -> Notification {
    Notification {
        namespace: "payments".into(),
        gate: "payment-api-production".into(),
        service: "payment-api".into(),
        release: "v2.18.4".into(),
        environment: "production".into(),
        mode: Mode::Shadow,
        decision: Decision::Block,
        previous: None,
        confidence: 100,
        failing_checks: vec!["incident-freeze".into()],
        next_actions: vec!["Incident freeze: resolve PagerDuty incident #1234 Q2SRP8WLJ0J7TD (P1, triggered), then re-run the gate for payment-api v2.18.4.".into()],
        passport: "payment-api-production-0a1b2c3d4e".into(),
        link: None,
    }
}

fn connectors(password: &str) -> releasepassport::connectors::Connectors {
    replay::connectors_with(
        &[("payments", "smtp", "password", password)],
        Duration::from_secs(10),
    )
}

fn mails(server: &Smtp) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(&server.maildir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[tokio::test]
async fn a_decision_change_is_mailed_over_starttls_with_auth() {
    let server = smtp(&["--require-tls"]);
    let spec = spec(&server);
    let req = request(&spec);
    let connectors = connectors(PASSWORD);
    let detail = connectors
        .notify(&req, &notification())
        .await
        .expect("delivered");
    assert_eq!(
        detail,
        "sent BLOCK to email to payments-oncall@acme.example, cab@acme.example via localhost"
    );
    let mails = mails(&server);
    assert_eq!(mails.len(), 1);
    // Long headers are folded onto continuation lines.
    // Quoted-printable soft line breaks joined, folded headers unfolded.
    let mail = &mails[0]
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("\r\n ", " ")
        .replace("\n ", " ");
    assert!(mail.contains("X-TLS: yes"), "STARTTLS was used: {mail}");
    assert!(
        mail.contains("X-Envelope-To: payments-oncall@acme.example,cab@acme.example"),
        "{mail}"
    );
    assert!(
        mail.contains(
            "Subject: [Release Passport] BLOCK: payment-api v2.18.4 -> production (shadow mode)"
        ),
        "{mail}"
    );
    assert!(
        mail.contains("resolve PagerDuty incident #1234 Q2SRP8WLJ0J7TD"),
        "{mail}"
    );
    assert!(
        mail.contains("kubectl get passport payment-api-production-0a1b2c3d4e -n payments"),
        "{mail}"
    );
    assert!(!mail.contains(PASSWORD));

    let doc = connectors
        .collect(&req)
        .await
        .expect("evidence")
        .expect("doc");
    assert_eq!(doc.connector, "email");
    assert_eq!(fact(&doc, "notifications_sent"), Some(json!(1)));
    assert_eq!(fact(&doc, "last_notification_delivered"), Some(json!(true)));
    assert_eq!(fact(&doc, "last_notified_decision"), Some(json!("BLOCK")));
}

#[tokio::test]
async fn refusals_are_reported_and_never_sent_in_the_clear() {
    // A wrong password: the server refuses the login.
    let server = smtp(&["--require-tls"]);
    let spec_ = spec(&server);
    let req = request(&spec_);
    let err = connectors("not-the-password")
        .notify(&req, &notification())
        .await
        .expect_err("refused");
    assert_eq!(err.health(), ConnectorHealth::CredentialRequired, "{err}");
    assert!(mails(&server).is_empty());

    // A server that cannot STARTTLS: nothing (no password, no mail) is sent.
    let plain = smtp(&["--no-starttls"]);
    let spec_ = spec(&plain);
    let req = request(&spec_);
    let err = connectors(PASSWORD)
        .notify(&req, &notification())
        .await
        .expect_err("no TLS");
    assert_eq!(err.health(), ConnectorHealth::Unreachable, "{err}");
    assert!(mails(&plain).is_empty());

    // A certificate from a CA the scope does not trust.
    let other = smtp(&["--require-tls"]);
    let mut spec_ = spec(&other);
    spec_.email.as_mut().unwrap().ca_certificate = Some(server.ca_pem.clone());
    let req = request(&spec_);
    let err = connectors(PASSWORD)
        .notify(&req, &notification())
        .await
        .expect_err("untrusted");
    assert_eq!(err.health(), ConnectorHealth::Unreachable, "{err}");
    assert!(mails(&other).is_empty());

    // No Secret: CredentialRequired, naming it.
    let spec_ = spec(&server);
    let req = request(&spec_);
    let err = replay::connectors_with(&[], Duration::from_secs(5))
        .collect(&req)
        .await
        .expect_err("no secret");
    assert_eq!(err.health(), ConnectorHealth::CredentialRequired, "{err}");
    assert!(err.to_string().contains("Secret smtp"), "{err}");
}
