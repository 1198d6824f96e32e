//! Typed fact and threshold values.
//!
//! Facts arrive as JSON scalars written by connectors and humans: `2`, `"2%"`,
//! `"500ms"`, `true`, `"true"`, `"Synced"`, `"2026-05-17T06:30:00Z"`. They are
//! typed once, here, so that every comparison is made between like values.

use std::cmp::Ordering;
use std::fmt;

/// A scalar value with its type recovered.
#[derive(Clone, Debug, PartialEq)]
pub enum TypedValue {
    /// A number, with its unit when one was written (`%`, `ms`, `rps`, ...).
    /// Durations are normalised to seconds with unit `s`.
    Number { value: f64, unit: Option<String> },
    /// `true` or `false`, written as a boolean or as a string.
    Bool(bool),
    /// An RFC 3339 timestamp.
    Timestamp(jiff::Timestamp),
    /// Any other string.
    Text(String),
}

/// Why a JSON value is not a scalar fact value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotAScalar(pub &'static str);

impl TypedValue {
    /// Types a JSON scalar. Objects, arrays and null are not fact values.
    pub fn from_json(value: &serde_json::Value) -> Result<TypedValue, NotAScalar> {
        match value {
            serde_json::Value::Bool(b) => Ok(TypedValue::Bool(*b)),
            serde_json::Value::Number(n) => n
                .as_f64()
                .map(|value| TypedValue::Number { value, unit: None })
                .ok_or(NotAScalar("a number out of range")),
            serde_json::Value::String(s) => Ok(TypedValue::parse_str(s)),
            serde_json::Value::Null => Err(NotAScalar("null")),
            serde_json::Value::Array(_) => Err(NotAScalar("a list")),
            serde_json::Value::Object(_) => Err(NotAScalar("an object")),
        }
    }

    /// Types a string: boolean, number with optional unit, timestamp, else text.
    pub fn parse_str(s: &str) -> TypedValue {
        let trimmed = s.trim();
        match trimmed {
            "true" | "True" | "TRUE" => return TypedValue::Bool(true),
            "false" | "False" | "FALSE" => return TypedValue::Bool(false),
            _ => {}
        }
        if let Some(number) = parse_number_with_unit(trimmed) {
            return number;
        }
        if trimmed.len() >= 20
            && trimmed.as_bytes().get(4) == Some(&b'-')
            && let Ok(ts) = trimmed.parse::<jiff::Timestamp>()
        {
            return TypedValue::Timestamp(ts);
        }
        TypedValue::Text(s.to_string())
    }

    /// Name of the type, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            TypedValue::Number { unit: None, .. } => "number",
            TypedValue::Number { unit: Some(_), .. } => "number with unit",
            TypedValue::Bool(_) => "boolean",
            TypedValue::Timestamp(_) => "timestamp",
            TypedValue::Text(_) => "string",
        }
    }

    /// Whether the value can be ordered (numbers and timestamps).
    pub fn is_ordered(&self) -> bool {
        matches!(self, TypedValue::Number { .. } | TypedValue::Timestamp(_))
    }

    /// Orders two values of the same type. A unitless number compares with a
    /// number of any unit (connectors often drop the unit); two different
    /// units do not compare.
    pub fn compare(&self, other: &TypedValue) -> Result<Ordering, Mismatch> {
        match (self, other) {
            (
                TypedValue::Number { value: a, unit: ua },
                TypedValue::Number { value: b, unit: ub },
            ) => {
                if let (Some(ua), Some(ub)) = (ua, ub)
                    && ua != ub
                {
                    return Err(Mismatch::Unit(ua.clone(), ub.clone()));
                }
                a.partial_cmp(b).ok_or(Mismatch::NotANumber)
            }
            (TypedValue::Timestamp(a), TypedValue::Timestamp(b)) => Ok(a.cmp(b)),
            (a, b) => Err(Mismatch::Type(a.kind(), b.kind())),
        }
    }

    /// Equality between typed values; values of different types are never equal.
    pub fn equals(&self, other: &TypedValue) -> Result<bool, Mismatch> {
        match (self, other) {
            (TypedValue::Number { .. }, TypedValue::Number { .. })
            | (TypedValue::Timestamp(_), TypedValue::Timestamp(_)) => {
                Ok(self.compare(other)? == Ordering::Equal)
            }
            (TypedValue::Bool(a), TypedValue::Bool(b)) => Ok(a == b),
            (TypedValue::Text(a), TypedValue::Text(b)) => Ok(a == b),
            (a, b) => Err(Mismatch::Type(a.kind(), b.kind())),
        }
    }
}

/// Why two values could not be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Different types, e.g. a string against a number.
    Type(&'static str, &'static str),
    /// Different units, e.g. `ms` against `%`.
    Unit(String, String),
    /// NaN.
    NotANumber,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Type(a, b) => write!(f, "cannot compare a {a} with a {b}"),
            Mismatch::Unit(a, b) => write!(f, "cannot compare unit {a} with unit {b}"),
            Mismatch::NotANumber => f.write_str("not a number"),
        }
    }
}

impl fmt::Display for TypedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypedValue::Number { value, unit } => {
                write!(f, "{value}")?;
                if let Some(unit) = unit {
                    f.write_str(unit)?;
                }
                Ok(())
            }
            TypedValue::Bool(b) => write!(f, "{b}"),
            TypedValue::Timestamp(ts) => write!(f, "{ts}"),
            TypedValue::Text(s) => f.write_str(s),
        }
    }
}

/// `12`, `-0.5`, `2%`, `2 %`, `500ms`, `1.5s`, `3e2`, `10rps`.
fn parse_number_with_unit(s: &str) -> Option<TypedValue> {
    let bytes = s.as_bytes();
    let mut end = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        end = 1;
    }
    let digits_start = end;
    let mut seen_digit = false;
    let mut seen_dot = false;
    while end < bytes.len() {
        match bytes[end] {
            b'0'..=b'9' => seen_digit = true,
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        end += 1;
    }
    if !seen_digit || end == digits_start {
        return None;
    }
    // Exponent, only when followed by digits (so `5e` stays a unit-less oddity).
    if end < bytes.len() && matches!(bytes[end], b'e' | b'E') {
        let mut e = end + 1;
        if e < bytes.len() && matches!(bytes[e], b'-' | b'+') {
            e += 1;
        }
        let exp_digits = e;
        while e < bytes.len() && bytes[e].is_ascii_digit() {
            e += 1;
        }
        if e > exp_digits {
            end = e;
        }
    }
    let value: f64 = s[..end].parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let unit = s[end..].trim();
    if unit.is_empty() {
        return Some(TypedValue::Number { value, unit: None });
    }
    if unit.len() > 16
        || !unit
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '%' || c == '/')
    {
        return None;
    }
    let seconds = match unit {
        "ns" => Some(1e-9),
        "us" | "µs" => Some(1e-6),
        "ms" => Some(1e-3),
        "s" | "sec" => Some(1.0),
        "m" | "min" => Some(60.0),
        "h" => Some(3600.0),
        "d" => Some(86400.0),
        _ => None,
    };
    Some(match seconds {
        Some(factor) => TypedValue::Number {
            value: value * factor,
            unit: Some("s".to_string()),
        },
        None => TypedValue::Number {
            value,
            unit: Some(unit.to_string()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(v: serde_json::Value) -> TypedValue {
        TypedValue::from_json(&v).unwrap()
    }

    #[test]
    fn percent_strings_are_numbers_with_unit() {
        assert_eq!(
            typed(json!("2.5%")),
            TypedValue::Number {
                value: 2.5,
                unit: Some("%".into())
            }
        );
    }

    #[test]
    fn durations_are_normalised_to_seconds() {
        let a = typed(json!("500ms"));
        let b = typed(json!("1s"));
        assert_eq!(a.compare(&b), Ok(Ordering::Less));
    }

    #[test]
    fn boolean_strings_are_booleans() {
        assert_eq!(typed(json!("true")), TypedValue::Bool(true));
    }

    #[test]
    fn timestamps_are_typed() {
        assert!(matches!(
            typed(json!("2026-05-17T06:30:00Z")),
            TypedValue::Timestamp(_)
        ));
    }

    #[test]
    fn words_stay_text() {
        assert_eq!(typed(json!("Synced")), TypedValue::Text("Synced".into()));
        assert_eq!(
            typed(json!("5 apples and more")),
            TypedValue::Text("5 apples and more".into())
        );
    }

    #[test]
    fn different_units_do_not_compare() {
        assert!(typed(json!("2%")).compare(&typed(json!("2ms"))).is_err());
    }

    #[test]
    fn unitless_number_compares_with_unit() {
        assert_eq!(
            typed(json!(3)).compare(&typed(json!("2%"))),
            Ok(Ordering::Greater)
        );
    }

    #[test]
    fn strings_and_numbers_are_never_equal() {
        assert!(typed(json!("Synced")).equals(&typed(json!(1))).is_err());
    }

    #[test]
    fn objects_are_not_scalars() {
        assert!(TypedValue::from_json(&json!({"a": 1})).is_err());
        assert!(TypedValue::from_json(&json!(null)).is_err());
    }
}
