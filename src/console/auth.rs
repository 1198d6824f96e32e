//! Who is asking, and what they may see: a bearer token the user already has
//! (ServiceAccount or OIDC) is checked with a `TokenReview`; every page asks
//! the apiserver with a `SubjectAccessReview` whether that user may read what
//! it shows, so the console never shows more than `kubectl` would.
//!
//! A session keeps the reviewed identity (name, uid, groups, extra) and, in
//! memory only, the token to act with ([`super::acting`]) under a random id
//! carried by an HttpOnly, Secure, SameSite=Strict cookie, plus a CSRF token
//! for the forms.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use sha2::Digest;

/// The API group of the project's resources.
pub const GROUP: &str = "releasepassport.io";

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "rp_session";
/// Name of the cookie that protects the login form against cross-site posts.
pub const LOGIN_COOKIE: &str = "rp_login";
/// Name of the cookie that binds an OpenID Connect sign-in to the browser
/// that started it (its `state`).
pub const OIDC_COOKIE: &str = "rp_oidc";

/// How long an access answer is reused within a session.
const ACCESS_TTL: Duration = Duration::from_secs(30);
/// How long a bearer-header identity is reused before it is reviewed again.
const BEARER_TTL: Duration = Duration::from_secs(60);
/// Sessions kept at most; the oldest are dropped beyond it.
const SESSION_LIMIT: usize = 10_000;

/// Why a login or an access check failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token was not accepted by the Kubernetes API server{}", .0.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected(Option<String>),
    #[error("asking the Kubernetes API server failed: {0}")]
    Api(String),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// An authenticated user, as the apiserver reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

type AccessKey = (String, &'static str, &'static str, String);

/// One signed-in user.
pub struct Session {
    pub user: User,
    /// The person's own token, to act as them (see [`super::acting`]); in
    /// memory only, for the session's life.
    pub credential: Option<super::acting::Credential>,
    /// Token the forms must echo.
    pub csrf: String,
    /// Signed in through the OpenID Connect provider ([`super::oidc`]):
    /// logout ends the provider's session too.
    pub via_oidc: bool,
    expires: Instant,
    access: Mutex<HashMap<AccessKey, (bool, Instant)>>,
}

impl Session {
    fn new(
        user: User,
        credential: Option<super::acting::Credential>,
        ttl: Duration,
    ) -> Result<Self, AuthError> {
        Ok(Self {
            user,
            credential,
            csrf: random_token()?,
            via_oidc: false,
            expires: Instant::now() + ttl,
            access: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, key: &AccessKey) -> Option<bool> {
        let map = self.access.lock().ok()?;
        map.get(key)
            .filter(|(_, at)| at.elapsed() < ACCESS_TTL)
            .map(|(ok, _)| *ok)
    }

    fn remember(&self, key: AccessKey, ok: bool) {
        if let Ok(mut map) = self.access.lock() {
            map.insert(key, (ok, Instant::now()));
        }
    }
}

/// A random URL-safe token of 256 bits.
pub fn random_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(B64.encode(bytes))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reviews tokens and access against the apiserver, and keeps sessions.
pub struct Auth {
    client: Client,
    ttl: Duration,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Auth {
    pub fn new(client: Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Session lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Checks a token with a TokenReview.
    pub async fn review(&self, token: &str) -> Result<User, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Rejected(Some("no token given".into())));
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: None,
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let reviewed = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                AuthError::Api(crate::passport::redact::redact_str(&e.to_string()).into_owned())
            })?;
        let status = reviewed.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            // The apiserver's error never echoes the token; redact anyway.
            let reason = status
                .error
                .filter(|e| !e.is_empty())
                .map(|e| crate::passport::redact::redact_str(&e).into_owned());
            return Err(AuthError::Rejected(reason));
        }
        let info = status.user.unwrap_or_default();
        let name = info.username.unwrap_or_default();
        if name.is_empty() {
            return Err(AuthError::Rejected(Some(
                "the token has no user name".into(),
            )));
        }
        Ok(User {
            name,
            uid: info.uid,
            groups: info.groups.unwrap_or_default(),
            extra: info.extra.unwrap_or_default(),
        })
    }

    /// Starts a session for a reviewed user and the token they signed in
    /// with (`via_oidc`: an ID token from the console's OpenID Connect
    /// sign-in); returns its id.
    pub fn start(
        &self,
        user: User,
        token: &str,
        via_oidc: bool,
    ) -> Result<(String, Arc<Session>), AuthError> {
        let id = random_token()?;
        let ttl = session_ttl(self.ttl, token, jiff::Timestamp::now());
        let credential = super::acting::Credential::new(token);
        let mut session = Session::new(user, Some(credential), ttl)?;
        session.via_oidc = via_oidc;
        let session = Arc::new(session);
        if let Ok(mut map) = self.sessions.lock() {
            map.retain(|_, s| s.expires > Instant::now());
            if map.len() >= SESSION_LIMIT {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
            map.insert(id.clone(), session.clone());
        }
        Ok((id, session))
    }

    /// The live session with this id.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        let map = self.sessions.lock().ok()?;
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        if let Ok(mut map) = self.sessions.lock() {
            map.remove(id);
        }
    }

    /// A short-lived session for a request that carries `Authorization:
    /// Bearer`: reviewed once a minute per token (keyed by its hash).
    pub async fn bearer(&self, token: &str) -> Result<Arc<Session>, AuthError> {
        let key = format!(
            "bearer:{}",
            B64.encode(sha2::Sha256::digest(token.as_bytes()))
        );
        if let Some(s) = self.session(&key) {
            return Ok(s);
        }
        let user = self.review(token).await?;
        let credential = super::acting::Credential::new(token);
        let ttl = session_ttl(BEARER_TTL, token, jiff::Timestamp::now());
        let session = Arc::new(Session::new(user, Some(credential), ttl)?);
        if let Ok(mut map) = self.sessions.lock() {
            map.insert(key, session.clone());
        }
        Ok(session)
    }

    /// Whether the session's user may `verb` the `resource` of the project
    /// in `namespace` (`""`: in every namespace).
    pub async fn can(
        &self,
        session: &Session,
        namespace: &str,
        verb: &'static str,
        resource: &'static str,
    ) -> bool {
        self.can_on(session, namespace, verb, resource, "").await
    }

    /// Whether the session's user may `verb` the object `name` of
    /// `resource` in `namespace` (`name` `""`: any object), e.g. `approve`
    /// on `releasegates/payment-api-production`.
    pub async fn can_on(
        &self,
        session: &Session,
        namespace: &str,
        verb: &'static str,
        resource: &'static str,
        name: &str,
    ) -> bool {
        let key = (namespace.to_string(), verb, resource, name.to_string());
        if let Some(ok) = session.cached(&key) {
            return ok;
        }
        let ok = match self
            .review_access(&session.user, namespace, verb, resource, name)
            .await
        {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, user = %session.user.name, "console: access review failed; denying");
                return false;
            }
        };
        session.remember(key, ok);
        ok
    }

    /// The namespaces among `candidates` where the user may `verb` `resource`.
    pub async fn visible(
        &self,
        session: &Session,
        candidates: BTreeSet<String>,
        verb: &'static str,
        resource: &'static str,
    ) -> BTreeSet<String> {
        if self.can(session, "", verb, resource).await {
            return candidates;
        }
        let checks = candidates.into_iter().map(|ns| async move {
            let ok = self.can(session, &ns, verb, resource).await;
            ok.then_some(ns)
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn review_access(
        &self,
        user: &User,
        namespace: &str,
        verb: &str,
        resource: &str,
        name: &str,
    ) -> Result<bool, AuthError> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: user.uid.clone(),
                groups: Some(user.groups.clone()),
                extra: Some(user.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
                    verb: Some(verb.to_string()),
                    group: Some(GROUP.to_string()),
                    resource: Some(resource.to_string()),
                    name: (!name.is_empty()).then(|| name.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Api(e.to_string()))?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}

/// When a JWT (an OpenID Connect ID token, a ServiceAccount token) says it
/// expires: its payload's `exp`. Read without verifying anything — the
/// apiserver has verified the token — and used only to end a session
/// earlier, never to trust the token longer.
pub fn token_expiry(token: &str) -> Option<jiff::Timestamp> {
    let mut parts = token.trim().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = B64.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    jiff::Timestamp::from_second(claims.get("exp")?.as_i64()?).ok()
}

/// A session's lifetime: `limit`, or less when the token it keeps expires
/// sooner (the session cannot act with an expired token).
pub fn session_ttl(limit: Duration, token: &str, now: jiff::Timestamp) -> Duration {
    match token_expiry(token) {
        Some(exp) => {
            let left = exp.duration_since(now);
            let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
            limit.min(left)
        }
        None => limit,
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the console's cookies.
pub fn set_cookie(name: &str, value: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        max_age.as_secs()
    )
}

/// A `Set-Cookie` value for a cookie that must come back on the identity
/// provider's redirect to the console, a cross-site navigation that
/// `SameSite=Strict` cookies do not follow.
pub fn set_lax_cookie(name: &str, value: &str, max_age: Duration) -> String {
    set_cookie(name, value, max_age).replace("SameSite=Strict", "SameSite=Lax")
}

/// A `Set-Cookie` value that removes a cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; rp_session=abc"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("rp_login=xyz"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "rp"), None);
    }

    #[test]
    fn session_cookie_is_locked_down() {
        let c = set_cookie(SESSION_COOKIE, "v", Duration::from_secs(60));
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/console",
            "Max-Age=60",
        ] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        assert!(clear_cookie(SESSION_COOKIE).contains("Max-Age=0"));
    }

    #[test]
    fn a_session_ends_when_its_token_expires() {
        let now = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let jwt = |claims: &str| format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", B64.encode(claims));
        let hour = Duration::from_secs(3600);
        let soon = jwt(r#"{"sub":"alice","exp":1800000600}"#);
        assert_eq!(
            token_expiry(&soon).map(|t| t.as_second()),
            Some(1_800_000_600)
        );
        assert_eq!(session_ttl(hour, &soon, now), Duration::from_secs(600));
        let later = jwt(r#"{"exp":1900000000}"#);
        assert_eq!(
            session_ttl(hour, &later, now),
            hour,
            "never longer than the limit"
        );
        let expired = jwt(r#"{"exp":1700000000}"#);
        assert_eq!(session_ttl(hour, &expired, now), Duration::ZERO);
        // Static tokens and anything that is not a JWT keep the limit.
        for other in [
            "31ada4fd-adec-460c-809a-9e56ceb75269",
            "a.b",
            "a.%%%.c",
            &jwt("[]"),
        ] {
            assert_eq!(session_ttl(hour, other, now), hour, "{other}");
        }
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        let a = random_token().expect("random");
        let b = random_token().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
