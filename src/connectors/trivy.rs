//! `trivy`: evidence ingest of a Trivy scan report (`trivy image --format
//! json`, schema version 2): counts of vulnerabilities by severity, how
//! many have a fix, secrets and failed misconfigurations, and the image
//! digest that was scanned, which must be the release's. Nothing is
//! pulled: CI hands the report to `releasepassport gate --trivy-report`
//! (or `evaluate --trivy-report`), which pushes the summary as evidence.
//! No finding's text, path or secret is kept, only counts.
//!
//! Report format: https://trivy.dev/latest/docs/configuration/reporting/#json

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::api::{EvidenceDocument, Fact, Freshness};

/// Connector name of the facts.
pub const CONNECTOR: &str = "trivy";

/// Severities Trivy reports, in its order.
pub const SEVERITIES: [&str; 5] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];

/// Why a report cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TrivyError {
    /// Not JSON, or not Trivy's JSON report.
    #[error("not a Trivy JSON report (trivy image --format json): {0}")]
    Malformed(String),
    /// The report does not say which image digest was scanned.
    #[error(
        "the report does not name the scanned image's digest (Metadata.RepoDigests or an ArtifactName pinned by digest): scan the image by digest, e.g. trivy image --format json registry.example.com/app@sha256:<digest>"
    )]
    NoDigest,
    /// The report is of another image.
    #[error(
        "the report scanned {scanned}, not the release's image {expected}: scan the image being released and pass that report"
    )]
    OtherDigest { scanned: String, expected: String },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Report {
    schema_version: Option<i64>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    artifact_name: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    results: Option<Vec<TrivyResult>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    #[serde(default)]
    repo_digests: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyResult {
    #[serde(default)]
    vulnerabilities: Option<Vec<Vulnerability>>,
    #[serde(default)]
    misconfigurations: Option<Vec<Misconfiguration>>,
    #[serde(default)]
    secrets: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Vulnerability {
    #[serde(default, rename = "VulnerabilityID")]
    vulnerability_id: String,
    #[serde(default)]
    pkg_name: String,
    #[serde(default)]
    installed_version: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    severity: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Misconfiguration {
    #[serde(default)]
    status: String,
}

/// The `sha256:<hex>` digests a report says it scanned.
fn scanned_digests(report: &Report) -> BTreeSet<String> {
    let from_reference = |r: &str| crate::webhook::decide::image_digest(r).map(str::to_string);
    report
        .metadata
        .iter()
        .flat_map(|m| m.repo_digests.iter())
        .filter_map(|d| from_reference(d))
        .chain(report.artifact_name.as_deref().and_then(from_reference))
        .collect()
}

/// Summarises a Trivy report into evidence for the release whose image
/// digest is `expected_digest` (`sha256:<hex>`); a report of another
/// image is refused. `observedAt` is the report's `CreatedAt` (when the
/// scan ran), else `now`.
pub fn summarise(
    report: &[u8],
    expected_digest: &str,
    now: jiff::Timestamp,
) -> Result<EvidenceDocument, TrivyError> {
    let report: Report =
        serde_json::from_slice(report).map_err(|e| TrivyError::Malformed(e.to_string()))?;
    if report.schema_version.is_none() || report.results.is_none() && report.metadata.is_none() {
        return Err(TrivyError::Malformed(
            "SchemaVersion and Results/Metadata are missing".into(),
        ));
    }
    let digests = scanned_digests(&report);
    if digests.is_empty() {
        return Err(TrivyError::NoDigest);
    }
    if !digests.contains(expected_digest) {
        return Err(TrivyError::OtherDigest {
            scanned: digests.into_iter().collect::<Vec<_>>().join(", "),
            expected: expected_digest.to_string(),
        });
    }
    let results = report.results.as_deref().unwrap_or_default();
    // A vulnerability of one package version is counted once, however
    // many targets (layers, lock files) list it.
    let mut seen = BTreeSet::new();
    let mut by_severity = [0i64; 5];
    let mut fixable_by_severity = [0i64; 5];
    for v in results
        .iter()
        .flat_map(|r| r.vulnerabilities.iter().flatten())
    {
        if !seen.insert((&v.vulnerability_id, &v.pkg_name, &v.installed_version)) {
            continue;
        }
        let index = SEVERITIES
            .iter()
            .position(|s| s.eq_ignore_ascii_case(&v.severity))
            .unwrap_or(4);
        by_severity[index] += 1;
        if v.fixed_version
            .as_deref()
            .is_some_and(|f| !f.trim().is_empty())
        {
            fixable_by_severity[index] += 1;
        }
    }
    let secrets: usize = results
        .iter()
        .map(|r| r.secrets.as_ref().map_or(0, Vec::len))
        .sum();
    let misconfigurations: usize = results
        .iter()
        .flat_map(|r| r.misconfigurations.iter().flatten())
        .filter(|m| m.status == "FAIL")
        .count();

    let fact = |name: String, value: serde_json::Value| Fact {
        name,
        status: None,
        value: Some(value),
        threshold: None,
        observed_at: None,
    };
    let mut facts = Vec::new();
    for (i, severity) in SEVERITIES.iter().enumerate() {
        let name = severity.to_ascii_lowercase();
        facts.push(fact(name.clone(), by_severity[i].into()));
        facts.push(fact(
            format!("{name}_fixable"),
            fixable_by_severity[i].into(),
        ));
    }
    facts.push(fact(
        "vulnerabilities".into(),
        by_severity.iter().sum::<i64>().into(),
    ));
    facts.push(fact(
        "fixable".into(),
        fixable_by_severity.iter().sum::<i64>().into(),
    ));
    facts.push(fact("secrets".into(), (secrets as i64).into()));
    facts.push(fact(
        "misconfigurations".into(),
        (misconfigurations as i64).into(),
    ));
    facts.push(fact("scanned_digest".into(), expected_digest.into()));
    facts.push(Fact {
        name: "digest_matches".into(),
        status: Some("passed".into()),
        value: Some(true.into()),
        threshold: Some(format!("report scanned {expected_digest}")),
        observed_at: None,
    });

    let observed_at = report
        .created_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .filter(|t| *t <= now)
        .unwrap_or(now);
    let mut scope = std::collections::BTreeMap::new();
    scope.insert("scanner".to_string(), "trivy".to_string());
    scope.insert("digest".to_string(), expected_digest.to_string());
    if let Some(version) = report.schema_version {
        scope.insert("schemaVersion".to_string(), version.to_string());
    }
    Ok(EvidenceDocument {
        connector: CONNECTOR.into(),
        scope,
        freshness: Freshness {
            observed_at,
            max_age_seconds: None,
        },
        facts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";

    fn report(digest: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "SchemaVersion": 2,
            "CreatedAt": "2026-05-03T09:00:00.123456789Z",
            "ArtifactName": "registry.example.com/payment-api:v2.18.4",
            "ArtifactType": "container_image",
            "Metadata": {"ImageID": "sha256:aaaa", "RepoDigests": [format!("registry.example.com/payment-api@{digest}")]},
            "Results": [
                {"Target": "debian 12", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
                    {"VulnerabilityID": "CVE-2026-0001", "PkgName": "openssl", "InstalledVersion": "3.0.1", "FixedVersion": "3.0.2", "Severity": "CRITICAL"},
                    {"VulnerabilityID": "CVE-2026-0002", "PkgName": "zlib", "InstalledVersion": "1.2", "Severity": "HIGH"},
                    {"VulnerabilityID": "CVE-2026-0003", "PkgName": "tar", "InstalledVersion": "1.3", "FixedVersion": "", "Severity": "LOW"}]},
                {"Target": "app/Cargo.lock", "Class": "lang-pkgs", "Type": "cargo", "Vulnerabilities": [
                    {"VulnerabilityID": "CVE-2026-0001", "PkgName": "openssl", "InstalledVersion": "3.0.1", "FixedVersion": "3.0.2", "Severity": "CRITICAL"},
                    {"VulnerabilityID": "GHSA-xxxx", "PkgName": "hyper", "InstalledVersion": "0.14", "FixedVersion": "0.14.30", "Severity": "medium"}]},
                {"Target": "/app/.env", "Class": "secret", "Secrets": [{"RuleID": "aws-access-key-id", "Match": "AKIAIOSFODNN7EXAMPLE"}]},
                {"Target": "Dockerfile", "Class": "config", "Misconfigurations": [{"ID": "DS002", "Status": "FAIL"}, {"ID": "DS001", "Status": "PASS"}]}
            ]
        }))
        .expect("json")
    }

    fn value<'d>(doc: &'d EvidenceDocument, name: &str) -> &'d serde_json::Value {
        doc.facts
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value.as_ref())
            .unwrap_or_else(|| panic!("fact {name}"))
    }

    #[test]
    fn counts_by_severity_once_per_package_version_and_fixable() {
        let now = "2026-05-03T09:30:00Z".parse().expect("ts");
        let doc = summarise(&report(DIGEST), DIGEST, now).expect("summary");
        assert_eq!(doc.connector, "trivy");
        assert_eq!(value(&doc, "critical"), &json!(1));
        assert_eq!(value(&doc, "critical_fixable"), &json!(1));
        assert_eq!(value(&doc, "high"), &json!(1));
        assert_eq!(value(&doc, "high_fixable"), &json!(0));
        assert_eq!(value(&doc, "medium"), &json!(1));
        assert_eq!(value(&doc, "low"), &json!(1));
        assert_eq!(value(&doc, "low_fixable"), &json!(0));
        assert_eq!(value(&doc, "vulnerabilities"), &json!(4));
        assert_eq!(value(&doc, "fixable"), &json!(2));
        assert_eq!(value(&doc, "secrets"), &json!(1));
        assert_eq!(value(&doc, "misconfigurations"), &json!(1));
        assert_eq!(value(&doc, "scanned_digest"), &json!(DIGEST));
        assert_eq!(
            doc.freshness.observed_at.to_string(),
            "2026-05-03T09:00:00.123456789Z"
        );
        let text = serde_json::to_string(&doc).expect("json");
        assert!(
            !text.contains("AKIAIOSFODNN7EXAMPLE"),
            "a secret finding leaked: {text}"
        );
    }

    #[test]
    fn a_report_of_another_image_is_refused_naming_both_digests() {
        let other = "sha256:9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9";
        let err =
            summarise(&report(other), DIGEST, jiff::Timestamp::now()).expect_err("other image");
        assert_eq!(
            err,
            TrivyError::OtherDigest {
                scanned: other.into(),
                expected: DIGEST.into()
            }
        );
        assert!(err.to_string().contains("not the release's image"), "{err}");
    }

    #[test]
    fn a_report_without_a_digest_or_not_from_trivy_is_refused() {
        let no_digest = json!({"SchemaVersion": 2, "ArtifactName": "app:latest", "Results": []});
        assert_eq!(
            summarise(
                &serde_json::to_vec(&no_digest).expect("json"),
                DIGEST,
                jiff::Timestamp::now()
            ),
            Err(TrivyError::NoDigest)
        );
        assert!(matches!(
            summarise(b"{\"hello\": 1}", DIGEST, jiff::Timestamp::now()),
            Err(TrivyError::Malformed(_))
        ));
        assert!(matches!(
            summarise(b"not json", DIGEST, jiff::Timestamp::now()),
            Err(TrivyError::Malformed(_))
        ));
    }
}
