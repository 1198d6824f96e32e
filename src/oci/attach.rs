//! Attaching a passport attestation to the image it judges, in cosign's
//! layout: the envelope is a layer (`application/vnd.dsse.envelope.v1+json`,
//! annotated with its `predicateType`) of the manifest tagged
//! `sha256-<image digest hex>.att` in the image's repository, which cosign,
//! Kyverno and sigstore's policy-controller read. The manifest also names
//! the image as its OCI 1.1 `subject`, so registries with the referrers API
//! list it there too.
//!
//! Other attestations under the tag (build provenance, SBOMs, ...) are kept.
//! A passport attestation replaces the earlier one of the same ReleaseGate:
//! the tag holds each gate's latest decision about the image, so a verifier
//! that requires every passport attestation to pass is not stopped by a HOLD
//! that a later ALLOW of the same gate overturned.

use serde_json::{Value, json};

use crate::api::Envelope;
use crate::passport::dsse::{self, IN_TOTO_PAYLOAD_TYPE};
use crate::passport::statement::{PASSPORT_EXTENSION, VSA_PREDICATE_TYPE};

use super::client::{OciError, RegistryClient, sha256_digest};
use super::reference::ImageRef;

/// Media type of a DSSE envelope layer.
pub const DSSE_LAYER_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The manifest media type written.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Annotation naming the ReleaseGate an attached passport was issued for.
pub const GATE_ANNOTATION: &str = "releasepassport.io/gate";

/// What an attachment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// `registry/repository:sha256-<hex>.att`.
    pub reference: String,
    /// Digest of the attestation manifest written (or found).
    pub manifest_digest: String,
    /// Digest of the envelope layer.
    pub layer_digest: String,
    /// The envelope was already attached: nothing was written.
    pub unchanged: bool,
    /// Earlier passport attestations of the same gate that were replaced.
    pub replaced: usize,
}

/// The gate (`namespace/name`) and subject digests an envelope's Statement names.
fn statement_facts(envelope: &Envelope) -> Result<(Option<String>, Vec<String>), OciError> {
    let bad = |m: &str| OciError::Attestation(m.to_string());
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(bad("the envelope does not carry an in-toto Statement"));
    }
    let payload =
        dsse::decode_base64(&envelope.payload).ok_or_else(|| bad("payload is not base64"))?;
    let statement: Value =
        serde_json::from_slice(&payload).map_err(|_| bad("the payload is not JSON"))?;
    if statement["predicateType"] != VSA_PREDICATE_TYPE {
        return Err(bad(
            "the Statement is not a passport's verification summary",
        ));
    }
    let subjects = statement["subject"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|d| d["digest"]["sha256"].as_str())
                .map(|hex| format!("sha256:{hex}"))
                .collect()
        })
        .unwrap_or_default();
    let gate = &statement["predicate"][PASSPORT_EXTENSION]["gate"];
    let gate = match (gate["namespace"].as_str(), gate["name"].as_str()) {
        (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
        _ => None,
    };
    Ok((gate, subjects))
}

/// Attaches a passport's envelope to `image` (pinned by digest), which its
/// Statement must name as a subject.
pub async fn attach(
    client: &RegistryClient,
    image: &str,
    envelope: &Envelope,
) -> Result<Attached, OciError> {
    let image = ImageRef::parse(image)?;
    let (gate, subjects) = statement_facts(envelope)?;
    if !subjects.contains(&image.digest) {
        return Err(OciError::Attestation(format!(
            "its Statement is about {subjects:?}, not {}",
            image.digest
        )));
    }
    let mut session = client.session(&image.registry, image.api_host(), &image.repository);
    let subject = session
        .manifest(&image.digest)
        .await?
        .ok_or_else(|| OciError::NotFound {
            registry: image.registry.clone(),
            what: format!("image {image}"),
        })?;
    let tag = image.attestation_tag();
    let reference = format!("{}/{}:{tag}", image.registry, image.repository);

    let layer = serde_json::to_vec(envelope).map_err(|e| OciError::Attestation(e.to_string()))?;
    let layer_digest = sha256_digest(&layer);
    let existing = session.manifest(&tag).await?;
    let mut layers: Vec<Value> = existing
        .as_ref()
        .and_then(|m| serde_json::from_slice::<Value>(&m.bytes).ok())
        .and_then(|m| m["layers"].as_array().cloned())
        .unwrap_or_default();
    if let Some(existing) = &existing
        && layers.iter().any(|l| l["digest"] == layer_digest.as_str())
    {
        return Ok(Attached {
            reference,
            manifest_digest: existing.digest.clone(),
            layer_digest,
            unchanged: true,
            replaced: 0,
        });
    }
    let before = layers.len();
    if let Some(gate) = &gate {
        layers.retain(|l| {
            !(l["annotations"][GATE_ANNOTATION] == gate.as_str()
                && l["annotations"]["predicateType"] == VSA_PREDICATE_TYPE)
        });
    }
    let replaced = before - layers.len();

    session.push_blob(&layer).await?;
    let mut annotations = json!({
        "dev.cosignproject.cosign/signature": "",
        "predicateType": VSA_PREDICATE_TYPE,
    });
    if let Some(gate) = &gate {
        annotations[GATE_ANNOTATION] = Value::from(gate.as_str());
    }
    layers.push(json!({
        "mediaType": DSSE_LAYER_MEDIA_TYPE,
        "size": layer.len(),
        "digest": layer_digest,
        "annotations": annotations,
    }));

    // The image configuration cosign writes for its signature images: no
    // platform, one diff id per (uncompressed) layer.
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": diff_ids.iter().map(|_| json!({"created": "0001-01-01T00:00:00Z"})).collect::<Vec<_>>(),
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
    .map_err(|e| OciError::Attestation(e.to_string()))?;
    let config_digest = session.push_blob(&config).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": config_digest,
        },
        "layers": layers,
        "subject": {
            "mediaType": subject.media_type,
            "size": subject.bytes.len(),
            "digest": subject.digest,
        },
    }))
    .map_err(|e| OciError::Attestation(e.to_string()))?;
    let manifest_digest = session.put_manifest(&tag, OCI_MANIFEST, &manifest).await?;
    Ok(Attached {
        reference,
        manifest_digest,
        layer_digest,
        unchanged: false,
        replaced,
    })
}
