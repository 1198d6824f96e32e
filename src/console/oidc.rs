//! Sign-in with the organisation's OpenID Connect provider: the
//! authorization-code flow with PKCE (S256), `state` bound to the browser
//! by a cookie, `nonce` bound to the ID token, the issuer checked in the
//! discovery document and in the authorization response (RFC 9207). The ID
//! token the provider returns is then reviewed by the apiserver (a
//! `TokenReview`: the apiserver is configured for the same issuer and
//! audience), so the apiserver's authenticator, not the console, decides who
//! the person is; from then on the session acts with that token exactly like
//! a pasted one ([`super::acting`]).
//!
//! Logout ends the session here and, through the provider's
//! `end_session_endpoint` (RP-initiated logout), at the provider too.
//!
//! Nothing secret leaves memory: the client secret (for confidential
//! clients) is read from a file and masked, ID tokens are kept only in the
//! session, and provider errors are redacted before they are shown.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use sha2::Digest;

use crate::connectors::rest::{BodyError, read_bounded};

/// Largest discovery document or token answer read.
const MAX_BODY: usize = 256 * 1024;
/// How long a started sign-in may take at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Sign-ins in flight kept at most; the oldest are dropped beyond it.
const PENDING_LIMIT: usize = 10_000;
/// How long the discovery document is reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Path of the redirect URI under the console's public URL.
pub const CALLBACK_PATH: &str = "/console/oidc/callback";
/// Where the provider sends the browser after logout.
pub const LOGGED_OUT_PATH: &str = "/console/login?logged_out=1";

/// What the operator configured.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// The issuer URL, exactly as the provider and the apiserver name it.
    pub issuer: String,
    /// The client id; also the audience the apiserver accepts.
    pub client_id: String,
    /// File with the client secret of a confidential client (a mounted
    /// Secret); `None`: a public client (PKCE only).
    pub client_secret_file: Option<PathBuf>,
    /// PEM file of the CAs that sign the provider's certificate, added to
    /// the system's.
    pub ca_file: Option<PathBuf>,
    /// Scopes asked for (`openid` is always included).
    pub scopes: Vec<String>,
    /// The console's public URL (`https://host`), for the redirect URIs.
    pub console_url: String,
    /// How long a request to the provider may take.
    pub timeout: Duration,
}

/// Why a sign-in through the provider failed. Messages are shown to the
/// person on the sign-in page; they never carry a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider {issuer} could not be reached: {reason}")]
    Unreachable { issuer: String, reason: String },
    #[error("the identity provider answered unexpectedly: {0}")]
    Protocol(String),
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("this sign-in was not started here or has expired; please sign in again")]
    UnknownState,
    #[error("the ID token does not belong to this sign-in: {0}")]
    Mismatch(&'static str),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("{0}")]
    Config(String),
}

/// The parts of the provider's discovery document the console uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// A sign-in that went to the provider and has not come back yet.
struct Pending {
    verifier: String,
    nonce: String,
    started: Instant,
}

/// A started sign-in: where to send the browser, and the `state` the
/// browser's cookie must carry back.
#[derive(Debug)]
pub struct Begun {
    pub url: String,
    pub state: String,
}

/// The query of the provider's redirect back to the console.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// What the Settings page shows (never the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    pub confidential: bool,
}

/// The console's OpenID Connect client; one per console.
pub struct Oidc {
    http: reqwest::Client,
    config: OidcConfig,
    client_secret: Option<String>,
    redirect_uri: String,
    post_logout_uri: String,
    discovery: tokio::sync::Mutex<Option<(Discovery, Instant)>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Oidc {
    /// Checks the configuration, reads the client secret and the CA file,
    /// and builds the HTTP client. The provider itself is asked only when
    /// someone signs in (it may start after the operator).
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        let issuer = config.issuer.trim_end_matches('/');
        if !issuer.starts_with("https://") {
            return Err(OidcError::Config(format!(
                "--console-oidc-issuer {issuer}: must be an https URL (the apiserver trusts only https issuers)"
            )));
        }
        let console_url = config.console_url.trim_end_matches('/').to_string();
        if !(console_url.starts_with("https://") || console_url.starts_with("http://")) {
            return Err(OidcError::Config(format!(
                "--console-url {console_url}: must be an http(s) URL (the redirect URI is built from it)"
            )));
        }
        let client_secret = match &config.client_secret_file {
            Some(path) => {
                let secret = std::fs::read_to_string(path)
                    .map_err(|e| {
                        OidcError::Config(format!(
                            "--console-oidc-client-secret-file {}: {e}",
                            path.display()
                        ))
                    })?
                    .trim()
                    .to_string();
                crate::passport::redact::mask_secret(&secret);
                Some(secret).filter(|s| !s.is_empty())
            }
            None => None,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "releasepassport-console/",
                env!("CARGO_PKG_VERSION")
            ));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                OidcError::Config(format!("--console-oidc-ca-file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                OidcError::Config(format!(
                    "--console-oidc-ca-file {}: not a PEM bundle: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(OidcError::Config(format!(
                    "--console-oidc-ca-file {}: no certificate in it",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| OidcError::Config(format!("building the OIDC client: {e}")))?;
        let config = OidcConfig {
            issuer: issuer.to_string(),
            console_url: console_url.clone(),
            ..config
        };
        Ok(Self {
            http,
            redirect_uri: format!("{console_url}{CALLBACK_PATH}"),
            post_logout_uri: format!("{console_url}{LOGGED_OUT_PATH}"),
            config,
            client_secret,
            discovery: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration, secret-safe.
    pub fn describe(&self) -> Described {
        Described {
            issuer: self.config.issuer.clone(),
            client_id: self.config.client_id.clone(),
            scopes: self.scopes().join(" "),
            confidential: self.client_secret.is_some(),
        }
    }

    /// The issuer's host, for the sign-in button.
    pub fn issuer_host(&self) -> &str {
        let rest = self
            .config
            .issuer
            .strip_prefix("https://")
            .unwrap_or(&self.config.issuer);
        rest.split('/').next().unwrap_or(rest)
    }

    fn scopes(&self) -> Vec<String> {
        let mut scopes = vec!["openid".to_string()];
        for s in &self.config.scopes {
            for s in s.split([' ', ',']).filter(|s| !s.is_empty()) {
                if !scopes.iter().any(|have| have == s) {
                    scopes.push(s.to_string());
                }
            }
        }
        scopes
    }

    /// The provider's discovery document, fetched once an hour (and again
    /// after a failure).
    async fn discovery(&self) -> Result<Discovery, OidcError> {
        let mut cached = self.discovery.lock().await;
        if let Some((d, at)) = cached.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(d.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer);
        let response = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let body = self.json_body(response).await?;
        let d: Discovery = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Protocol(format!("{url}: not a discovery document: {e}")))?;
        if d.issuer.trim_end_matches('/') != self.config.issuer {
            return Err(OidcError::Protocol(format!(
                "the discovery document names the issuer {}, not {}",
                d.issuer, self.config.issuer
            )));
        }
        *cached = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    fn unreachable(&self, e: reqwest::Error) -> OidcError {
        OidcError::Unreachable {
            issuer: self.config.issuer.clone(),
            reason: crate::connectors::error_chain(e),
        }
    }

    /// A JSON body of a successful answer, bounded; an error answer becomes
    /// a message with the provider's `error`/`error_description`.
    async fn json_body(&self, response: reqwest::Response) -> Result<Vec<u8>, OidcError> {
        let status = response.status();
        let body = read_bounded(response, MAX_BODY)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => {
                    OidcError::Protocol(format!("an answer larger than {MAX_BODY} bytes"))
                }
                BodyError::Read(e) => self.unreachable(e),
            })?;
        if status.is_success() {
            return Ok(body);
        }
        let reason = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .map(|v| {
                [v.get("error"), v.get("error_description")]
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(": ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(OidcError::Refused(
            crate::passport::redact::redact_str(&reason).into_owned(),
        ))
    }

    /// Starts a sign-in: remembers a PKCE verifier and a nonce under a new
    /// `state`, and returns the provider's authorization URL.
    pub async fn begin(&self) -> Result<Begun, OidcError> {
        let d = self.discovery().await?;
        let state = random()?;
        let verifier = random()?;
        let nonce = random()?;
        let challenge = B64.encode(sha2::Sha256::digest(verifier.as_bytes()));
        let scope = self.scopes().join(" ");
        let url = reqwest::Url::parse_with_params(
            &d.authorization_endpoint,
            &[
                ("response_type", "code"),
                ("client_id", self.config.client_id.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("scope", scope.as_str()),
                ("state", state.as_str()),
                ("nonce", nonce.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .map_err(|e| {
            OidcError::Protocol(format!(
                "authorization_endpoint {}: {e}",
                d.authorization_endpoint
            ))
        })?;
        self.remember(
            state.clone(),
            Pending {
                verifier,
                nonce,
                started: Instant::now(),
            },
        );
        Ok(Begun {
            url: url.into(),
            state,
        })
    }

    fn remember(&self, state: String, pending: Pending) {
        if let Ok(mut map) = self.pending.lock() {
            map.retain(|_, p| p.started.elapsed() < PENDING_TTL);
            if map.len() >= PENDING_LIMIT {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, p)| p.started)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
            map.insert(state, pending);
        }
    }

    /// Takes the sign-in started under `state` (once: a replayed callback
    /// finds nothing).
    fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self.pending.lock().ok()?;
        map.remove(state)
            .filter(|p| p.started.elapsed() < PENDING_TTL)
    }

    /// Finishes a sign-in: checks the provider's answer against the sign-in
    /// this browser started (`browser_state`: its cookie), redeems the code
    /// with the PKCE verifier, and returns the ID token, its nonce, issuer
    /// and audience checked. The apiserver reviews the token next.
    pub async fn finish(&self, cb: &Callback, browser_state: &str) -> Result<String, OidcError> {
        if let Some(error) = &cb.error {
            let reason = match &cb.error_description {
                Some(d) => format!("{error}: {d}"),
                None => error.clone(),
            };
            return Err(OidcError::Refused(
                crate::passport::redact::redact_str(&reason).into_owned(),
            ));
        }
        let state = cb.state.as_deref().unwrap_or_default();
        if state.is_empty()
            || browser_state.is_empty()
            || !super::auth::same_secret(state, browser_state)
        {
            return Err(OidcError::UnknownState);
        }
        let pending = self.take(state).ok_or(OidcError::UnknownState)?;
        if let Some(iss) = &cb.iss
            && iss.trim_end_matches('/') != self.config.issuer
        {
            return Err(OidcError::Mismatch(
                "the authorization response names another issuer",
            ));
        }
        let code = cb
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OidcError::Protocol("the redirect carries no code".into()))?;
        let id_token = self.redeem(code, &pending.verifier).await?;
        check_claims(
            &id_token,
            &self.config.issuer,
            &self.config.client_id,
            &pending.nonce,
        )?;
        Ok(id_token)
    }

    /// The token request (authorization code + PKCE verifier); the client
    /// secret, for a confidential client, as HTTP Basic (RFC 6749 §2.3.1).
    async fn redeem(&self, code: &str, verifier: &str) -> Result<String, OidcError> {
        let d = self.discovery().await?;
        let body = form_body(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("client_id", &self.config.client_id),
            ("code_verifier", verifier),
        ]);
        let mut request = self
            .http
            .post(&d.token_endpoint)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some(secret) = &self.client_secret {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                basic_credentials(&self.config.client_id, secret),
            );
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let body = self.json_body(response).await?;
        #[derive(Deserialize)]
        struct TokenAnswer {
            id_token: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Protocol(format!("the token answer is not JSON: {e}")))?;
        answer.id_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            OidcError::Protocol("the token answer has no id_token (is `openid` a scope?)".into())
        })
    }

    /// Where to send the browser to end the provider's session too (its
    /// `end_session_endpoint`); `None` when the provider has none.
    pub async fn logout_url(&self, id_token: &str) -> Option<String> {
        let d = match self.discovery().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "console: the provider's logout endpoint is unknown; signed out here only");
                return None;
            }
        };
        let endpoint = d.end_session_endpoint?;
        reqwest::Url::parse_with_params(
            &endpoint,
            &[
                ("id_token_hint", id_token),
                ("client_id", self.config.client_id.as_str()),
                ("post_logout_redirect_uri", self.post_logout_uri.as_str()),
            ],
        )
        .ok()
        .map(String::from)
    }
}

/// A random URL-safe value of 256 bits (state, nonce, PKCE verifier: 43
/// characters, within RFC 7636's 43..128).
fn random() -> Result<String, OidcError> {
    super::auth::random_token().map_err(|e| OidcError::Random(e.to_string()))
}

/// `application/x-www-form-urlencoded` pairs.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&form_encode(k));
        out.push('=');
        out.push_str(&form_encode(v));
    }
    out
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Basic base64(urlencode(id):urlencode(secret))`, as RFC 6749 §2.3.1 says.
fn basic_credentials(client_id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(client_id), form_encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Checks an ID token's `iss`, `aud` and `nonce` against this sign-in. The
/// signature and expiry are the apiserver's to verify (TokenReview, next);
/// these checks bind the token to the sign-in this browser started, so a
/// token obtained elsewhere cannot be slipped in.
pub fn check_claims(
    id_token: &str,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> Result<(), OidcError> {
    let mut parts = id_token.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(p), Some(_), None) if p.len() <= 64 * 1024 => p,
        _ => return Err(OidcError::Mismatch("the ID token is not a JWT")),
    };
    let claims: serde_json::Value = B64
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(OidcError::Mismatch("the ID token's claims are not JSON"))?;
    let iss = claims
        .get("iss")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if iss.trim_end_matches('/') != issuer {
        return Err(OidcError::Mismatch("another issuer"));
    }
    let audience = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == client_id,
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience {
        return Err(OidcError::Mismatch("another audience"));
    }
    let got = claims
        .get("nonce")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if got.is_empty() || !super::auth::same_secret(got, nonce) {
        return Err(OidcError::Mismatch("another nonce"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            B64.encode(claims.to_string())
        )
    }

    const ISS: &str = "https://idp.example.test";

    #[test]
    fn an_id_token_must_carry_this_sign_ins_issuer_audience_and_nonce() {
        let ok = jwt(serde_json::json!({"iss": ISS, "aud": "console", "nonce": "n1"}));
        check_claims(&ok, ISS, "console", "n1").expect("accepted");
        let many = jwt(serde_json::json!({"iss": ISS, "aud": ["other", "console"], "nonce": "n1"}));
        check_claims(&many, ISS, "console", "n1").expect("one of several audiences");
        for (token, why) in [
            (
                jwt(
                    serde_json::json!({"iss": "https://evil.test", "aud": "console", "nonce": "n1"}),
                ),
                "another issuer",
            ),
            (
                jwt(serde_json::json!({"iss": ISS, "aud": "other", "nonce": "n1"})),
                "another audience",
            ),
            (
                jwt(serde_json::json!({"iss": ISS, "aud": "console", "nonce": "n2"})),
                "another nonce",
            ),
            (
                jwt(serde_json::json!({"iss": ISS, "aud": "console"})),
                "another nonce",
            ),
            ("not-a-jwt".to_string(), "the ID token is not a JWT"),
            ("a.%%%.c".to_string(), "the ID token's claims are not JSON"),
        ] {
            match check_claims(&token, ISS, "console", "n1") {
                Err(OidcError::Mismatch(m)) => assert_eq!(m, why, "{token}"),
                other => panic!("{token}: {other:?}"),
            }
        }
    }

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: format!("{ISS}/"),
            client_id: "release-passport-console".into(),
            client_secret_file: None,
            ca_file: None,
            scopes: vec!["email groups".into(), "openid".into()],
            console_url: "https://rp.example.test/".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn configuration_is_checked_and_described_without_secrets() {
        let dir = tempfile::tempdir().expect("dir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cr3t-client-secret-value\n").expect("write");
        let oidc = Oidc::new(OidcConfig {
            client_secret_file: Some(secret),
            ..config()
        })
        .expect("valid");
        assert_eq!(
            oidc.describe(),
            Described {
                issuer: ISS.into(),
                client_id: "release-passport-console".into(),
                scopes: "openid email groups".into(),
                confidential: true,
            }
        );
        assert_eq!(
            oidc.redirect_uri,
            "https://rp.example.test/console/oidc/callback"
        );
        assert_eq!(oidc.issuer_host(), "idp.example.test");
        assert!(
            !crate::passport::redact::redact_str("x s3cr3t-client-secret-value y")
                .contains("s3cr3t"),
            "the client secret is masked everywhere"
        );
        for (bad, says) in [
            (
                OidcConfig {
                    issuer: "http://idp.example.test".into(),
                    ..config()
                },
                "must be an https URL",
            ),
            (
                OidcConfig {
                    console_url: "rp.example.test".into(),
                    ..config()
                },
                "--console-url",
            ),
            (
                OidcConfig {
                    ca_file: Some(dir.path().join("missing.pem")),
                    ..config()
                },
                "--console-oidc-ca-file",
            ),
        ] {
            match Oidc::new(bad) {
                Err(e) => assert!(e.to_string().contains(says), "{e}"),
                Ok(_) => panic!("accepted a bad configuration ({says})"),
            }
        }
    }

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        assert_eq!(
            basic_credentials("a b", "p:ss&"),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("a+b:p%3Ass%26")
            )
        );
        assert_eq!(
            form_body(&[("redirect_uri", "http://h/cb?x=1"), ("code", "a b")]),
            "redirect_uri=http%3A%2F%2Fh%2Fcb%3Fx%3D1&code=a+b"
        );
    }

    #[tokio::test]
    async fn a_callback_must_come_back_to_the_browser_that_started_it() {
        let oidc = Oidc::new(config()).expect("valid");
        oidc.remember(
            "state-1".into(),
            Pending {
                verifier: "v".into(),
                nonce: "n".into(),
                started: Instant::now(),
            },
        );
        let cb = Callback {
            code: Some("code".into()),
            state: Some("state-1".into()),
            ..Default::default()
        };
        // Another browser (its cookie names another state, or none).
        for cookie in ["state-2", ""] {
            assert!(matches!(
                oidc.finish(&cb, cookie).await,
                Err(OidcError::UnknownState)
            ));
        }
        // The provider said no: its reason, redacted, is shown.
        let refused = Callback {
            error: Some("access_denied".into()),
            error_description: Some("user cancelled".into()),
            ..Default::default()
        };
        match oidc.finish(&refused, "state-1").await {
            Err(OidcError::Refused(m)) => assert_eq!(m, "access_denied: user cancelled"),
            other => panic!("{other:?}"),
        }
        // Another issuer in the response (RFC 9207): refused, and the
        // sign-in is used up.
        let mixed = Callback {
            iss: Some("https://evil.test".into()),
            ..cb
        };
        assert!(matches!(
            oidc.finish(&mixed, "state-1").await,
            Err(OidcError::Mismatch(_))
        ));
        let replay = Callback { iss: None, ..mixed };
        assert!(matches!(
            oidc.finish(&replay, "state-1").await,
            Err(OidcError::UnknownState)
        ));
    }

    #[test]
    fn scopes_always_start_with_openid_and_are_not_repeated() {
        let oidc = Oidc::new(OidcConfig {
            scopes: vec!["groups,email".into(), "email".into()],
            ..config()
        })
        .expect("valid");
        assert_eq!(oidc.scopes(), ["openid", "groups", "email"]);
    }
}
