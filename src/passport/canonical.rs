//! RFC 8785 (JCS) canonical JSON.
//!
//! A direct writer over `serde_json::Value`: object members sorted by their
//! UTF-16 code units, no whitespace, strings with the minimal escapes of
//! RFC 8785 section 3.2.2.2, numbers as ECMAScript `Number.prototype.toString`
//! of the IEEE 754 double (ryu-js). The signature of every passport covers
//! these bytes, and the webhook verifies on its hot path, so it is written
//! for speed; a differential property test pins it to an independent
//! implementation.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::{Map, Value};

/// The canonical encoding of any serialisable value.
pub fn canonicalize<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    Ok(canonicalize_value(&value))
}

/// The canonical encoding of a JSON value.
pub fn canonicalize_value(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_value(value, &mut out);
    out
}

/// The canonical encoding of a JSON object without one of its members.
pub fn canonicalize_object_without(map: &Map<String, Value>, skip: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    write_object(map, Some(skip), &mut out);
    out
}

fn utf16_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, None, out),
    }
}

fn write_object(map: &Map<String, Value>, skip: Option<&str>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .collect();
    entries.sort_unstable_by(|a, b| utf16_cmp(a.0, b.0));
    out.push(b'{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(k, out);
        out.push(b':');
        write_value(v, out);
    }
    out.push(b'}');
}

/// Largest integer every smaller one of which a double represents exactly.
const MAX_SAFE: u64 = 1 << 53;

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    if let Some(u) = n.as_u64()
        && u <= MAX_SAFE
    {
        out.extend_from_slice(itoa(u, false).as_bytes());
        return;
    }
    if let Some(i) = n.as_i64()
        && i.unsigned_abs() <= MAX_SAFE
    {
        out.extend_from_slice(itoa(i.unsigned_abs(), i < 0).as_bytes());
        return;
    }
    // Every JSON number is read as (or converts to) a finite double.
    let f = n.as_f64().unwrap_or(0.0);
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(f).as_bytes());
}

fn itoa(mut n: u64, negative: bool) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut digits = [0u8; 21];
    let mut i = digits.len();
    while n > 0 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    if negative {
        i -= 1;
        digits[i] = b'-';
    }
    String::from_utf8_lossy(&digits[i..]).into_owned()
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jcs(s: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        String::from_utf8(canonicalize_value(&v)).unwrap()
    }

    /// RFC 8785 section 3.2.2 example.
    #[test]
    fn rfc8785_sample_object() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert_eq!(
            jcs(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 section 3.2.3: sorting by UTF-16 code units.
    #[test]
    fn rfc8785_sorting() {
        let input = r#"{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}"#;
        assert_eq!(
            jcs(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    /// RFC 8785 appendix B number samples.
    #[test]
    fn rfc8785_numbers() {
        for (input, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("9007199254740992", "9007199254740992"),
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("18446744073709551615", "18446744073709552000"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("295147905179352830000", "295147905179352830000"),
            ("4.5", "4.5"),
            ("-1.5e-10", "-1.5e-10"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
        ] {
            assert_eq!(jcs(&format!("[{input}]")), format!("[{want}]"), "{input}");
        }
    }

    #[test]
    fn control_characters_use_lowercase_unicode_escapes() {
        assert_eq!(
            jcs(r#"["\u0001\u001f\u007f\u2028"]"#),
            "[\"\\u0001\\u001f\u{7f}\u{2028}\"]"
        );
    }

    #[test]
    fn without_skips_the_member() {
        let v: serde_json::Value = serde_json::json!({"b": 1, "signature": {"x": 1}, "a": 2});
        let out = canonicalize_object_without(v.as_object().unwrap(), "signature");
        assert_eq!(out, br#"{"a":2,"b":1}"#);
    }
}
