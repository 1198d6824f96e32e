//! Serving certificates: read from a directory (`tls.crt`, `tls.key`, as a
//! mounted Secret or cert-manager writes them) and reloaded when the files
//! change, or bootstrapped self-signed: a CA and a serving certificate kept
//! in a Secret (so every replica serves the same one) and the CA patched into
//! the `caBundle` of the ValidatingWebhookConfiguration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Key of the serving certificate (PEM) in the directory and the Secret.
pub const TLS_CRT: &str = "tls.crt";
/// Key of the serving key (PEM).
pub const TLS_KEY: &str = "tls.key";
/// Key of the CA certificate (PEM) in the bootstrap Secret.
pub const CA_CRT: &str = "ca.crt";

/// The serving configuration in use; replaced on reload.
pub struct TlsConfig {
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsConfig {
    /// From PEM certificate chain and private key.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> anyhow::Result<Self> {
        Ok(Self {
            current: RwLock::new(Arc::new(server_config(cert, key)?)),
        })
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Replaces the certificate.
    pub fn replace(&self, cert: &[u8], key: &[u8]) -> anyhow::Result<()> {
        let config = Arc::new(server_config(cert, key)?);
        match self.current.write() {
            Ok(mut c) => *c = config,
            Err(e) => *e.into_inner() = config,
        }
        Ok(())
    }
}

fn server_config(cert: &[u8], key: &[u8]) -> anyhow::Result<ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .context("reading the certificate PEM")?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in the PEM");
    let key = PrivateKeyDer::from_pem_slice(key).context("reading the private key PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not form a serving identity")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Loads `tls.crt`/`tls.key` from `dir`.
pub async fn load_dir(dir: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let cert = tokio::fs::read(dir.join(TLS_CRT))
        .await
        .with_context(|| format!("reading {}", dir.join(TLS_CRT).display()))?;
    let key = tokio::fs::read(dir.join(TLS_KEY))
        .await
        .with_context(|| format!("reading {}", dir.join(TLS_KEY).display()))?;
    Ok((cert, key))
}

/// Re-reads the directory every `interval` and swaps the certificate when
/// the files changed and still form a valid pair (a half-written update
/// keeps the previous certificate).
pub async fn reload_dir(dir: PathBuf, tls: Arc<TlsConfig>, interval: Duration, mut last: Vec<u8>) {
    loop {
        tokio::time::sleep(interval).await;
        let Ok((cert, key)) = load_dir(&dir).await else {
            continue;
        };
        let mut fingerprint = cert.clone();
        fingerprint.extend_from_slice(&key);
        if fingerprint == last {
            continue;
        }
        match tls.replace(&cert, &key) {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), "webhook: serving certificate reloaded");
                last = fingerprint;
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "webhook: new certificate not usable; keeping the previous one")
            }
        }
    }
}

/// A generated CA and serving certificate.
pub struct SelfSigned {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA and a serving certificate for `names` (DNS names or IP
/// addresses), with rcgen's default (long) validity: the Secret is the
/// rotation point (delete it and restart to rotate).
pub fn generate(names: &[String]) -> anyhow::Result<SelfSigned> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "releasepassport-webhook-ca");
    ca_params.distinguished_name = dn;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("self-signing the CA")?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().context("generating the serving key")?;
    let mut params = CertificateParams::new(names.to_vec()).context("certificate names")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "releasepassport-webhook");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params
        .signed_by(&key, &issuer)
        .context("signing the serving certificate")?;
    Ok(SelfSigned {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The self-signed bootstrap: reads the Secret, creating it on first start
/// (the loser of a create race re-reads the winner's certificate).
pub async fn load_or_create_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    names: &[String],
) -> anyhow::Result<SelfSigned> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for _ in 0..3 {
        if let Some(secret) = api.get_opt(name).await? {
            let data = secret.data.unwrap_or_default();
            let get = |k: &str| {
                data.get(k)
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .with_context(|| format!("Secret {namespace}/{name} has no key {k}"))
            };
            return Ok(SelfSigned {
                ca_pem: get(CA_CRT)?,
                cert_pem: get(TLS_CRT)?,
                key_pem: get(TLS_KEY)?,
            });
        }
        let generated = generate(names)?;
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
            type_: Some("kubernetes.io/tls".into()),
            data: Some(BTreeMap::from([
                (
                    CA_CRT.to_string(),
                    ByteString(generated.ca_pem.as_bytes().to_vec()),
                ),
                (
                    TLS_CRT.to_string(),
                    ByteString(generated.cert_pem.as_bytes().to_vec()),
                ),
                (
                    TLS_KEY.to_string(),
                    ByteString(generated.key_pem.as_bytes().to_vec()),
                ),
            ])),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(secret = %format!("{namespace}/{name}"), "webhook: self-signed serving certificate created");
                return Ok(generated);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("Secret {namespace}/{name}: could not read or create it")
}

/// Sets `caBundle` on every webhook of the configuration, retrying until the
/// configuration exists (it may be applied after the operator starts).
pub async fn patch_ca_bundle(client: Client, config_name: String, ca_pem: String) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let mut announced = false;
    loop {
        match api.get_opt(&config_name).await {
            Ok(Some(config)) => {
                let webhooks: Vec<serde_json::Value> = config
                    .webhooks
                    .unwrap_or_default()
                    .iter()
                    .map(|w| serde_json::json!({"name": w.name, "clientConfig": {"caBundle": bundle}}))
                    .collect();
                let patch = serde_json::json!({"webhooks": webhooks});
                match api
                    .patch(
                        &config_name,
                        &PatchParams::default(),
                        &Patch::Strategic(&patch),
                    )
                    .await
                {
                    Ok(_) => {
                        tracing::info!(config = %config_name, "webhook: caBundle patched");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(config = %config_name, error = %e, "webhook: patching caBundle failed")
                    }
                }
            }
            Ok(None) if !announced => {
                tracing::warn!(config = %config_name, "webhook: ValidatingWebhookConfiguration not found yet (releasepassport webhook-config | kubectl apply -f -)");
                announced = true;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "webhook: reading the ValidatingWebhookConfiguration")
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
