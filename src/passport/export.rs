//! Exports: JSON, Markdown, CSV and an audit bundle (tar.gz). Every export
//! goes through redaction, whatever document it is given.

use std::fmt::Write as _;

use crate::api::{Envelope, PassportSpec, ResultState};

use super::redact;

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Markdown,
    Csv,
    Bundle,
    /// The DSSE envelope, one JSON object per line (`.intoto.jsonl`).
    Dsse,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The document is not a passport.
    #[error("not a passport: {0}")]
    NotAPassport(String),
    #[error("writing the bundle: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// No envelope to export.
    #[error(
        "the passport is unsigned: it carries no attestation envelope (sign it: evaluate --key)"
    )]
    Unsigned,
    /// The signed payload holds text that redaction would change: it is not
    /// exported (nothing this product signs does).
    #[error(
        "the signed payload holds text that redaction would remove; the envelope is not exported"
    )]
    UnredactedPayload,
}

/// A redacted copy of a passport document, and its typed reading.
pub struct Redacted {
    pub value: serde_json::Value,
    pub passport: PassportSpec,
    /// The envelope, as signed, when the passport carries one whose payload
    /// holds nothing redaction would change.
    pub envelope: Option<Envelope>,
    /// Whether an envelope was left out because its payload would need redaction.
    pub envelope_withheld: bool,
}

/// Redacts a passport JSON document and reads it. The envelope is signed
/// and cannot be redacted: it is kept as is when its decoded payload holds
/// nothing redaction would change, and left out otherwise.
pub fn prepare(value: &serde_json::Value) -> Result<Redacted, ExportError> {
    let mut value = value.clone();
    let envelope_value = value.as_object_mut().and_then(|m| m.remove("envelope"));
    redact::redact_value(&mut value);
    let mut passport: PassportSpec = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        ExportError::NotAPassport(format!("{path}: {}", e.inner()))
    })?;
    let envelope: Option<Envelope> = match envelope_value {
        Some(v) => Some(
            serde_json::from_value(v)
                .map_err(|e| ExportError::NotAPassport(format!("envelope: {e}")))?,
        ),
        None => None,
    };
    let (envelope, envelope_withheld) = match envelope {
        Some(e) if payload_is_clean(&e) => (Some(e), false),
        Some(_) => (None, true),
        None => (None, false),
    };
    if let (Some(e), Some(map)) = (&envelope, value.as_object_mut()) {
        map.insert("envelope".into(), serde_json::to_value(e)?);
    }
    passport.envelope = envelope.clone();
    Ok(Redacted {
        value,
        passport,
        envelope,
        envelope_withheld,
    })
}

/// Whether redaction would leave the envelope's decoded payload unchanged.
fn payload_is_clean(envelope: &Envelope) -> bool {
    let Some(bytes) = super::dsse::decode_base64(&envelope.payload) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut payload) => !redact::redact_value(&mut payload),
        Err(_) => false,
    }
}

/// The envelope as one line of an `.intoto.jsonl` file.
pub fn to_dsse(doc: &Redacted) -> Result<String, ExportError> {
    match &doc.envelope {
        Some(e) => Ok(serde_json::to_string(e)? + "\n"),
        None if doc.envelope_withheld => Err(ExportError::UnredactedPayload),
        None => Err(ExportError::Unsigned),
    }
}

/// Pretty JSON.
pub fn to_json(doc: &Redacted) -> Result<String, ExportError> {
    let mut s = serde_json::to_string_pretty(&doc.value)?;
    s.push('\n');
    Ok(s)
}

fn state(s: ResultState) -> &'static str {
    match s {
        ResultState::Pass => "pass",
        ResultState::Fail => "fail",
        ResultState::Stale => "stale",
        ResultState::Missing => "missing",
        ResultState::Waived => "waived",
    }
}

/// Escapes text for a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A Markdown report.
pub fn to_markdown(doc: &Redacted) -> String {
    let p = &doc.passport;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Release passport: {} {} ({})\n",
        md(&p.service),
        md(&p.release),
        md(&p.environment)
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| Decision | **{}** |", p.decision);
    let _ = writeln!(out, "| Confidence | {}% |", p.confidence);
    let _ = writeln!(out, "| Mode | {} |", p.mode);
    let _ = writeln!(out, "| Generated | {} |", p.generated_at);
    let _ = writeln!(out, "| Artifact | `{}` |", md(&p.artifact.image));
    if let Some(sha) = &p.artifact.source_sha {
        let _ = writeln!(out, "| Source SHA | `{}` |", md(sha));
    }
    let _ = writeln!(
        out,
        "| Policy | {} (`{}`) |",
        md(&p.policy.name),
        md(&p.policy.hash)
    );
    let _ = writeln!(out, "| Actor | {} |", md(&p.actor));
    match &doc.envelope {
        Some(_) => {
            let _ = writeln!(
                out,
                "| Attestation | in-toto Statement v1, SLSA verification summary, DSSE envelope signed by key `{}` (Ed25519) |",
                md(p.signing_key_id())
            );
        }
        None => {
            let _ = writeln!(out, "| Attestation | none (unsigned) |");
        }
    }
    let _ = writeln!(out, "\n## Policy results\n");
    let _ = writeln!(
        out,
        "| Rule | Check | State | Observed | Threshold | Source | Why |\n|---|---|---|---|---|---|---|"
    );
    for r in &p.policy_results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            md(&r.id),
            md(&r.label),
            state(r.state),
            md(r.observed.as_deref().unwrap_or("")),
            md(r.threshold.as_deref().unwrap_or("")),
            md(r.source.as_deref().unwrap_or("")),
            md(r.reason.as_deref().unwrap_or(""))
        );
    }
    if !p.next_actions.is_empty() {
        let _ = writeln!(out, "\n## Next actions\n");
        for (i, a) in p.next_actions.iter().enumerate() {
            let _ = writeln!(out, "{}. {}", i + 1, md(a));
        }
    }
    if !p.evidence.is_empty() {
        let _ = writeln!(
            out,
            "\n## Evidence\n\n| Connector | Observed at | Max age | Status | Facts |\n|---|---|---|---|---|"
        );
        for e in &p.evidence {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                md(&e.connector),
                e.observed_at,
                e.max_age_seconds
                    .map(|s| format!("{s}s"))
                    .unwrap_or_default(),
                md(&e.status),
                e.fact_count
            );
        }
    }
    if let Some(r) = &p.rollback {
        let _ = writeln!(
            out,
            "\n## Rollback\n\n{} {} - {}",
            md(&r.release),
            r.image
                .as_deref()
                .map(md)
                .unwrap_or_else(|| "(no image)".into()),
            if r.ready { "ready" } else { "not ready" }
        );
    }
    if !p.approvals.is_empty() {
        let _ = writeln!(out, "\n## Approvals\n");
        for a in &p.approvals {
            let _ = writeln!(
                out,
                "- {}{}{}",
                md(&a.actor),
                a.reference
                    .as_deref()
                    .map(|r| format!(" ({})", md(r)))
                    .unwrap_or_default(),
                a.approved_at
                    .map(|t| format!(" at {t}"))
                    .unwrap_or_default()
            );
        }
    }
    if !p.waivers.is_empty() {
        let _ = writeln!(out, "\n## Waivers\n");
        for w in &p.waivers {
            let _ = writeln!(
                out,
                "- {} by {} until {} ({}): {}",
                md(&w.rule_id),
                md(&w.actor),
                w.expires_at,
                md(&w.state),
                md(&w.reason)
            );
        }
    }
    if !p.trace.is_empty() {
        let _ = writeln!(out, "\n## Trace\n");
        for t in &p.trace {
            let _ = writeln!(out, "- {} `{}` {}", t.at, md(&t.step), md(&t.message));
        }
    }
    out
}

/// A CSV field (RFC 4180). Fields starting with a formula character are
/// prefixed with `'` so spreadsheets do not evaluate them.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// CSV: one row per policy result, with the passport's identity on each row.
pub fn to_csv(doc: &Redacted) -> String {
    let p = &doc.passport;
    let mut out = String::from(
        "service,release,environment,mode,decision,confidence,generated_at,rule_id,label,state,on_fail,required,observed,threshold,source,observed_at,reason\n",
    );
    for r in &p.policy_results {
        let fields = [
            p.service.clone(),
            p.release.clone(),
            p.environment.clone(),
            p.mode.to_string(),
            p.decision.to_string(),
            p.confidence.to_string(),
            p.generated_at.to_string(),
            r.id.clone(),
            r.label.clone(),
            state(r.state).to_string(),
            r.on_fail.to_string(),
            r.required.to_string(),
            r.observed.clone().unwrap_or_default(),
            r.threshold.clone().unwrap_or_default(),
            r.source.clone().unwrap_or_default(),
            r.observed_at.map(|t| t.to_string()).unwrap_or_default(),
            r.reason.clone().unwrap_or_default(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

const BUNDLE_README: &str = "# Release passport audit bundle

Files:

- `passport.json`: the passport (redacted), with its attestation envelope.
- `passport.intoto.jsonl`: the attestation alone: a DSSE envelope (one JSON
  object per line) over an in-toto Statement v1 whose subject is the image and
  whose predicate is a SLSA verification summary carrying the passport.
- `public-key.pem`: the Ed25519 public key (SPKI PEM) to verify it with.
- `evidence-summary.json`: the evidence the decision used (redacted).
- `trace.json`: the evaluation timeline.
- `policy-results.csv`: one row per rule.
- `report.md`: a readable report.

## Verify

    releasepassport verify passport.intoto.jsonl --public-key public-key.pem

Exit code 0 means the signature is valid for that key; the decision printed
is read from the signed payload. Without this tool, with cosign (give the
image digest the passport is about):

    cosign verify-blob-attestation --key public-key.pem --insecure-ignore-tlog \\
      --signature passport.intoto.jsonl --type https://slsa.dev/verification_summary/v1 \\
      --digest <hex of the image digest> --digestAlg sha256

or by hand: base64-decode `payload`; build the DSSE pre-authentication
encoding `DSSEv1 <len(payloadType)> <payloadType> <len(payload)> <payload>`
(lengths in bytes, decimal); check the base64 `sig` as a pure Ed25519
signature of those bytes with `public-key.pem`. Then read the decoded payload
(and only it): `predicate.verificationResult`, and the passport under
`predicate[\"https://releasepassport.io/passport/v1\"]`. The `keyid` is `rp-`
and the first 16 hex digits of the SHA-256 of the raw 32-byte public key
(unless the issuer configured its own key id).
";

/// The audit bundle: a tar.gz of the passport, the public key, the evidence
/// summary, the trace, the results as CSV, a report and a README.
pub fn to_bundle(doc: &Redacted, public_key_pem: &str) -> Result<Vec<u8>, ExportError> {
    let mtime = u64::try_from(doc.passport.generated_at.as_second()).unwrap_or(0);
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("README.md", BUNDLE_README.as_bytes().to_vec()),
        ("passport.json", to_json(doc)?.into_bytes()),
        ("public-key.pem", public_key_pem.as_bytes().to_vec()),
        (
            "evidence-summary.json",
            serde_json::to_vec_pretty(&doc.passport.evidence)?,
        ),
        (
            "trace.json",
            serde_json::to_vec_pretty(&doc.passport.trace)?,
        ),
        ("policy-results.csv", to_csv(doc).into_bytes()),
        ("report.md", to_markdown(doc).into_bytes()),
    ];
    if doc.envelope.is_some() {
        files.insert(2, ("passport.intoto.jsonl", to_dsse(doc)?.into_bytes()));
    }
    let dir = format!(
        "passport-{}-{}",
        sanitize(&doc.passport.service),
        sanitize(&doc.passport.release)
    );
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{dir}/{name}"), bytes.as_slice())?;
    }
    let gz = tar.into_inner()?;
    Ok(gz.finish()?)
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
