//! Redaction: the one pass every evidence value, message and export goes
//! through before it is signed, stored, shown or exported.
//!
//! Two kinds of secrets are recognised:
//! - by *shape*, wherever they appear in text: bearer/basic credentials,
//!   JWTs, credentials in URLs, PEM private keys, cloud and SaaS access keys
//!   and tokens, `password=...`-style assignments;
//! - by *name*: the value of a field (or fact) called `password`, `token`,
//!   `secret`, `apiKey`, `authorization`, ... is replaced whatever it looks like;
//! - by *value*: every secret the process has loaded (connector tokens, SMTP
//!   passwords, webhook URLs; see [`mask_secret`]) is replaced wherever it
//!   appears, whatever its shape, the way CI systems mask their secrets.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use crate::api::PassportSpec;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Names of fields whose values are secrets, compared after lowercasing and
/// removing `-`, `_`, `.` and spaces.
const SENSITIVE_NAME_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "accountkey",
    "privatekey",
    "signingkey",
    "authorization",
    "credential",
    "cookie",
    "sessionid",
    "bearer",
    "sastoken",
    "connectionstring",
    "dsn",
];

/// Whether a field or fact name holds a secret (`password`, `db_password`,
/// `apiKey`, `X-Api-Key`, `authorization`, `client_secret`, ...).
pub fn is_sensitive_key(name: &str) -> bool {
    let normalised: String = name
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    normalised == "pwd"
        || normalised == "auth"
        || SENSITIVE_NAME_PARTS.iter().any(|p| normalised.contains(p))
}

/// (pattern, replacement). Order matters: whole blocks first, then
/// credentials with a scheme, then assignments, then bare token shapes.
const RULES: &[(&str, &str)] = &[
    // PEM private keys (also with escaped newlines, or cut off).
    (
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
        REDACTED,
    ),
    // user:password@ in URLs (any scheme).
    (
        r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#@]*@",
        "${1}[redacted]@",
    ),
    // Credentials in query strings.
    (
        r"(?i)([?&;](?:access_token|token|api_?key|key|sig|signature|password|secret|client_secret|auth|code)=)[^&#\s]+",
        "${1}[redacted]",
    ),
    // Authorization schemes.
    (
        r"(?i)\b(bearer|basic|token|digest|negotiate|apikey|sso-key|geniekey)(\s+|\s*=\s*)[A-Za-z0-9._~+/=:\-]{6,}",
        "${1} [redacted]",
    ),
    // `OAuth <key>` (Statuspage's API keys): long values only, so prose
    // such as "OAuth clients" stays readable.
    (
        r"(?i)\b(oauth)(\s+|\s*=\s*)[A-Za-z0-9._~+/=\-]{20,}",
        "${1} [redacted]",
    ),
    // Command-line flags (a flag starts a word: `pagerduty-token not found`
    // names a Secret, it passes no value).
    (
        r"(?i)((?:^|[\s\[(,'\x22])--?(?:password|passwd|pass|token|secret|api-key|apikey|access-key|secret-key|client-secret|auth)(?:=|\s+))[^\s]+",
        "${1}[redacted]",
    ),
    // Assignments: password=..., "apiKey": "...", AWS_SECRET_ACCESS_KEY: ...
    (
        r#"(?i)(["']?[a-z0-9_.\-]*(?:password|passwd|passphrase|pwd|secret|token|api[ _\-]?key|access[ _\-]?key|account[ _\-]?key|private[ _\-]?key|authorization|credentials?|session[ _\-]?id|cookie|auth)[a-z0-9_.\-]*["']?\s*[:=]\s*)(?:"[^"]*"|'[^']*'|[^\s,;&"'}\]]+)"#,
        "${1}[redacted]",
    ),
    // JSON Web Tokens.
    (
        r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*",
        REDACTED,
    ),
    // AWS access key ids.
    (
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b",
        REDACTED,
    ),
    // Google API keys and OAuth access tokens.
    (r"\bAIza[0-9A-Za-z_\-]{35}", REDACTED),
    (r"\bya29\.[0-9A-Za-z_\-]{10,}", REDACTED),
    // Prefixed SaaS tokens: GitHub, GitLab, Slack, npm, PyPI, Docker Hub,
    // Hugging Face, Vault, Shopify, DigitalOcean, Linear, New Relic, Postman,
    // Grafana, Atlassian, Square, Stripe, OpenAI-style keys, Mailgun, Sentry.
    (
        r"\b(?:gh[pousr]_|github_pat_|glpat-|glsa_|glc_|gldt-|xox[abposre]-|xapp-|npm_|pypi-|dckr_pat_|hf_|hvs\.|hvb\.|shpat_|shpss_|shpca_|dop_v1_|doo_v1_|lin_api_|NRAK-|PMAK-|ATATT|sq0atp-|sq0csp-|sk_live_|sk_test_|rk_live_|rk_test_|pk_live_|whsec_|sk-|key-|sntrys_|sntryu_|sntryo_)[A-Za-z0-9_=\-.]{16,}",
        REDACTED,
    ),
    // SendGrid keys.
    (r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}", REDACTED),
    // Slack and Discord webhooks.
    (
        r"(?i)https://(?:hooks\.slack\.com/services|discord(?:app)?\.com/api/webhooks)/[A-Za-z0-9/_\-]+",
        REDACTED,
    ),
    // Azure connection strings.
    (
        r"(?i)((?:AccountKey|SharedAccessKey|SharedAccessSignature)=)[^;\s]+",
        "${1}[redacted]",
    ),
];

struct Redactor {
    any: RegexSet,
    rules: Vec<(Regex, &'static str)>,
}

static REDACTOR: LazyLock<Redactor> = LazyLock::new(|| {
    let patterns: Vec<&str> = RULES.iter().map(|(p, _)| *p).collect();
    Redactor {
        // The patterns are constants covered by tests; an invalid one is a
        // programming error caught by every test run.
        any: RegexSet::new(&patterns).unwrap_or_else(|e| panic!("redaction pattern: {e}")),
        rules: RULES
            .iter()
            .map(|(p, r)| {
                (
                    Regex::new(p).unwrap_or_else(|e| panic!("redaction pattern: {e}")),
                    *r,
                )
            })
            .collect(),
    }
});

/// Replaces every secret-shaped part of a text, and every loaded secret
/// value ([`mask_secret`]), with `[redacted]`.
pub fn redact_str(text: &str) -> Cow<'_, str> {
    match masks::apply(text) {
        Cow::Borrowed(text) => redact_shapes(text),
        Cow::Owned(masked) => Cow::Owned(redact_shapes(&masked).into_owned()),
    }
}

fn redact_shapes(text: &str) -> Cow<'_, str> {
    let r = &*REDACTOR;
    // Most text holds no secret: one early-exiting scan decides that.
    if !r.any.is_match(text) {
        return Cow::Borrowed(text);
    }
    let matched = r.any.matches(text);
    let mut out = Cow::Borrowed(text);
    for (i, (re, replacement)) in r.rules.iter().enumerate() {
        // A later rule may match text an earlier replacement created
        // (never a secret), so test each rule on the current text.
        if !matched.matched(i) && !re.is_match(&out) {
            continue;
        }
        if let Cow::Owned(s) = re.replace_all(&out, *replacement) {
            out = Cow::Owned(s);
        }
    }
    out
}

/// Redacts a string in place; returns whether it changed.
pub fn redact_string(s: &mut String) -> bool {
    match redact_str(s) {
        Cow::Borrowed(_) => false,
        Cow::Owned(new) => {
            *s = new;
            true
        }
    }
}

fn redact_opt(s: &mut Option<String>) {
    if let Some(s) = s {
        redact_string(s);
    }
}

fn redact_map(map: &mut BTreeMap<String, String>) {
    let needs_rebuild = map.keys().any(|k| matches!(redact_str(k), Cow::Owned(_)));
    if needs_rebuild {
        let old = std::mem::take(map);
        for (k, v) in old {
            map.insert(redact_str(&k).into_owned(), v);
        }
    }
    for (k, v) in map.iter_mut() {
        if is_sensitive_key(k) {
            *v = REDACTED.to_string();
        } else {
            redact_string(v);
        }
    }
}

/// Redacts every text of a passport in place: the signed document never
/// holds a secret. The signature is not touched.
pub fn redact_passport(p: &mut PassportSpec) {
    for s in [
        &mut p.passport_version,
        &mut p.service,
        &mut p.release,
        &mut p.environment,
        &mut p.actor,
        &mut p.artifact.image,
        &mut p.artifact.digest,
        &mut p.policy.name,
        &mut p.policy.hash,
    ] {
        redact_string(s);
    }
    if let Some(g) = &mut p.gate {
        redact_string(&mut g.namespace);
        redact_string(&mut g.name);
    }
    redact_opt(&mut p.artifact.source_sha);
    redact_map(&mut p.artifact.build_run);
    redact_opt(&mut p.released_by);
    redact_opt(&mut p.enforced_by);
    for r in &mut p.policy_results {
        redact_string(&mut r.id);
        redact_string(&mut r.label);
        redact_opt(&mut r.observed);
        redact_opt(&mut r.threshold);
        redact_opt(&mut r.source);
        redact_opt(&mut r.reason);
    }
    for e in &mut p.evidence {
        redact_opt(&mut e.pushed_by);
        redact_string(&mut e.connector);
        redact_string(&mut e.status);
        redact_map(&mut e.scope);
    }
    if let Some(r) = &mut p.rollback {
        redact_string(&mut r.release);
        redact_opt(&mut r.image);
    }
    for a in &mut p.approvals {
        redact_opt(&mut a.name);
        redact_string(&mut a.actor);
        redact_opt(&mut a.reference);
        redact_opt(&mut a.reason);
    }
    for w in &mut p.waivers {
        redact_opt(&mut w.name);
        redact_opt(&mut w.refusal);
        redact_string(&mut w.rule_id);
        redact_string(&mut w.reason);
        redact_string(&mut w.actor);
        redact_string(&mut w.state);
    }
    for a in &mut p.next_actions {
        redact_string(a);
    }
    for t in &mut p.trace {
        redact_string(&mut t.step);
        redact_string(&mut t.message);
    }
}

/// Redacts a JSON document in place: every string by shape, and every
/// scalar under a sensitive field name. Returns whether anything changed.
/// Exports use it, so that even a document not produced by this crate
/// leaves without secrets.
pub fn redact_value(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => redact_string(s),
        Value::Array(items) => items.iter_mut().fold(false, |c, v| redact_value(v) | c),
        Value::Object(map) => {
            let mut changed = false;
            let renamed: Vec<String> = map
                .keys()
                .filter(|k| matches!(redact_str(k), Cow::Owned(_)))
                .cloned()
                .collect();
            for k in renamed {
                if let Some(v) = map.remove(&k) {
                    map.insert(redact_str(&k).into_owned(), v);
                    changed = true;
                }
            }
            for (k, v) in map.iter_mut() {
                if is_sensitive_key(k) && matches!(v, Value::String(_) | Value::Number(_)) {
                    if v.as_str() != Some(REDACTED) {
                        *v = Value::String(REDACTED.into());
                        changed = true;
                    }
                } else {
                    changed |= redact_value(v);
                }
            }
            changed
        }
        _ => false,
    }
}

/// Registers a secret value the process has loaded (a connector token, an
/// SMTP password, a webhook URL): from now on [`redact_str`], and so every
/// passport, status message, Event, log line, export and console page,
/// replaces it, along with its Base64 and percent-encoded forms, wherever it
/// appears. Values shorter than [`MIN_MASKED_LEN`] characters are not masked
/// (they would hide ordinary words); surrounding whitespace is ignored.
pub fn mask_secret(value: &str) {
    masks::register(value);
}

/// Shortest secret value [`mask_secret`] masks.
pub const MIN_MASKED_LEN: usize = 4;

/// Secret values known to this process, masked by value.
mod masks {
    use std::borrow::Cow;
    use std::collections::BTreeSet;
    use std::sync::{Arc, LazyLock, RwLock};

    use base64::Engine as _;
    use regex::Regex;

    use super::{MIN_MASKED_LEN, REDACTED};

    /// More distinct values than any operator loads; past it, new values
    /// still replace the oldest so that the newest secrets are always masked.
    const MAX_VALUES: usize = 4096;

    #[derive(Default)]
    struct Masks {
        values: BTreeSet<String>,
        order: std::collections::VecDeque<String>,
        matcher: Option<Arc<Regex>>,
    }

    static MASKS: LazyLock<RwLock<Masks>> = LazyLock::new(Default::default);

    fn forms(value: &str) -> Vec<String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut out = vec![
            value.to_string(),
            b64.encode(value),
            b64.encode(value).trim_end_matches('=').to_string(),
            b64url.encode(value),
        ];
        let encoded: String = value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        out.push(encoded);
        out.retain(|f| f.chars().count() >= MIN_MASKED_LEN);
        out
    }

    pub(super) fn register(value: &str) {
        let value = value.trim();
        if value.chars().count() < MIN_MASKED_LEN || value == REDACTED {
            return;
        }
        let Ok(mut m) = MASKS.write() else { return };
        if m.values.contains(value) {
            return;
        }
        for form in forms(value) {
            if m.values.insert(form.clone()) {
                m.order.push_back(form);
            }
        }
        while m.order.len() > MAX_VALUES {
            if let Some(old) = m.order.pop_front() {
                m.values.remove(&old);
            }
        }
        // Longest first, so that a value containing another is masked whole.
        let mut all: Vec<&String> = m.values.iter().collect();
        all.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let pattern = all
            .iter()
            .map(|v| regex::escape(v))
            .collect::<Vec<_>>()
            .join("|");
        m.matcher = Regex::new(&pattern).ok().map(Arc::new);
    }

    pub(super) fn apply(text: &str) -> Cow<'_, str> {
        let matcher = match MASKS.read() {
            Ok(m) => m.matcher.clone(),
            Err(_) => None,
        };
        match matcher {
            Some(re) => match re.replace_all(text, REDACTED) {
                Cow::Borrowed(_) => Cow::Borrowed(text),
                Cow::Owned(s) => Cow::Owned(s),
            },
            None => Cow::Borrowed(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_secret_values_are_masked_whatever_their_shape() {
        // A plain random token, as a new user would put in a Secret.
        let token = "q8ZrT4mW2xVb9LpNf3Hd";
        let echoed = format!("upstream said: you sent {token} (hdr x={token})");
        assert!(
            redact_str(&echoed).contains(token),
            "not masked before it is loaded"
        );
        mask_secret(&format!("  {token}\n"));
        let out = redact_str(&echoed);
        assert!(!out.contains(token), "{out}");
        assert_eq!(out, "upstream said: you sent [redacted] (hdr x=[redacted])");
        // Its encodings too: Basic credentials and query strings.
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(token);
        assert!(!redact_str(&format!("h: {basic}")).contains(&basic));
        mask_secret("p@ss word!");
        assert!(!redact_str("u=p%40ss%20word%21").contains("p%40ss"));
        // Too short to mask without hiding ordinary words.
        mask_secret("abc");
        assert_eq!(redact_str("abc def"), "abc def");
    }

    #[test]
    fn plain_text_is_untouched() {
        for s in [
            "Prometheus error rate above 2%",
            "observed 2.7%, required < 2%",
            "registry.example.com/payment-api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "Attach rollback artifact for payment-api v2.17.9.",
            "2026-05-17T06:30:00Z",
            "https://ci.example.com/runs/42",
        ] {
            assert!(matches!(redact_str(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn bearer_tokens_are_redacted() {
        let out = redact_str("Authorization: Bearer abcdef123456");
        assert!(!out.contains("abcdef123456"), "{out}");
        assert!(out.starts_with("Authorization: "), "{out}");
    }

    #[test]
    fn secret_names_ending_in_token_are_not_flags() {
        let text = "Secret pagerduty-token not found in namespace payments";
        assert_eq!(redact_str(text), text);
        assert_eq!(
            redact_str("run --token s3cr3tvalue"),
            "run --token [redacted]"
        );
        assert!(!redact_str("--password=hunter22").contains("hunter22"));
    }

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(
            redact_str("postgres://admin:hunter2@db:5432/x"),
            "postgres://[redacted]@db:5432/x"
        );
    }

    #[test]
    fn sensitive_names() {
        for k in [
            "password",
            "db_password",
            "apiKey",
            "X-Api-Key",
            "authorization",
            "client_secret",
            "GITHUB_TOKEN",
            "pwd",
        ] {
            assert!(is_sensitive_key(k), "{k}");
        }
        for k in [
            "error_rate",
            "synced",
            "maxAgeSeconds",
            "keyId",
            "sev1_active",
        ] {
            assert!(!is_sensitive_key(k), "{k}");
        }
    }
}
