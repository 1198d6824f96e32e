//! RFC 8785 (JCS) canonical JSON.

use serde::Serialize;

/// The canonical encoding of any serialisable value: keys sorted by UTF-16
/// code units, no whitespace, numbers in ECMAScript form, minimal escapes.
pub fn canonicalize<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json_canonicalizer::to_vec(value)
}

/// A JSON object seen without one of its keys, serialised without copying.
pub(crate) struct Without<'a> {
    pub map: &'a serde_json::Map<String, serde_json::Value>,
    pub key: &'a str,
}

impl Serialize for Without<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let len = self.map.len() - usize::from(self.map.contains_key(self.key));
        let mut m = serializer.serialize_map(Some(len))?;
        for (k, v) in self.map {
            if k != self.key {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jcs(s: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        String::from_utf8(canonicalize(&v).unwrap()).unwrap()
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
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("295147905179352830000", "295147905179352830000"),
            ("4.5", "4.5"),
            ("-1.5e-10", "-1.5e-10"),
        ] {
            assert_eq!(jcs(&format!("[{input}]")), format!("[{want}]"), "{input}");
        }
    }

    #[test]
    fn without_skips_the_key() {
        let v: serde_json::Value = serde_json::json!({"b": 1, "signature": {"x": 1}, "a": 2});
        let map = v.as_object().unwrap();
        let out = canonicalize(&Without {
            map,
            key: "signature",
        })
        .unwrap();
        assert_eq!(out, br#"{"a":2,"b":1}"#);
    }
}
