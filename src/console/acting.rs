//! Acting as the signed-in person: the console creates approvals (and, as
//! they land, re-run requests and comments) with a Kubernetes client that
//! carries **that person's own bearer token** and nothing of the
//! operator's — no client certificate, no token file, no exec plugin, no
//! impersonation. The apiserver's RBAC and the trust model's admission
//! policies then decide exactly as they do for `kubectl`.
//!
//! The token lives in the replica's memory for the session only: it is
//! never written, logged or sent back to the browser ([`Credential`]'s
//! `Debug` prints `[redacted]`).

use kube::Client;
use kube::config::AuthInfo;

/// A person's bearer token (a ServiceAccount or static token, or an OpenID
/// Connect ID token), kept for the session.
#[derive(Clone)]
pub struct Credential(String);

impl Credential {
    pub fn new(token: &str) -> Self {
        Self(token.trim().to_string())
    }

    /// The token itself, for the one place that must send it on: the
    /// `id_token_hint` of an OpenID Connect logout.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential([redacted])")
    }
}

/// Why a client for the person could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ActingError {
    #[error("this session has no credential to act with; sign in again")]
    NoCredential,
    #[error("building a client for the signed-in user: {0}")]
    Client(String),
}

/// The operator's connection settings (server URL, CA, timeouts) with the
/// person's token as the only credential.
pub fn config_for(
    base: &kube::Config,
    credential: &Credential,
) -> Result<kube::Config, ActingError> {
    let auth: AuthInfo = serde_json::from_value(serde_json::json!({ "token": credential.0 }))
        .map_err(|e| ActingError::Client(e.to_string()))?;
    let mut config = base.clone();
    config.auth_info = auth;
    // Headers configured for the operator (none by default) are its own.
    config.headers.clear();
    Ok(config)
}

/// A client that acts as the person.
pub fn client_for(
    base: &kube::Config,
    credential: Option<&Credential>,
) -> Result<Client, ActingError> {
    let credential = credential.ok_or(ActingError::NoCredential)?;
    Client::try_from(config_for(base, credential)?).map_err(|e| ActingError::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator_config() -> kube::Config {
        let mut c = kube::Config::new("https://127.0.0.1:6443".parse().expect("uri"));
        c.auth_info = serde_json::from_value(serde_json::json!({
            "client-certificate-data": "b3BlcmF0b3I=",
            "client-key-data": "b3BlcmF0b3I=",
            "tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "as": "system:admin",
            "as-groups": ["system:masters"]
        }))
        .expect("auth info");
        c.root_cert = Some(vec![b"ca".to_vec()]);
        c
    }

    #[test]
    fn the_person_s_token_is_the_only_credential() {
        let base = operator_config();
        let c = config_for(&base, &Credential::new(" person-token \n")).expect("config");
        let auth = serde_json::to_value(&c.auth_info).expect("json");
        let object = auth.as_object().expect("object");
        let keys: Vec<&String> = object.keys().collect();
        assert_eq!(keys, ["token"], "{auth}");
        assert_eq!(auth["token"], "person-token");
        // The connection itself stays the operator's.
        assert_eq!(c.cluster_url, base.cluster_url);
        assert_eq!(c.root_cert, base.root_cert);
    }

    #[test]
    fn no_credential_no_client() {
        assert!(matches!(
            client_for(&operator_config(), None),
            Err(ActingError::NoCredential)
        ));
    }

    #[test]
    fn the_token_never_prints() {
        let c = Credential::new("person-token");
        assert!(!format!("{c:?}").contains("person-token"));
    }
}
