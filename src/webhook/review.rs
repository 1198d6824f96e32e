//! The AdmissionReview as the webhook reads and answers it: only what a
//! decision needs is decoded (uid, kind, operation, namespace, name, the
//! user, the gate label, the pod template images of the new and old object,
//! the Rollout strategy, and of a ReleaseGate the observation times of its
//! pushed evidence), borrowing from the request body; everything else is
//! skipped without being built. The answer is encoded directly.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize};

use super::decide::{Image, Verdict};

/// A string borrowed from the body when it has no escapes, owned otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl Str<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// `AdmissionReview` (admission.k8s.io/v1), the parts the webhook reads.
#[derive(Debug, Deserialize)]
pub struct AdmissionReviewIn<'a> {
    #[serde(borrow, default)]
    pub request: Option<RequestIn<'a>>,
}

/// `AdmissionReview.request`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestIn<'a> {
    #[serde(borrow)]
    pub uid: Str<'a>,
    #[serde(borrow)]
    pub kind: KindIn<'a>,
    #[serde(borrow, default)]
    pub sub_resource: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub namespace: Option<Str<'a>>,
    #[serde(borrow)]
    pub operation: Str<'a>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(borrow, default)]
    pub user_info: Option<UserInfoIn<'a>>,
    #[serde(borrow, default)]
    pub object: Option<WorkloadIn<'a>>,
    #[serde(borrow, default)]
    pub old_object: Option<WorkloadIn<'a>>,
}

/// `request.userInfo`: who makes the request, as the apiserver authenticated it.
#[derive(Debug, Default, Deserialize)]
pub struct UserInfoIn<'a> {
    #[serde(borrow, default)]
    pub username: Option<Str<'a>>,
}

/// `request.kind` (group, version, kind).
#[derive(Debug, Deserialize)]
pub struct KindIn<'a> {
    #[serde(borrow, default)]
    pub group: Str<'a>,
    #[serde(borrow)]
    pub kind: Str<'a>,
}

/// A Deployment, StatefulSet, DaemonSet or Rollout, the parts the webhook reads.
#[derive(Debug, Default, Deserialize)]
pub struct WorkloadIn<'a> {
    #[serde(borrow, default)]
    pub metadata: Option<MetadataIn<'a>>,
    #[serde(borrow, default)]
    pub spec: Option<WorkloadSpecIn<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MetadataIn<'a> {
    #[serde(borrow, default)]
    pub labels: Option<LabelsIn<'a>>,
}

/// Of the labels, only the gate label.
#[derive(Debug, Default, Deserialize)]
pub struct LabelsIn<'a> {
    #[serde(borrow, default, rename = "releasepassport.io/gate")]
    pub gate: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct WorkloadSpecIn<'a> {
    #[serde(borrow, default)]
    pub template: Option<TemplateIn<'a>>,
    #[serde(default)]
    pub strategy: Option<StrategyIn>,
    /// A ReleaseGate's pushed evidence.
    #[serde(borrow, default)]
    pub evidence: Option<Vec<EvidenceIn<'a>>>,
}

/// One pushed evidence document of a ReleaseGate: its connector and when it
/// (and each of its facts) claims to have been observed.
#[derive(Debug, Default, Deserialize)]
pub struct EvidenceIn<'a> {
    #[serde(borrow, default)]
    pub connector: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub freshness: Option<FreshnessIn<'a>>,
    #[serde(borrow, default)]
    pub facts: Option<Vec<FactIn<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreshnessIn<'a> {
    #[serde(borrow, default)]
    pub observed_at: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FactIn<'a> {
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub observed_at: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TemplateIn<'a> {
    #[serde(borrow, default)]
    pub spec: Option<PodSpecIn<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecIn<'a> {
    #[serde(borrow, default)]
    pub init_containers: Option<Vec<ContainerIn<'a>>>,
    #[serde(borrow, default)]
    pub containers: Option<Vec<ContainerIn<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContainerIn<'a> {
    #[serde(borrow, default)]
    pub name: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub image: Option<Str<'a>>,
}

/// Argo Rollout strategy: whether `canary` or `blueGreen` is present.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrategyIn {
    #[serde(default, deserialize_with = "present")]
    pub canary: bool,
    #[serde(default, deserialize_with = "present")]
    pub blue_green: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl<'a> WorkloadIn<'a> {
    /// The gate label's value, when set and not empty.
    pub fn gate_label(&self) -> Option<&str> {
        self.metadata
            .as_ref()?
            .labels
            .as_ref()?
            .gate
            .as_ref()
            .map(Str::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Images of the pod template (`spec.template.spec`): initContainers
    /// then containers; a missing name or image reads as empty.
    pub fn images(&self) -> Vec<Image<'_>> {
        let Some(pod) = self
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
        else {
            return Vec::new();
        };
        [&pod.init_containers, &pod.containers]
            .into_iter()
            .flatten()
            .flatten()
            .map(|c| Image {
                container: c.name.as_ref().map(Str::as_str).unwrap_or(""),
                image: c.image.as_ref().map(Str::as_str).unwrap_or(""),
            })
            .collect()
    }

    /// Of a ReleaseGate: every pushed evidence observation, as
    /// `(connector, fact or "" for the document, observedAt)`.
    pub fn evidence_times(&self) -> Vec<(&str, &str, &str)> {
        let mut out = Vec::new();
        for doc in self
            .spec
            .as_ref()
            .and_then(|s| s.evidence.as_ref())
            .into_iter()
            .flatten()
        {
            let connector = doc.connector.as_ref().map(Str::as_str).unwrap_or("");
            if let Some(t) = doc.freshness.as_ref().and_then(|f| f.observed_at.as_ref()) {
                out.push((connector, "", t.as_str()));
            }
            for fact in doc.facts.iter().flatten() {
                if let Some(t) = &fact.observed_at {
                    out.push((
                        connector,
                        fact.name.as_ref().map(Str::as_str).unwrap_or(""),
                        t.as_str(),
                    ));
                }
            }
        }
        out
    }

    /// An Argo Rollout with a canary or blue-green strategy.
    pub fn progressive(&self, kind: &str) -> bool {
        kind == "Rollout"
            && self
                .spec
                .as_ref()
                .and_then(|s| s.strategy.as_ref())
                .is_some_and(|s| s.canary || s.blue_green)
    }
}

/// Reads an AdmissionReview body. UTF-8 is checked once for the whole body
/// (then no string is checked again while parsing); a body that is not UTF-8
/// is parsed from bytes only to report where.
pub fn parse(body: &[u8]) -> Result<AdmissionReviewIn<'_>, serde_json::Error> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [String]>,
}

#[derive(Serialize)]
struct StatusOut<'a> {
    status: &'static str,
    message: &'a str,
    reason: &'static str,
    code: u16,
}

/// The AdmissionReview answering request `uid` with `verdict` (a denial
/// carries status 403 Forbidden and the message).
pub fn encode_response(uid: &str, verdict: &Verdict) -> Vec<u8> {
    let (allowed, status, warnings) = match verdict {
        Verdict::Admit => (true, None, None),
        Verdict::AdmitWithWarning(w) => (true, None, Some(w.as_slice())),
        Verdict::Deny(message) => (
            false,
            Some(StatusOut {
                status: "Failure",
                message,
                reason: "Forbidden",
                code: 403,
            }),
            None,
        ),
    };
    encode(ResponseOut {
        uid,
        allowed,
        status,
        warnings,
    })
}

/// The AdmissionReview for a body that cannot be read (served with HTTP 400).
pub fn encode_invalid(message: &str) -> Vec<u8> {
    encode(ResponseOut {
        uid: "",
        allowed: false,
        status: Some(StatusOut {
            status: "Failure",
            message,
            reason: "BadRequest",
            code: 400,
        }),
        warnings: None,
    })
}

fn encode(response: ResponseOut<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + response.status.as_ref().map_or(0, |s| s.message.len()));
    let review = ReviewOut {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response,
    };
    // Serialising borrowed strings and booleans into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &review);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_strings_are_read_as_owned() {
        let body = br#"{"request":{"uid":"u","kind":{"group":"apps","kind":"Deployment"},"operation":"UPDATE",
            "object":{"metadata":{"labels":{"releasepassport.io/gate":"g\u0061te"}},
              "spec":{"template":{"spec":{"containers":[{"name":"api","image":"r/x\u0026y@sha256:00"}]}}}}}}"#;
        let review = parse(body).expect("parse");
        let request = review.request.expect("request");
        let object = request.object.expect("object");
        assert_eq!(object.gate_label(), Some("gate"));
        assert_eq!(object.images()[0].image, "r/x&y@sha256:00");
        assert!(request.old_object.is_none());
    }

    #[test]
    fn a_strategy_key_counts_even_when_null() {
        let object: WorkloadIn<'_> =
            serde_json::from_str(r#"{"spec":{"strategy":{"canary":null}}}"#).expect("parse");
        assert!(object.progressive("Rollout"));
        assert!(!object.progressive("Deployment"));
        let object: WorkloadIn<'_> =
            serde_json::from_str(r#"{"spec":{"strategy":{"type":"RollingUpdate"}}}"#)
                .expect("parse");
        assert!(!object.progressive("Rollout"));
    }

    #[test]
    fn responses_are_admission_reviews() {
        let v: serde_json::Value = serde_json::from_slice(&encode_response(
            "u\"1",
            &Verdict::Deny("no \"way\"".into()),
        ))
        .expect("json");
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], "u\"1");
        assert_eq!(v["response"]["allowed"], false);
        assert_eq!(v["response"]["status"]["code"], 403);
        assert_eq!(v["response"]["status"]["message"], "no \"way\"");
        let v: serde_json::Value =
            serde_json::from_slice(&encode_response("u", &Verdict::Admit)).expect("json");
        assert_eq!(
            v["response"],
            serde_json::json!({"uid": "u", "allowed": true})
        );
    }
}
