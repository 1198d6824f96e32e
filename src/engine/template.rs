//! Next-action templates: `Attach rollback artifact for {service} {rollback.release}.`
//! Besides the gate's values, `{evidence.<fact>}` names a fact of the rule's
//! own connector (e.g. `Resolve {evidence.most_severe_incident} first.`).

use std::borrow::Cow;

/// A value a template can refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    Service,
    Release,
    Environment,
    Mode,
    Policy,
    RollbackRelease,
    RollbackImage,
    ArtifactImage,
    ArtifactDigest,
    RuleId,
    RuleLabel,
    RequiredApprovers,
}

impl Placeholder {
    /// Every placeholder name, as written between braces.
    pub const NAMES: [(&'static str, Placeholder); 12] = [
        ("service", Placeholder::Service),
        ("release", Placeholder::Release),
        ("environment", Placeholder::Environment),
        ("mode", Placeholder::Mode),
        ("policy", Placeholder::Policy),
        ("rollback.release", Placeholder::RollbackRelease),
        ("rollback.image", Placeholder::RollbackImage),
        ("artifact.image", Placeholder::ArtifactImage),
        ("artifact.digest", Placeholder::ArtifactDigest),
        ("rule.id", Placeholder::RuleId),
        ("rule.label", Placeholder::RuleLabel),
        ("approval.requiredApprovers", Placeholder::RequiredApprovers),
    ];

    fn parse(name: &str) -> Option<Placeholder> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Text(String),
    Value(Placeholder),
    /// `{evidence.<fact>}`: a fact of the rule's connector.
    Evidence(String),
}

/// Prefix of the placeholders that name a fact of the rule's connector.
pub const EVIDENCE_PREFIX: &str = "evidence.";

/// A parsed template. `{{` and `}}` write literal braces.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    segments: Vec<Segment>,
    /// Length of the literal text plus room for the values.
    len_hint: usize,
}

/// A template error: an unknown placeholder or an unclosed brace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if matches!(chars.peek(), Some((_, '{'))) => {
                    chars.next();
                    text.push('{');
                }
                '}' if matches!(chars.peek(), Some((_, '}'))) => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = &source[i + 1..];
                    let Some(close) = rest.find('}') else {
                        return Err(TemplateError(format!("unclosed `{{` at character {i}")));
                    };
                    let name = rest[..close].trim();
                    if let Some(fact) = name.strip_prefix(EVIDENCE_PREFIX) {
                        if fact.is_empty() {
                            return Err(TemplateError(format!(
                                "{{{EVIDENCE_PREFIX}}} needs a fact name, e.g. {{{EVIDENCE_PREFIX}most_severe_incident}}"
                            )));
                        }
                        if !text.is_empty() {
                            segments.push(Segment::Text(std::mem::take(&mut text)));
                        }
                        segments.push(Segment::Evidence(fact.to_string()));
                        for _ in 0..rest[..=close].chars().count() {
                            chars.next();
                        }
                        continue;
                    }
                    let placeholder = Placeholder::parse(name).ok_or_else(|| {
                        let known: Vec<&str> = Placeholder::NAMES.iter().map(|(n, _)| *n).collect();
                        TemplateError(format!(
                            "unknown placeholder {{{name}}}; known: {}, {{{EVIDENCE_PREFIX}<fact>}}",
                            known.join(", ")
                        ))
                    })?;
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(Segment::Value(placeholder));
                    // Skip the name and the closing brace.
                    for _ in 0..rest[..=close].chars().count() {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(TemplateError(format!("unmatched `}}` at character {i}")));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        let len_hint = segments
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.len(),
                Segment::Value(_) | Segment::Evidence(_) => 24,
            })
            .sum();
        Ok(Template { segments, len_hint })
    }

    /// Fills the template in; `{evidence.<fact>}` placeholders render empty
    /// (see [`Template::render_with_evidence`]).
    pub fn render<'v>(&self, lookup: impl Fn(Placeholder) -> Cow<'v, str>) -> String {
        self.render_with_evidence(lookup, |_| Some(Cow::Borrowed("")))
            .unwrap_or_default()
    }

    /// Fills the template in, facts from `evidence`; `None` when a fact it
    /// names is absent (the caller then says something that needs none).
    pub fn render_with_evidence<'v, 'e>(
        &self,
        lookup: impl Fn(Placeholder) -> Cow<'v, str>,
        evidence: impl Fn(&str) -> Option<Cow<'e, str>>,
    ) -> Option<String> {
        let mut out = String::with_capacity(self.len_hint);
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Value(p) => out.push_str(&lookup(*p)),
                Segment::Evidence(fact) => out.push_str(&evidence(fact)?),
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let t =
            Template::parse("Attach rollback artifact for {service} {rollback.release}.").unwrap();
        let s = t.render(|p| match p {
            Placeholder::Service => "payment-api".into(),
            Placeholder::RollbackRelease => "v2.17.9".into(),
            _ => "".into(),
        });
        assert_eq!(s, "Attach rollback artifact for payment-api v2.17.9.");
    }

    #[test]
    fn rejects_unknown_placeholder() {
        let err = Template::parse("Ask {owner}").unwrap_err();
        assert!(err.0.contains("unknown placeholder {owner}"), "{}", err.0);
    }

    #[test]
    fn rejects_unclosed_brace() {
        assert!(Template::parse("Ask {service").is_err());
    }

    #[test]
    fn evidence_placeholders_name_facts_or_give_way() {
        let t =
            Template::parse("Resolve {evidence.most_severe_incident} before {release}.").unwrap();
        let s = t.render_with_evidence(
            |_| "v2".into(),
            |f| (f == "most_severe_incident").then(|| "incident #7".into()),
        );
        assert_eq!(s.as_deref(), Some("Resolve incident #7 before v2."));
        assert_eq!(t.render_with_evidence(|_| "v2".into(), |_| None), None);
        assert!(Template::parse("{evidence.}").is_err());
    }

    #[test]
    fn doubled_braces_are_literal() {
        let t = Template::parse("{{x}} {service}").unwrap();
        assert_eq!(t.render(|_| "s".into()), "{x} s");
    }
}
