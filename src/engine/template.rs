//! Next-action templates: `Attach rollback artifact for {service} {rollback.release}.`

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
}

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
                    let placeholder = Placeholder::parse(name).ok_or_else(|| {
                        let known: Vec<&str> = Placeholder::NAMES.iter().map(|(n, _)| *n).collect();
                        TemplateError(format!(
                            "unknown placeholder {{{name}}}; known: {}",
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
                Segment::Value(_) => 24,
            })
            .sum();
        Ok(Template { segments, len_hint })
    }

    /// Fills the template in.
    pub fn render<'v>(&self, lookup: impl Fn(Placeholder) -> Cow<'v, str>) -> String {
        let mut out = String::with_capacity(self.len_hint);
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Value(p) => out.push_str(&lookup(*p)),
            }
        }
        out
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
    fn doubled_braces_are_literal() {
        let t = Template::parse("{{x}} {service}").unwrap();
        assert_eq!(t.render(|_| "s".into()), "{x} s");
    }
}
