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

/// Key of the previous public keys in the ConfigMap: a JSON list of
/// [`PublishedKey`], newest first.
pub const CONFIGMAP_PREVIOUS_KEYS: &str = "previous-keys.json";
/// Previous public keys kept in the ConfigMap when the signing key changes.
pub const PREVIOUS_KEYS_LIMIT: usize = 5;

/// A public key listed in the ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedKey {
    pub key_id: String,
    /// SPKI PEM.
    pub public_key: String,
    /// When it stopped being the signing key (RFC 3339), for previous keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
}

/// The keys the ConfigMap lists (its `data`): the current key
/// (`public-key.pem`, `key-id`), then the previous ones.
pub fn listed_keys(data: &BTreeMap<String, String>) -> (Vec<PublishedKey>, Vec<String>) {
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    match (data.get(CONFIGMAP_PUBLIC_KEY), data.get(CONFIGMAP_KEY_ID)) {
        (Some(pem), Some(id)) => keys.push(PublishedKey {
            key_id: id.trim().to_string(),
            public_key: pem.clone(),
            retired_at: None,
        }),
        (None, None) => {}
        _ => problems.push(format!(
            "{CONFIGMAP_PUBLIC_KEY} and {CONFIGMAP_KEY_ID} come together; the current key is ignored"
        )),
    }
    if let Some(text) = data.get(CONFIGMAP_PREVIOUS_KEYS) {
        match serde_json::from_str::<Vec<PublishedKey>>(text) {
            Ok(previous) => keys.extend(previous),
            Err(e) => problems.push(format!(
                "{CONFIGMAP_PREVIOUS_KEYS} is not a list of {{keyId, publicKey}}: {e}; previous keys are ignored"
            )),
        }
    }
    (keys, problems)
}

/// The trusted key set the ConfigMap describes. Entries whose PEM does not
/// read are left out and reported.
pub fn trusted_keys(data: &BTreeMap<String, String>) -> (passport::VerifyingKeySet, Vec<String>) {
    let (listed, mut problems) = listed_keys(data);
    let mut set = passport::VerifyingKeySet::new();
    for key in listed {
        if key.key_id.is_empty() {
            problems.push("a listed key has an empty key id; it is ignored".into());
            continue;
        }
        match passport::load_verifying_key_pem(&key.public_key) {
            // The first listing of an id wins (the current key, then newest first).
            Ok(k) if set.get(&key.key_id).is_none() => {
                set.insert_with_id(key.key_id, k);
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("key id {:?}: {e}; it is ignored", key.key_id)),
        }
    }
    (set, problems)
}

/// The ConfigMap `data` after publishing `current`: when the listed current
/// key is another one, it moves to the front of the previous keys (stamped
/// `retired_at`); previous keys are kept as listed (an operator removes one
/// to retire it), without the current id, at most [`PREVIOUS_KEYS_LIMIT`].
pub fn rotated_data(
    existing: Option<&BTreeMap<String, String>>,
    current: &PublishedKey,
    retired_at: &str,
) -> (BTreeMap<String, String>, Vec<String>) {
    let empty = BTreeMap::new();
    let existing = existing.unwrap_or(&empty);
    let (listed, problems) = listed_keys(existing);
    let listed_current =
        existing.contains_key(CONFIGMAP_PUBLIC_KEY) && existing.contains_key(CONFIGMAP_KEY_ID);
    let mut previous: Vec<PublishedKey> = Vec::new();
    for (i, mut key) in listed.into_iter().enumerate() {
        if i == 0 && listed_current {
            let same =
                key.key_id == current.key_id && key.public_key.trim() == current.public_key.trim();
            if same {
                continue;
            }
            key.retired_at = Some(retired_at.to_string());
        }
        if key.key_id != current.key_id && !previous.iter().any(|p| p.key_id == key.key_id) {
            previous.push(key);
        }
    }
    previous.truncate(PREVIOUS_KEYS_LIMIT);
    let previous_json = serde_json::to_string_pretty(&previous).unwrap_or_else(|_| "[]".into());
    let data = BTreeMap::from([
        (CONFIGMAP_PUBLIC_KEY.to_string(), current.public_key.clone()),
        (CONFIGMAP_KEY_ID.to_string(), current.key_id.clone()),
        (CONFIGMAP_PREVIOUS_KEYS.to_string(), previous_json),
    ]);
    (data, problems)
}

/// Publishes the public key (and key id) in a ConfigMap, by server-side
/// apply. A different key listed there as current is kept as a previous key
/// (see [`rotated_data`]), so that passports it signed still verify.
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
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let existing = api.get_opt(name).await?.and_then(|cm| cm.data);
    let current = PublishedKey {
        key_id: signer.key_id().to_string(),
        public_key: pem,
        retired_at: None,
    };
    let (data, problems) = rotated_data(
        existing.as_ref(),
        &current,
        &jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    );
    for problem in problems {
        tracing::warn!(
            configmap = name,
            namespace,
            "public-key ConfigMap: {problem}"
        );
    }
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "release-passport"}
        },
        "data": data,
    });
    api.patch(
        name,
        &PatchParams::apply(super::MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublishedKey {
        let signer = PassportSigner::new(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
        PublishedKey {
            key_id: signer.key_id().to_string(),
            public_key: passport::keys::verifying_key_pem(&signer.verifying_key()).expect("pem"),
            retired_at: None,
        }
    }

    fn previous(data: &BTreeMap<String, String>) -> Vec<PublishedKey> {
        serde_json::from_str(&data[CONFIGMAP_PREVIOUS_KEYS]).expect("json")
    }

    #[test]
    fn first_publication_lists_only_the_current_key() {
        let (data, problems) = rotated_data(None, &key(1), "t1");
        assert!(problems.is_empty());
        assert_eq!(data[CONFIGMAP_KEY_ID], key(1).key_id);
        assert!(previous(&data).is_empty());
        let (set, problems) = trusted_keys(&data);
        assert!(problems.is_empty());
        assert_eq!(set.key_ids(), vec![key(1).key_id.as_str()]);
    }

    #[test]
    fn the_same_key_again_changes_nothing() {
        let (first, _) = rotated_data(None, &key(1), "t1");
        let (again, _) = rotated_data(Some(&first), &key(1), "t2");
        assert_eq!(first, again);
    }

    #[test]
    fn a_new_key_keeps_the_old_one_as_previous_newest_first_and_bounded() {
        let (mut data, _) = rotated_data(None, &key(1), "t1");
        for seed in 2..=8u8 {
            data = rotated_data(Some(&data), &key(seed), &format!("t{seed}")).0;
        }
        assert_eq!(data[CONFIGMAP_KEY_ID], key(8).key_id);
        let prev = previous(&data);
        assert_eq!(prev.len(), PREVIOUS_KEYS_LIMIT);
        let ids: Vec<_> = prev.iter().map(|k| k.key_id.clone()).collect();
        let expected: Vec<_> = (3..=7u8).rev().map(|s| key(s).key_id).collect();
        assert_eq!(ids, expected);
        assert_eq!(prev[0].retired_at.as_deref(), Some("t8"));
        let (set, _) = trusted_keys(&data);
        assert_eq!(set.key_ids().len(), 1 + PREVIOUS_KEYS_LIMIT);
        assert!(set.get(&key(2).key_id).is_none(), "the oldest fell off");
    }

    #[test]
    fn a_retired_key_removed_by_hand_stays_removed_and_going_back_to_a_key_does_not_list_it_twice()
    {
        let (data, _) = rotated_data(None, &key(1), "t1");
        let (mut data, _) = rotated_data(Some(&data), &key(2), "t2");
        data.insert(CONFIGMAP_PREVIOUS_KEYS.into(), "[]".into());
        let (data, _) = rotated_data(Some(&data), &key(2), "t3");
        assert!(previous(&data).is_empty());
        let (data, _) = rotated_data(Some(&data), &key(3), "t4");
        let (data, _) = rotated_data(Some(&data), &key(2), "t5");
        let ids: Vec<_> = previous(&data).into_iter().map(|k| k.key_id).collect();
        assert_eq!(ids, vec![key(3).key_id]);
    }

    #[test]
    fn unreadable_entries_are_reported_and_left_out() {
        let mut data = BTreeMap::from([
            (CONFIGMAP_PUBLIC_KEY.to_string(), key(1).public_key),
            (CONFIGMAP_KEY_ID.to_string(), key(1).key_id),
        ]);
        data.insert(
            CONFIGMAP_PREVIOUS_KEYS.into(),
            serde_json::json!([
                {"keyId": "broken", "publicKey": "not a pem"},
                {"keyId": key(2).key_id, "publicKey": key(2).public_key}
            ])
            .to_string(),
        );
        let (set, problems) = trusted_keys(&data);
        assert_eq!(set.key_ids().len(), 2);
        assert!(set.get("broken").is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        data.insert(CONFIGMAP_PREVIOUS_KEYS.into(), "{".into());
        let (set, problems) = trusted_keys(&data);
        assert_eq!(set.key_ids(), vec![key(1).key_id.as_str()]);
        assert!(problems[0].contains(CONFIGMAP_PREVIOUS_KEYS));
    }
}
