//! The signing key: read from a Secret, created once when asked to, and its
//! public half published in a ConfigMap so anyone can `releasepassport verify`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::passport::{self, PassportSigner};

/// Key of the PKCS#8 PEM private key in the Secret.
pub const SECRET_KEY: &str = "signing-key.pem";
/// Optional key id override in the Secret.
pub const SECRET_KEY_ID: &str = "key-id";
/// Key of the public key PEM in the ConfigMap.
pub const CONFIGMAP_PUBLIC_KEY: &str = "public-key.pem";
/// Key of the key id in the ConfigMap.
pub const CONFIGMAP_KEY_ID: &str = "key-id";

/// Why the signing key is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "Secret {namespace}/{name} not found: create it (see docs/operations.md) or run with --generate-key"
    )]
    Missing { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no key {SECRET_KEY}")]
    NoKey { namespace: String, name: String },
    #[error("Secret {namespace}/{name}: {source}")]
    Invalid {
        namespace: String,
        name: String,
        source: passport::KeyError,
    },
    #[error("reading or writing the signing key: {0}")]
    Api(#[from] kube::Error),
}

/// Loads the signer from the Secret, creating the Secret first when it is
/// absent and `generate` is set. Safe to race with another replica: the
/// loser of the create re-reads the winner's key.
pub async fn load_or_create(
    client: &Client,
    namespace: &str,
    name: &str,
    generate: bool,
) -> Result<PassportSigner, KeyError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = match secrets.get_opt(name).await? {
        Some(secret) => secret,
        None if generate => {
            let key = passport::generate_signing_key().map_err(|source| KeyError::Invalid {
                namespace: namespace.into(),
                name: name.into(),
                source,
            })?;
            let pem =
                passport::keys::signing_key_pem(&key).map_err(|source| KeyError::Invalid {
                    namespace: namespace.into(),
                    name: name.into(),
                    source,
                })?;
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(namespace.into()),
                    labels: Some(BTreeMap::from([(
                        "app.kubernetes.io/name".to_string(),
                        "release-passport".to_string(),
                    )])),
                    ..Default::default()
                },
                type_: Some("Opaque".into()),
                data: Some(BTreeMap::from([(
                    SECRET_KEY.to_string(),
                    ByteString(pem.as_bytes().to_vec()),
                )])),
                ..Default::default()
            };
            match secrets.create(&PostParams::default(), &secret).await {
                Ok(created) => {
                    tracing::info!(namespace, name, "generated a new passport signing key");
                    created
                }
                Err(kube::Error::Api(s)) if s.code == 409 => secrets.get(name).await?,
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            return Err(KeyError::Missing {
                namespace: namespace.into(),
                name: name.into(),
            });
        }
    };
    signer_from_secret(&secret, namespace, name)
}

fn signer_from_secret(
    secret: &Secret,
    namespace: &str,
    name: &str,
) -> Result<PassportSigner, KeyError> {
    let data = secret.data.clone().unwrap_or_default();
    let pem = data.get(SECRET_KEY).ok_or_else(|| KeyError::NoKey {
        namespace: namespace.into(),
        name: name.into(),
    })?;
    let pem = String::from_utf8_lossy(&pem.0);
    let key = passport::load_signing_key_pem(&pem).map_err(|source| KeyError::Invalid {
        namespace: namespace.into(),
        name: name.into(),
        source,
    })?;
    Ok(match data.get(SECRET_KEY_ID) {
        Some(id) => PassportSigner::with_key_id(key, String::from_utf8_lossy(&id.0).trim()),
        None => PassportSigner::new(key),
    })
}

/// Publishes the public key (and key id) in a ConfigMap, by server-side apply.
pub async fn publish_public_key(
    client: &Client,
    namespace: &str,
    name: &str,
    signer: &PassportSigner,
) -> Result<(), KeyError> {
    let pem = passport::keys::verifying_key_pem(&signer.verifying_key()).map_err(|source| {
        KeyError::Invalid {
            namespace: namespace.into(),
            name: name.into(),
            source,
        }
    })?;
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "release-passport"}
        },
        "data": {
            CONFIGMAP_PUBLIC_KEY: pem,
            CONFIGMAP_KEY_ID: signer.key_id(),
        }
    });
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.patch(
        name,
        &PatchParams::apply(super::MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}
