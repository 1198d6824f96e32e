//! The optional last step of a reconcile: attach the current Passport's
//! attestation to the image it judges, in the image's OCI registry (off
//! unless `--attach-attestations`). The outcome is the Passport's `Attached`
//! condition; a failure is also a Warning Event on the gate, and is retried
//! on the next evaluation. It never changes a decision.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::api::{Passport, PassportSpec};
use crate::oci::{self, Credentials, RegistryClient, RegistryOptions};

use super::Context;

/// Where the attestation goes and with which credentials.
#[derive(Clone, Debug, Default)]
pub struct AttachConfig {
    /// A `kubernetes.io/dockerconfigjson` Secret in the operator's namespace
    /// with push credentials (key `.dockerconfigjson`); anonymous without it.
    pub credentials_secret: Option<String>,
    /// Registries spoken to over plain HTTP (`host:port`).
    pub plain_http: Vec<String>,
}

/// Field manager of the `Attached` condition: its own, so that applying it
/// never drops status fields another writer of the Passport owns.
const ATTACH_MANAGER: &str = "releasepassport-attach";

/// Type of the Passport condition recording the attachment.
pub const ATTACHED: &str = "Attached";

/// Whether a stored Passport still needs its attestation attached.
pub fn needed(existing: Option<&Passport>) -> bool {
    !existing.and_then(|p| p.status.as_ref()).is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == ATTACHED && c.status == "True")
    })
}

/// Attaches the passport's attestation and records the outcome. Returns the
/// failure message, for an Event, when it failed.
pub async fn attach(
    ctx: &Context,
    config: &AttachConfig,
    namespace: &str,
    passport_name: &str,
    document: &PassportSpec,
) -> Option<String> {
    let outcome = attach_to_registry(ctx, config, document).await;
    let (status, reason, message) = match &outcome {
        Ok(a) if a.unchanged => (
            "True",
            "Attached",
            format!("already attached to {}", a.reference),
        ),
        Ok(a) => (
            "True",
            "Attached",
            format!(
                "attached to {} (layer {}{})",
                a.reference,
                a.layer_digest,
                if a.replaced > 0 {
                    format!(
                        ", replacing {} earlier passport attestation(s) of this gate",
                        a.replaced
                    )
                } else {
                    String::new()
                }
            ),
        ),
        Err(e) => ("False", "AttachFailed", e.to_string()),
    };
    let message = crate::passport::redact::redact_str(&message).into_owned();
    let condition = Condition {
        type_: ATTACHED.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.chars().take(1024).collect(),
        observed_generation: None,
        last_transition_time: Time(jiff::Timestamp::now()),
    };
    let api: Api<Passport> = Api::namespaced(ctx.client.clone(), namespace);
    let body = json!({
        "apiVersion": "releasepassport.io/v1alpha1",
        "kind": "Passport",
        "status": {"conditions": [condition]},
    });
    if let Err(e) = api
        .patch_status(
            passport_name,
            &PatchParams::apply(ATTACH_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        tracing::warn!(passport = passport_name, %namespace, error = %e, "recording the attachment");
    }
    match outcome {
        Ok(a) => {
            tracing::info!(passport = passport_name, %namespace, reference = %a.reference, unchanged = a.unchanged, "attestation attached");
            None
        }
        Err(_) => {
            tracing::warn!(passport = passport_name, %namespace, %message, "attestation not attached");
            Some(message)
        }
    }
}

async fn attach_to_registry(
    ctx: &Context,
    config: &AttachConfig,
    document: &PassportSpec,
) -> Result<oci::Attached, oci::OciError> {
    let envelope = document
        .envelope
        .as_ref()
        .ok_or_else(|| oci::OciError::Attestation("the passport is not signed".into()))?;
    let credentials = match &config.credentials_secret {
        Some(name) => read_credentials(ctx, name).await?,
        None => Credentials::default(),
    };
    let client = RegistryClient::new(
        credentials,
        RegistryOptions {
            plain_http: config.plain_http.clone(),
            timeout: ctx
                .config
                .connector_timeout
                .max(std::time::Duration::from_secs(10)),
        },
    )?;
    oci::attach(&client, &document.artifact.image, envelope).await
}

/// The Docker config of the credentials Secret (operator namespace).
async fn read_credentials(ctx: &Context, name: &str) -> Result<Credentials, oci::OciError> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    let missing = |why: String| {
        oci::OciError::Credentials(format!("Secret {}/{name}: {why}", ctx.config.namespace))
    };
    let secret = api
        .get_opt(name)
        .await
        .map_err(|e| missing(format!("cannot be read: {e}")))?
        .ok_or_else(|| missing("not found".into()))?;
    let data = secret.data.unwrap_or_default();
    let bytes = data
        .get(".dockerconfigjson")
        .or_else(|| data.get("config.json"))
        .ok_or_else(|| missing("has no .dockerconfigjson key (create it with kubectl create secret docker-registry)".into()))?;
    Credentials::from_docker_config(&bytes.0)
}
