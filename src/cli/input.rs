//! Reading the files the offline commands take: Policy and ReleaseGate
//! objects (YAML or JSON, as applied to a cluster) and evidence documents.
//! Every error is one line naming the file and the field.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde::de::DeserializeOwned;

use crate::api::{
    EvidenceDocument, GateReference, Policy, PolicySpec, ReleaseGate, ReleaseGateSpec,
};

/// Reads a file as UTF-8 text.
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        anyhow!(
            "{}: cannot read: {}",
            path.display(),
            one_line(&e.to_string())
        )
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Parses JSON or YAML (by extension; YAML otherwise) into a JSON value.
pub fn parse_value(path: &Path, text: &str) -> anyhow::Result<serde_json::Value> {
    if is_json(path) {
        serde_json::from_str(text).map_err(|e| {
            anyhow!(
                "{}: invalid JSON: {}",
                path.display(),
                one_line(&e.to_string())
            )
        })
    } else {
        serde_saphyr::from_str::<serde_json::Value>(text).map_err(|e| {
            anyhow!(
                "{}: invalid YAML: {}",
                path.display(),
                one_line(&e.to_string())
            )
        })
    }
}

/// Reads a typed document, naming the field at fault on error, e.g.
/// `policy.yaml: spec.rules[2].condition.operator: unknown variant ...`.
pub fn typed<T: DeserializeOwned>(path: &Path, value: serde_json::Value) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            "document".to_string()
        } else {
            field
        };
        anyhow!(
            "{}: {}: {}",
            path.display(),
            field,
            one_line(&e.inner().to_string())
        )
    })
}

fn check_kind(path: &Path, value: &serde_json::Value, kind: &str) -> anyhow::Result<()> {
    let Some(obj) = value.as_object() else {
        bail!("{}: document: expected a {kind} object", path.display());
    };
    match obj.get("kind").and_then(|k| k.as_str()) {
        Some(k) if k == kind => {}
        Some(k) => bail!("{}: kind: expected {kind}, found {k}", path.display()),
        None => bail!("{}: kind: missing (expected {kind})", path.display()),
    }
    let want = format!("{}/{}", crate::api::GROUP, crate::api::VERSION);
    match obj.get("apiVersion").and_then(|k| k.as_str()) {
        Some(v) if v == want => Ok(()),
        Some(v) => bail!("{}: apiVersion: expected {want}, found {v}", path.display()),
        None => bail!("{}: apiVersion: missing (expected {want})", path.display()),
    }
}

/// A Policy file: its name and spec.
pub fn load_policy(path: &Path) -> anyhow::Result<(String, PolicySpec)> {
    let value = parse_value(path, &read_text(path)?)?;
    check_kind(path, &value, "Policy")?;
    let policy: Policy = typed(path, value)?;
    let name = policy
        .metadata
        .name
        .clone()
        .ok_or_else(|| anyhow!("{}: metadata.name: missing", path.display()))?;
    Ok((name, policy.spec))
}

/// A ReleaseGate file: its spec and a reference to it.
pub fn load_gate(path: &Path) -> anyhow::Result<(ReleaseGateSpec, Option<GateReference>)> {
    let value = parse_value(path, &read_text(path)?)?;
    check_kind(path, &value, "ReleaseGate")?;
    let gate: ReleaseGate = typed(path, value)?;
    let reference = gate.metadata.name.clone().map(|name| GateReference {
        namespace: gate
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name,
        generation: gate.metadata.generation,
    });
    Ok((gate.spec, reference))
}

/// Evidence files and directories (every `.json`, `.yaml`, `.yml` file in
/// it, by name). A file holds one evidence document or a list of them.
pub fn load_evidence(paths: &[PathBuf]) -> anyhow::Result<Vec<EvidenceDocument>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| {
            anyhow!(
                "{}: cannot read: {}",
                path.display(),
                one_line(&e.to_string())
            )
        })?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot list", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            matches!(e.to_ascii_lowercase().as_str(), "json" | "yaml" | "yml")
                        })
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(path.clone());
        }
    }
    let mut docs = Vec::new();
    for file in files {
        let value = parse_value(&file, &read_text(&file)?)?;
        match value {
            serde_json::Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    let doc: EvidenceDocument =
                        serde_path_to_error::deserialize(item).map_err(|e| {
                            anyhow!(
                                "{}: [{i}].{}: {}",
                                file.display(),
                                e.path(),
                                one_line(&e.inner().to_string())
                            )
                        })?;
                    docs.push(doc);
                }
            }
            value => docs.push(typed(&file, value)?),
        }
    }
    Ok(docs)
}

/// Objects of one kind from files (one object, or a list of them, per file).
pub fn load_objects<T: DeserializeOwned>(paths: &[PathBuf], kind: &str) -> anyhow::Result<Vec<T>> {
    let mut objects = Vec::new();
    for path in paths {
        let items = match parse_value(path, &read_text(path)?)? {
            serde_json::Value::Array(items) => items,
            value => vec![value],
        };
        for item in items {
            check_kind(path, &item, kind)?;
            objects.push(typed(path, item)?);
        }
    }
    Ok(objects)
}

/// Largest Trivy report read (reports of big images list every package).
const MAX_TRIVY_REPORT_BYTES: u64 = 256 << 20;

/// Trivy JSON reports summarised into `trivy` evidence for the release
/// whose image is `image` (pinned by digest); a report of another image is
/// refused.
pub fn load_trivy_reports(
    paths: &[PathBuf],
    image: &str,
    now: jiff::Timestamp,
) -> anyhow::Result<Vec<EvidenceDocument>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let Some(digest) = crate::webhook::decide::image_digest(image) else {
        return Err(anyhow!(
            "--trivy-report: the release's image {image:?} is not pinned by digest, so no report can be checked against it"
        ));
    };
    let mut docs = Vec::new();
    for path in paths {
        let size = std::fs::metadata(path)
            .map_err(|e| {
                anyhow!(
                    "{}: cannot read: {}",
                    path.display(),
                    one_line(&e.to_string())
                )
            })?
            .len();
        if size > MAX_TRIVY_REPORT_BYTES {
            return Err(anyhow!(
                "{}: larger than {MAX_TRIVY_REPORT_BYTES} bytes; is it a Trivy JSON report?",
                path.display()
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            anyhow!(
                "{}: cannot read: {}",
                path.display(),
                one_line(&e.to_string())
            )
        })?;
        docs.push(
            crate::connectors::trivy::summarise(&bytes, digest, now)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?,
        );
    }
    Ok(docs)
}

/// Reads a JSON document (a passport).
pub fn load_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: invalid JSON: {}",
            path.display(),
            one_line(&e.to_string())
        )
    })
}
