//! A small client of the OCI distribution API: what attaching an
//! attestation needs (manifests, blob uploads), with the registry
//! authentication schemes in use (anonymous, Basic, and Bearer tokens from
//! the registry's token service), bounded reads and no credential in any
//! error or log.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

/// Largest manifest or token answer read.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Manifest media types asked for.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Credentials for one registry, from a Docker config (`.dockerconfigjson`).
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, [redacted])"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken([redacted])"),
        }
    }
}

/// Registry credentials by registry host, read from a Docker config JSON
/// (`{"auths": {"<registry>": {"auth": base64("user:password")}}}`, or
/// `username`/`password`, or `identitytoken`).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    by_host: BTreeMap<String, Credential>,
}

impl Credentials {
    /// Parses a Docker config JSON. Errors never quote the document.
    pub fn from_docker_config(json: &[u8]) -> Result<Self, OciError> {
        #[derive(serde::Deserialize)]
        struct Config {
            #[serde(default)]
            auths: BTreeMap<String, Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            auth: Option<String>,
            username: Option<String>,
            password: Option<String>,
            identitytoken: Option<String>,
        }
        let config: Config = serde_json::from_slice(json).map_err(|e| {
            OciError::Credentials(format!(
                "not a Docker config JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let mut by_host = BTreeMap::new();
        for (key, entry) in config.auths {
            let credential = if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Credential::IdentityToken(token)
            } else if let (Some(username), Some(password)) = (entry.username, entry.password) {
                Credential::Basic { username, password }
            } else if let Some(auth) = entry.auth {
                let decoded = BASE64
                    .decode(auth.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        OciError::Credentials(format!(
                            "auths[{key:?}].auth is not base64 of user:password"
                        ))
                    })?;
                let (username, password) = decoded.split_once(':').ok_or_else(|| {
                    OciError::Credentials(format!(
                        "auths[{key:?}].auth is not base64 of user:password"
                    ))
                })?;
                Credential::Basic {
                    username: username.to_string(),
                    password: password.to_string(),
                }
            } else {
                continue;
            };
            by_host.insert(host_of(&key), credential);
        }
        Ok(Credentials { by_host })
    }

    /// The credential for a registry (`docker.io` also under Docker Hub's legacy key).
    pub fn get(&self, registry: &str) -> Option<&Credential> {
        self.by_host.get(registry).or_else(|| {
            matches!(registry, "docker.io" | "registry-1.docker.io")
                .then(|| self.by_host.get("index.docker.io"))
                .flatten()
        })
    }

    /// Registries with a credential.
    pub fn registries(&self) -> Vec<&str> {
        self.by_host.keys().map(String::as_str).collect()
    }
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `registry:5000` stays.
fn host_of(key: &str) -> String {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    key.split('/').next().unwrap_or(key).to_string()
}

/// What went wrong talking to a registry. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("registry credentials: {0}")]
    Credentials(String),
    #[error("{0}")]
    Reference(#[from] super::reference::RefError),
    #[error("{registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("{registry}: authentication failed: {message}")]
    Unauthorized { registry: String, message: String },
    #[error("{registry}: {what} not found")]
    NotFound { registry: String, what: String },
    #[error("the attestation cannot be attached: {0}")]
    Attestation(String),
}

/// Settings of a registry client.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) spoken to over plain HTTP, e.g. a registry
    /// on loopback. Every other registry is HTTPS.
    pub plain_http: Vec<String>,
    /// Request timeout (30 s when zero).
    pub timeout: Duration,
}

/// A registry client shared by every attachment.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    credentials: Credentials,
    options: RegistryOptions,
}

impl RegistryClient {
    pub fn new(credentials: Credentials, options: RegistryOptions) -> Result<Self, OciError> {
        let timeout = if options.timeout.is_zero() {
            Duration::from_secs(30)
        } else {
            options.timeout
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("releasepassport/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| OciError::Registry {
                registry: "-".into(),
                message: format!("building the HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            credentials,
            options,
        })
    }

    /// A session with one repository (authentication is kept for its requests).
    pub fn session(&self, registry: &str, api_host: &str, repository: &str) -> Session<'_> {
        let scheme = if self
            .options
            .plain_http
            .iter()
            .any(|h| h == registry || h == api_host)
        {
            "http"
        } else {
            "https"
        };
        Session {
            client: self,
            registry: registry.to_string(),
            base: format!("{scheme}://{api_host}"),
            repository: repository.to_string(),
            auth: None,
        }
    }
}

/// A manifest as served.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// Requests to one repository of one registry.
pub struct Session<'a> {
    client: &'a RegistryClient,
    registry: String,
    base: String,
    repository: String,
    auth: Option<HeaderValue>,
}

impl Session<'_> {
    fn fail(&self, message: impl Into<String>) -> OciError {
        OciError::Registry {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    /// Sends a request, authenticating once when the registry asks to.
    async fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(reqwest::header::HeaderName, &str)],
        body: Option<&[u8]>,
    ) -> Result<reqwest::Response, OciError> {
        for attempt in 0..2 {
            let mut request = self.client.http.request(method.clone(), url);
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            if let Some(auth) = &self.auth {
                request = request.header(AUTHORIZATION, auth.clone());
            }
            if let Some(body) = body {
                request = request.body(body.to_vec());
            }
            let response = request.send().await.map_err(|e| {
                self.fail(format!(
                    "{method} {}: {}",
                    path_of(url),
                    crate::connectors::error_chain(e)
                ))
            })?;
            if response.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                if response.status() == StatusCode::UNAUTHORIZED {
                    return Err(OciError::Unauthorized {
                        registry: self.registry.clone(),
                        message: "the registry refused the credentials (401)".into(),
                    });
                }
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            self.auth = Some(self.authenticate(&challenge).await?);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// An Authorization header answering a `WWW-Authenticate` challenge.
    async fn authenticate(&self, challenge: &str) -> Result<HeaderValue, OciError> {
        let (scheme, params) = parse_challenge(challenge);
        let credential = self.client.credentials.get(&self.registry);
        let unauthorized = |message: String| OciError::Unauthorized {
            registry: self.registry.clone(),
            message,
        };
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => match credential {
                Some(Credential::Basic { username, password }) => header(&format!(
                    "Basic {}",
                    BASE64.encode(format!("{username}:{password}"))
                )),
                _ => Err(unauthorized(
                    "the registry asks for a username and password, and none is configured for it"
                        .into(),
                )),
            },
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or_else(|| unauthorized("Bearer challenge without a realm".into()))?;
                let scope = format!("repository:{}:pull,push", self.repository);
                let mut url = reqwest::Url::parse(realm)
                    .map_err(|_| unauthorized("the token service realm is not a URL".into()))?;
                let mut request = match credential {
                    Some(Credential::IdentityToken(token)) => {
                        let mut form = vec![
                            ("grant_type", "refresh_token"),
                            ("client_id", "releasepassport"),
                            ("refresh_token", token.as_str()),
                            ("scope", scope.as_str()),
                        ];
                        if let Some(service) = params.get("service") {
                            form.push(("service", service.as_str()));
                        }
                        let body = form
                            .iter()
                            .map(|(k, v)| format!("{k}={}", urlencode(v)))
                            .collect::<Vec<_>>()
                            .join("&");
                        self.client
                            .http
                            .post(url)
                            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(body)
                    }
                    other => {
                        {
                            let mut q = url.query_pairs_mut();
                            if let Some(service) = params.get("service") {
                                q.append_pair("service", service);
                            }
                            q.append_pair("scope", &scope);
                        }
                        let mut request = self.client.http.get(url);
                        if let Some(Credential::Basic { username, password }) = other {
                            request = request.basic_auth(username, Some(password));
                        }
                        request
                    }
                };
                request = request.header(ACCEPT, "application/json");
                let response = request.send().await.map_err(|e| {
                    unauthorized(format!(
                        "token service: {}",
                        crate::connectors::error_chain(e)
                    ))
                })?;
                if !response.status().is_success() {
                    return Err(unauthorized(format!(
                        "the token service answered {}",
                        response.status()
                    )));
                }
                let body = read_bounded(response, MAX_BODY)
                    .await
                    .map_err(|m| unauthorized(format!("token service: {m}")))?;
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let token: Token = serde_json::from_slice(&body).map_err(|_| {
                    unauthorized("the token service answered something other than a token".into())
                })?;
                let token = token
                    .token
                    .or(token.access_token)
                    .ok_or_else(|| unauthorized("the token service answered no token".into()))?;
                header(&format!("Bearer {token}"))
            }
            _ => Err(unauthorized(format!(
                "unsupported authentication scheme {scheme:?}"
            ))),
        }
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }

    /// The manifest at a tag or digest, or `None` when there is none.
    pub async fn manifest(&mut self, reference: &str) -> Result<Option<Manifest>, OciError> {
        let url = self.url("manifests", reference);
        let response = self
            .send(Method::GET, &url, &[(ACCEPT, MANIFEST_TYPES)], None)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self.fail(format!("GET manifest {reference}: {}", response.status())));
        }
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_string();
        let bytes = read_bounded(response, MAX_BODY)
            .await
            .map_err(|m| self.fail(format!("manifest {reference}: {m}")))?;
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(self.fail(format!(
                "manifest {reference}: the registry served content with digest {digest}"
            )));
        }
        Ok(Some(Manifest {
            media_type,
            digest,
            bytes,
        }))
    }

    /// Uploads a blob unless the registry has it; returns its digest.
    pub async fn push_blob(&mut self, bytes: &[u8]) -> Result<String, OciError> {
        let digest = sha256_digest(bytes);
        let url = self.url("blobs", &digest);
        if self.send(Method::HEAD, &url, &[], None).await?.status() == StatusCode::OK {
            return Ok(digest);
        }
        let start = format!("{}/v2/{}/blobs/uploads/", self.base, self.repository);
        let response = self.send(Method::POST, &start, &[], None).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.fail(format!("starting a blob upload: {}", response.status())));
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.fail("the blob upload has no Location"))?;
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={}", urlencode(&digest));
        let response = self
            .send(
                Method::PUT,
                &put,
                &[(CONTENT_TYPE, "application/octet-stream")],
                Some(bytes),
            )
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.fail(format!("uploading blob {digest}: {}", response.status())));
        }
        Ok(digest)
    }

    /// Stores a manifest under a tag; returns its digest.
    pub async fn put_manifest(
        &mut self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, OciError> {
        let url = self.url("manifests", tag);
        let response = self
            .send(
                Method::PUT,
                &url,
                &[(CONTENT_TYPE, media_type)],
                Some(bytes),
            )
            .await?;
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            let body = read_bounded(response, 4096).await.unwrap_or_default();
            return Err(self.fail(format!(
                "storing manifest {tag}: {status} {}",
                crate::passport::redact::redact_str(&String::from_utf8_lossy(&body))
            )));
        }
        Ok(sha256_digest(bytes))
    }
}

/// `sha256:<hex>` of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        crate::passport::digest::hex(&Sha256::digest(bytes))
    )
}

fn header(value: &str) -> Result<HeaderValue, OciError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        OciError::Credentials("the credential holds characters a header cannot carry".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The path of a URL, for messages (no query: upload URLs carry state).
fn path_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Bearer realm="…",service="…",scope="…"` → ("Bearer", params).
fn parse_challenge(header: &str) -> (String, BTreeMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    c => v.push(c),
                }
            }
            v
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect()
        };
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    (scheme.to_string(), params)
}

async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(format!("answer larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(crate::connectors::error_chain)?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("answer larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_with_commas_inside_quotes() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://auth.example.com/token");
        assert_eq!(p["scope"], "repository:team/app:pull,push");
        let (scheme, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            (scheme.as_str(), p["realm"].as_str()),
            ("Basic", "Registry Realm")
        );
    }

    #[test]
    fn docker_config_forms() {
        let json = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
            "registry.example.com": {"username": "ci", "password": "s3cret"},
            "ghcr.example.com": {"identitytoken": "refresh"},
            "empty.example.com": {}}}"#;
        let c = Credentials::from_docker_config(json).unwrap();
        assert_eq!(
            c.get("docker.io"),
            Some(&Credential::Basic {
                username: "user".into(),
                password: "pass".into()
            })
        );
        assert!(matches!(
            c.get("registry.example.com"),
            Some(Credential::Basic { .. })
        ));
        assert!(matches!(
            c.get("ghcr.example.com"),
            Some(Credential::IdentityToken(_))
        ));
        assert_eq!(c.get("empty.example.com"), None);
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn a_bad_docker_config_does_not_echo_it() {
        let err =
            Credentials::from_docker_config(b"{\"auths\": {\"r\": {\"auth\": \"hunter2!!\"}}}")
                .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Credentials::from_docker_config(b"password=hunter2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
