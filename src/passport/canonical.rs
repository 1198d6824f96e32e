//! RFC 8785 (JCS) canonical JSON.
//!
//! Object members sorted by their UTF-16 code units, no whitespace, strings
//! with the minimal escapes of RFC 8785 section 3.2.2.2, numbers as
//! ECMAScript `Number.prototype.toString` of the IEEE 754 double (ryu-js).
//! The signature of every passport covers these bytes, and the webhook
//! verifies on its hot path, so it is written for speed; property tests pin
//! it to an independent implementation.
//!
//! Two writers produce the same bytes:
//! - [`canonicalize`] serialises any `Serialize` value straight into the
//!   output (a serde `Serializer`, no intermediate `serde_json::Value`): what
//!   signing uses on the typed passport;
//! - [`canonicalize_value`] walks a `serde_json::Value`: what verification
//!   uses on the JSON as stored.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::{Map, Value};

/// The canonical encoding of any serialisable value, byte-identical to
/// [`canonicalize_value`] of `serde_json::to_value(value)`.
pub fn canonicalize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    write_serialize(value, None, &mut out)?;
    Ok(out)
}

/// The canonical encoding of a value that serialises as a JSON object,
/// without its top-level member `skip` (e.g. a passport without its
/// `signature`), appended to `out`. Byte-identical to
/// [`canonicalize_object_without`] of its `serde_json::Value`.
pub fn write_object_without<T: Serialize + ?Sized>(
    value: &T,
    skip: &str,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let start = out.len();
    write_serialize(value, Some(skip), out)?;
    if out.get(start) != Some(&b'{') {
        out.truncate(start);
        return Err(serde::ser::Error::custom("expected a JSON object"));
    }
    Ok(())
}

fn write_serialize<T: Serialize + ?Sized>(
    value: &T,
    skip: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let mut ser = ser::Jcs {
        out,
        members: Vec::with_capacity(64),
        keys: String::with_capacity(512),
        scratch: Vec::new(),
        skip,
        depth: 0,
    };
    value.serialize(&mut ser)
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
    if let Some(u) = n.as_u64() {
        write_u64(u, out);
    } else if let Some(i) = n.as_i64() {
        write_i64(i, out);
    } else {
        // Every JSON number is read as (or converts to) a finite double.
        write_f64(n.as_f64().unwrap_or(0.0), out);
    }
}

/// An integer as `serde_json::Value` holds it, written as the double
/// ECMAScript would print: exact up to 2^53, rounded beyond.
fn write_u64(u: u64, out: &mut Vec<u8>) {
    if u <= MAX_SAFE {
        write_decimal(u, false, out);
    } else {
        write_f64(u as f64, out);
    }
}

fn write_i64(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        write_u64(i.unsigned_abs(), out);
    } else if i.unsigned_abs() <= MAX_SAFE {
        write_decimal(i.unsigned_abs(), true, out);
    } else {
        write_f64(i as f64, out);
    }
}

/// A double; non-finite values are `null`, as `serde_json::to_value` makes them.
fn write_f64(f: f64, out: &mut Vec<u8>) {
    if f.is_finite() {
        let mut buffer = ryu_js::Buffer::new();
        out.extend_from_slice(buffer.format_finite(f).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_decimal(mut n: u64, negative: bool, out: &mut Vec<u8>) {
    let mut digits = [0u8; 21];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        digits[i] = b'-';
    }
    out.extend_from_slice(&digits[i..]);
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_escaped(s, out);
    out.push(b'"');
}

/// Whether any of 8 bytes is a control character, `"` or `\`.
#[inline]
fn chunk_needs_escape(chunk: [u8; 8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_le_bytes(chunk);
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    // Bytes below 0x20: (x - 0x20) borrows into the high bit, unless the
    // byte already had it set (0x80 and above are never escaped).
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
    below_space | has_zero(x ^ (ONES * u64::from(b'"'))) | has_zero(x ^ (ONES * u64::from(b'\\')))
        != 0
}

/// The string's content with the minimal escapes of RFC 8785.
fn write_escaped(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip 8 bytes at a time while none of them needs an escape.
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(chunk);
            if !chunk_needs_escape(eight) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The serde `Serializer` behind [`canonicalize`]: writes canonical JSON as
/// it goes. Object members are written in the order they come, remembered
/// (key and byte range), and reordered once the object is complete when
/// they were not already in canonical order, so nested objects are sorted
/// before their parent. What it accepts and how it maps Rust data to JSON
/// follows `serde_json::to_value` (non-finite floats become `null`, bytes an
/// array of numbers, enum variants `"Name"` or `{"Name": ...}`); a key that
/// appears twice in one object is an error rather than silently dropped.
mod ser {
    use std::cmp::Ordering;
    use std::fmt;

    use serde::Serialize;
    use serde::ser::{self, Error as _, Impossible};
    use serde_json::Error;

    use super::{utf16_cmp, write_escaped, write_f64, write_i64, write_string, write_u64};

    /// One member of an object being written: its raw key (a range of
    /// `Jcs::keys`) and its bytes from the key's opening quote (a range of
    /// the output).
    pub(super) struct Member {
        key: (usize, usize),
        /// The key's first 8 bytes, big-endian, zero-padded, when the key is
        /// ASCII (where byte order is UTF-16 order): most comparisons end here.
        prefix: Option<u64>,
        start: usize,
        end: usize,
    }

    impl Member {
        fn new(key: (usize, usize), keys: &str, start: usize, end: usize) -> Member {
            let raw = &keys.as_bytes()[key.0..key.1];
            let prefix = raw.is_ascii().then(|| {
                let mut eight = [0u8; 8];
                let n = raw.len().min(8);
                eight[..n].copy_from_slice(&raw[..n]);
                u64::from_be_bytes(eight)
            });
            Member {
                key,
                prefix,
                start,
                end,
            }
        }
    }

    /// RFC 8785 member order.
    fn member_cmp(keys: &str, a: &Member, b: &Member) -> Ordering {
        if let (Some(pa), Some(pb)) = (a.prefix, b.prefix) {
            if pa != pb {
                return pa.cmp(&pb);
            }
            return keys.as_bytes()[a.key.0..a.key.1].cmp(&keys.as_bytes()[b.key.0..b.key.1]);
        }
        utf16_cmp(&keys[a.key.0..a.key.1], &keys[b.key.0..b.key.1])
    }

    pub(super) struct Jcs<'a> {
        pub(super) out: &'a mut Vec<u8>,
        /// Members of every object still open, innermost last.
        pub(super) members: Vec<Member>,
        /// Raw keys of those members.
        pub(super) keys: String,
        /// Copy of an object's body while its members are reordered.
        pub(super) scratch: Vec<u8>,
        /// Top-level member left out (the passport's `signature`).
        pub(super) skip: Option<&'a str>,
        /// Containers open around the value being written.
        pub(super) depth: usize,
    }

    impl<'a> Jcs<'a> {
        fn begin_object(&mut self) -> Object<'_, 'a> {
            let skip = if self.depth == 0 { self.skip } else { None };
            self.depth += 1;
            self.out.push(b'{');
            Object {
                start: self.out.len(),
                first_member: self.members.len(),
                keys_start: self.keys.len(),
                pending_key: None,
                skip,
                variant: false,
                ser: self,
            }
        }

        /// `{"variant":` of an externally tagged enum variant. Returns
        /// false (and writes nothing) when the variant is the skipped
        /// top-level member: the caller writes `{}` then.
        fn begin_variant(&mut self, variant: &str) -> bool {
            if self.depth == 0 && self.skip == Some(variant) {
                return false;
            }
            self.depth += 1;
            self.out.push(b'{');
            write_string(variant, self.out);
            self.out.push(b':');
            true
        }

        fn end_variant(&mut self) {
            self.depth -= 1;
            self.out.push(b'}');
        }
    }

    pub(super) struct Object<'s, 'a> {
        ser: &'s mut Jcs<'a>,
        /// Output position just after `{`.
        start: usize,
        first_member: usize,
        keys_start: usize,
        /// Key range of a map entry whose value comes next; `None` for a
        /// skipped key.
        pending_key: Option<Option<(usize, usize)>>,
        skip: Option<&'a str>,
        /// A struct variant: one more `}` to close.
        variant: bool,
    }

    impl Object<'_, '_> {
        fn member<T: Serialize + ?Sized>(
            &mut self,
            key: (usize, usize),
            value: &T,
        ) -> Result<(), Error> {
            if self.ser.members.len() > self.first_member {
                self.ser.out.push(b',');
            }
            let start = self.ser.out.len();
            write_string(&self.ser.keys[key.0..key.1], self.ser.out);
            self.ser.out.push(b':');
            value.serialize(&mut *self.ser)?;
            let end = self.ser.out.len();
            let member = Member::new(key, &self.ser.keys, start, end);
            self.ser.members.push(member);
            Ok(())
        }

        fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
            if self.skip == Some(key) {
                return Ok(());
            }
            let from = self.ser.keys.len();
            self.ser.keys.push_str(key);
            self.member((from, self.ser.keys.len()), value)
        }

        fn finish(self) -> Result<(), Error> {
            let ser = self.ser;
            let keys = &ser.keys;
            let members = &mut ser.members[self.first_member..];
            let key = |m: &Member| &keys[m.key.0..m.key.1];
            let mut sorted = true;
            for pair in members.windows(2) {
                match member_cmp(keys, &pair[0], &pair[1]) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        return Err(Error::custom(format_args!(
                            "duplicate object key {:?}",
                            key(&pair[0])
                        )));
                    }
                    Ordering::Greater => sorted = false,
                }
            }
            if !sorted {
                members.sort_unstable_by(|a, b| member_cmp(keys, a, b));
                if let Some(pair) = members
                    .windows(2)
                    .find(|p| member_cmp(keys, &p[0], &p[1]).is_eq())
                {
                    return Err(Error::custom(format_args!(
                        "duplicate object key {:?}",
                        key(&pair[0])
                    )));
                }
                ser.scratch.clear();
                ser.scratch.extend_from_slice(&ser.out[self.start..]);
                ser.out.truncate(self.start);
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        ser.out.push(b',');
                    }
                    ser.out
                        .extend_from_slice(&ser.scratch[m.start - self.start..m.end - self.start]);
                }
            }
            ser.members.truncate(self.first_member);
            ser.keys.truncate(self.keys_start);
            ser.depth -= 1;
            ser.out.push(b'}');
            if self.variant {
                ser.end_variant();
            }
            Ok(())
        }
    }

    pub(super) struct Array<'s, 'a> {
        ser: &'s mut Jcs<'a>,
        first: bool,
        /// A tuple variant: one more `}` to close.
        variant: bool,
    }

    impl Array<'_, '_> {
        fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
            if !self.first {
                self.ser.out.push(b',');
            }
            self.first = false;
            value.serialize(&mut *self.ser)
        }

        fn finish(self) -> Result<(), Error> {
            self.ser.depth -= 1;
            self.ser.out.push(b']');
            if self.variant {
                self.ser.end_variant();
            }
            Ok(())
        }
    }

    /// Escapes `Display` output straight into the document.
    struct Escaper<'o>(&'o mut Vec<u8>);

    impl fmt::Write for Escaper<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            write_escaped(s, self.0);
            Ok(())
        }
    }

    impl<'s, 'a> ser::Serializer for &'s mut Jcs<'a> {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = Array<'s, 'a>;
        type SerializeTuple = Array<'s, 'a>;
        type SerializeTupleStruct = Array<'s, 'a>;
        type SerializeTupleVariant = Array<'s, 'a>;
        type SerializeMap = Object<'s, 'a>;
        type SerializeStruct = Object<'s, 'a>;
        type SerializeStructVariant = Object<'s, 'a>;

        fn serialize_bool(self, v: bool) -> Result<(), Error> {
            self.out
                .extend_from_slice(if v { b"true" } else { b"false" });
            Ok(())
        }
        fn serialize_i8(self, v: i8) -> Result<(), Error> {
            self.serialize_i64(i64::from(v))
        }
        fn serialize_i16(self, v: i16) -> Result<(), Error> {
            self.serialize_i64(i64::from(v))
        }
        fn serialize_i32(self, v: i32) -> Result<(), Error> {
            self.serialize_i64(i64::from(v))
        }
        fn serialize_i64(self, v: i64) -> Result<(), Error> {
            write_i64(v, self.out);
            Ok(())
        }
        fn serialize_i128(self, v: i128) -> Result<(), Error> {
            if let Ok(u) = u64::try_from(v) {
                self.serialize_u64(u)
            } else if let Ok(i) = i64::try_from(v) {
                self.serialize_i64(i)
            } else {
                Err(Error::custom("number out of range"))
            }
        }
        fn serialize_u8(self, v: u8) -> Result<(), Error> {
            self.serialize_u64(u64::from(v))
        }
        fn serialize_u16(self, v: u16) -> Result<(), Error> {
            self.serialize_u64(u64::from(v))
        }
        fn serialize_u32(self, v: u32) -> Result<(), Error> {
            self.serialize_u64(u64::from(v))
        }
        fn serialize_u64(self, v: u64) -> Result<(), Error> {
            write_u64(v, self.out);
            Ok(())
        }
        fn serialize_u128(self, v: u128) -> Result<(), Error> {
            u64::try_from(v)
                .map_err(|_| Error::custom("number out of range"))
                .and_then(|u| self.serialize_u64(u))
        }
        fn serialize_f32(self, v: f32) -> Result<(), Error> {
            self.serialize_f64(f64::from(v))
        }
        fn serialize_f64(self, v: f64) -> Result<(), Error> {
            write_f64(v, self.out);
            Ok(())
        }
        fn serialize_char(self, v: char) -> Result<(), Error> {
            self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
        }
        fn serialize_str(self, v: &str) -> Result<(), Error> {
            write_string(v, self.out);
            Ok(())
        }
        fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
            use ser::SerializeSeq as _;
            let mut seq = self.serialize_seq(Some(v.len()))?;
            for b in v {
                seq.serialize_element(b)?;
            }
            seq.end()
        }
        fn serialize_none(self) -> Result<(), Error> {
            self.serialize_unit()
        }
        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
            value.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), Error> {
            self.out.extend_from_slice(b"null");
            Ok(())
        }
        fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
            self.serialize_unit()
        }
        fn serialize_unit_variant(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
        ) -> Result<(), Error> {
            self.serialize_str(variant)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _name: &'static str,
            value: &T,
        ) -> Result<(), Error> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
            value: &T,
        ) -> Result<(), Error> {
            if !self.begin_variant(variant) {
                self.out.extend_from_slice(b"{}");
                return Ok(());
            }
            value.serialize(&mut *self)?;
            self.end_variant();
            Ok(())
        }
        fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'s, 'a>, Error> {
            self.depth += 1;
            self.out.push(b'[');
            Ok(Array {
                ser: self,
                first: true,
                variant: false,
            })
        }
        fn serialize_tuple(self, len: usize) -> Result<Array<'s, 'a>, Error> {
            self.serialize_seq(Some(len))
        }
        fn serialize_tuple_struct(
            self,
            _name: &'static str,
            len: usize,
        ) -> Result<Array<'s, 'a>, Error> {
            self.serialize_seq(Some(len))
        }
        fn serialize_tuple_variant(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
            _len: usize,
        ) -> Result<Array<'s, 'a>, Error> {
            if !self.begin_variant(variant) {
                return Err(Error::custom("the skipped member cannot be a variant"));
            }
            let mut array = self.serialize_seq(None)?;
            array.variant = true;
            Ok(array)
        }
        fn serialize_map(self, _len: Option<usize>) -> Result<Object<'s, 'a>, Error> {
            Ok(self.begin_object())
        }
        fn serialize_struct(
            self,
            _name: &'static str,
            _len: usize,
        ) -> Result<Object<'s, 'a>, Error> {
            Ok(self.begin_object())
        }
        fn serialize_struct_variant(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
            _len: usize,
        ) -> Result<Object<'s, 'a>, Error> {
            if !self.begin_variant(variant) {
                return Err(Error::custom("the skipped member cannot be a variant"));
            }
            let mut object = self.begin_object();
            object.variant = true;
            Ok(object)
        }
        fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
            use fmt::Write as _;
            self.out.push(b'"');
            write!(Escaper(self.out), "{value}")
                .map_err(|_| Error::custom("a Display implementation failed"))?;
            self.out.push(b'"');
            Ok(())
        }
    }

    impl ser::SerializeSeq for Array<'_, '_> {
        type Ok = ();
        type Error = Error;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
            self.element(value)
        }
        fn end(self) -> Result<(), Error> {
            self.finish()
        }
    }

    impl ser::SerializeTuple for Array<'_, '_> {
        type Ok = ();
        type Error = Error;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
            self.element(value)
        }
        fn end(self) -> Result<(), Error> {
            self.finish()
        }
    }

    impl ser::SerializeTupleStruct for Array<'_, '_> {
        type Ok = ();
        type Error = Error;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
            self.element(value)
        }
        fn end(self) -> Result<(), Error> {
            self.finish()
        }
    }

    impl ser::SerializeTupleVariant for Array<'_, '_> {
        type Ok = ();
        type Error = Error;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
            self.element(value)
        }
        fn end(self) -> Result<(), Error> {
            self.finish()
        }
    }

    impl ser::SerializeMap for Object<'_, '_> {
        type Ok = ();
        type Error = Error;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
            let from = self.ser.keys.len();
            key.serialize(KeyWriter(&mut self.ser.keys))?;
            let to = self.ser.keys.len();
            self.pending_key = Some(if self.skip == Some(&self.ser.keys[from..to]) {
                self.ser.keys.truncate(from);
                None
            } else {
                Some((from, to))
            });
            Ok(())
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
            match self.pending_key.take() {
                Some(Some(key)) => self.member(key, value),
                Some(None) => Ok(()),
                None => Err(Error::custom("serialize_value called before serialize_key")),
            }
        }
        fn end(self) -> Result<(), Error> {
            self.finish()
        }
    }

    impl ser::SerializeStruct for Object<'_, '_> {
        type Ok = ();
        type Error = Error;
        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            value: &T,
        ) -> Result<(), Error> {
            self.field(key, value)
        }
        fn end(self) -> Result<(), Error> {
            self.finish()
        }
    }

    impl ser::SerializeStructVariant for Object<'_, '_> {
        type Ok = ();
        type Error = Error;
        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            value: &T,
        ) -> Result<(), Error> {
            self.field(key, value)
        }
        fn end(self) -> Result<(), Error> {
            self.finish()
        }
    }

    /// Map keys, as `serde_json` turns them into strings: strings, chars,
    /// booleans, integers, unit variants. Appends the raw key.
    struct KeyWriter<'k>(&'k mut String);

    fn key_must_be_a_string() -> Error {
        Error::custom("key must be a string")
    }

    impl KeyWriter<'_> {
        fn display(self, v: impl fmt::Display) -> Result<(), Error> {
            use fmt::Write as _;
            write!(self.0, "{v}").map_err(|_| key_must_be_a_string())
        }
    }

    impl ser::Serializer for KeyWriter<'_> {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = Impossible<(), Error>;
        type SerializeTuple = Impossible<(), Error>;
        type SerializeTupleStruct = Impossible<(), Error>;
        type SerializeTupleVariant = Impossible<(), Error>;
        type SerializeMap = Impossible<(), Error>;
        type SerializeStruct = Impossible<(), Error>;
        type SerializeStructVariant = Impossible<(), Error>;

        fn serialize_bool(self, v: bool) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_i8(self, v: i8) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_i16(self, v: i16) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_i32(self, v: i32) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_i64(self, v: i64) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_i128(self, v: i128) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_u8(self, v: u8) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_u16(self, v: u16) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_u32(self, v: u32) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_u64(self, v: u64) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_u128(self, v: u128) -> Result<(), Error> {
            self.display(v)
        }
        fn serialize_f32(self, _v: f32) -> Result<(), Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_f64(self, _v: f64) -> Result<(), Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_char(self, v: char) -> Result<(), Error> {
            self.0.push(v);
            Ok(())
        }
        fn serialize_str(self, v: &str) -> Result<(), Error> {
            self.0.push_str(v);
            Ok(())
        }
        fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_none(self) -> Result<(), Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_unit(self) -> Result<(), Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_unit_variant(
            self,
            _name: &'static str,
            _index: u32,
            variant: &'static str,
        ) -> Result<(), Error> {
            self.0.push_str(variant);
            Ok(())
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _name: &'static str,
            value: &T,
        ) -> Result<(), Error> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _name: &'static str,
            _index: u32,
            _variant: &'static str,
            _value: &T,
        ) -> Result<(), Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_tuple_struct(
            self,
            _name: &'static str,
            _len: usize,
        ) -> Result<Self::SerializeTupleStruct, Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_tuple_variant(
            self,
            _name: &'static str,
            _index: u32,
            _variant: &'static str,
            _len: usize,
        ) -> Result<Self::SerializeTupleVariant, Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_struct(
            self,
            _name: &'static str,
            _len: usize,
        ) -> Result<Self::SerializeStruct, Error> {
            Err(key_must_be_a_string())
        }
        fn serialize_struct_variant(
            self,
            _name: &'static str,
            _index: u32,
            _variant: &'static str,
            _len: usize,
        ) -> Result<Self::SerializeStructVariant, Error> {
            Err(key_must_be_a_string())
        }
    }
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

    // The serialiser against the value writer (and so against
    // `serde_json::to_value`): the signature is made with one and checked
    // with the other.

    fn via_value<T: Serialize>(value: &T) -> Vec<u8> {
        canonicalize_value(&serde_json::to_value(value).unwrap())
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    enum Kind {
        Plain,
        Wrapped(u8),
        Pair(i32, String),
        Shaped { zeta: bool, alpha: Option<u8> },
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        zulu: String,
        alpha_beta: Vec<Kind>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        kept_none: Option<u8>,
        numbers: (u64, i64, f64, f32, i128, u128),
        by_name: std::collections::BTreeMap<String, serde_json::Value>,
        by_number: std::collections::BTreeMap<u32, char>,
        at: jiff::Timestamp,
        #[serde(with = "serde_bytes_as_seq")]
        bytes: Vec<u8>,
        signature: &'static str,
        unit: (),
    }

    mod serde_bytes_as_seq {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    fn sample(f: f64) -> Sample {
        Sample {
            zulu: "tab\there \"q\" \\ \u{1} € 😀 \u{7f}".into(),
            alpha_beta: vec![
                Kind::Plain,
                Kind::Wrapped(7),
                Kind::Pair(-3, "x".into()),
                Kind::Shaped {
                    zeta: true,
                    alpha: None,
                },
            ],
            skipped: None,
            kept_none: None,
            numbers: (
                u64::MAX,
                i64::MIN,
                f,
                0.1f32,
                -(1i128 << 60),
                (1u128 << 53) + 1,
            ),
            by_name: [
                ("€".to_string(), serde_json::json!(1.5)),
                (
                    "\r".to_string(),
                    serde_json::json!({"b": [1, {"d": 0, "c": null}], "a": "s"}),
                ),
                ("😀".to_string(), serde_json::json!(-0.0)),
                ("\u{fb33}".to_string(), serde_json::json!(1e21)),
            ]
            .into_iter()
            .collect(),
            by_number: [(10, 'a'), (9, 'b'), (100, '"')].into_iter().collect(),
            at: "2026-05-17T06:30:00.123456789Z".parse().unwrap(),
            bytes: vec![0, 255, 16],
            signature: "kept below the top level only",
            unit: (),
        }
    }

    #[test]
    fn the_serializer_writes_what_the_value_writer_writes() {
        for f in [
            0.0,
            -0.0,
            1.0,
            4.5,
            1e-7,
            1e21,
            333_333_333.333_333_3,
            f64::NAN,
            f64::INFINITY,
        ] {
            let s = sample(f);
            assert_eq!(
                String::from_utf8(canonicalize(&s).unwrap()).unwrap(),
                String::from_utf8(via_value(&s)).unwrap(),
                "{f}"
            );
        }
    }

    #[test]
    fn the_serializer_leaves_out_the_top_level_member_only() {
        let s = sample(1.0);
        let value = serde_json::to_value(&s).unwrap();
        let mut out = Vec::new();
        write_object_without(&s, "signature", &mut out).unwrap();
        assert_eq!(
            out,
            canonicalize_object_without(value.as_object().unwrap(), "signature")
        );
        assert!(!String::from_utf8(out).unwrap().contains("signature"));
        let nested = serde_json::json!({"a": {"signature": 1}, "signature": 2});
        let mut out = Vec::new();
        write_object_without(&nested, "signature", &mut out).unwrap();
        assert_eq!(out, br#"{"a":{"signature":1}}"#);
    }

    #[test]
    fn the_serializer_rejects_what_is_not_an_object_where_one_is_needed() {
        let mut out = Vec::new();
        assert!(write_object_without(&[1, 2], "signature", &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        #[derive(Serialize)]
        struct Twice {
            a: u8,
            #[serde(flatten)]
            inner: Inner,
        }
        #[derive(Serialize)]
        struct Inner {
            a: u8,
        }
        assert!(
            canonicalize(&Twice {
                a: 1,
                inner: Inner { a: 2 }
            })
            .is_err()
        );
    }

    #[test]
    fn escapes_are_found_in_every_position_of_a_chunk() {
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for len in 0..20 {
                for at in 0..=len {
                    let mut s: String = "a".repeat(len);
                    s.insert(at, special);
                    let v = serde_json::Value::from(s.clone());
                    assert_eq!(
                        canonicalize(&s).unwrap(),
                        serde_json_canonicalizer::to_vec(&v).unwrap(),
                        "{s:?}"
                    );
                }
            }
        }
    }

    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9 €😀\\\\\"\\n\\t\u{1}-\u{1f}\u{7f}\u{2028}]{0,24}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z€😀\u{fb33}\r_]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Both writers against an independent RFC 8785 implementation.
        #[test]
        fn both_writers_match_an_independent_implementation(value in arb_json()) {
            let reference = serde_json_canonicalizer::to_vec(&value).unwrap();
            prop_assert_eq!(&canonicalize_value(&value), &reference);
            prop_assert_eq!(&canonicalize(&value).unwrap(), &reference);
        }

        /// Typed data through the serialiser, against its JSON value.
        #[test]
        fn the_serializer_matches_the_value_of_typed_data(
            f in any::<f64>(),
            text in "[a-z€😀\"\\\\\n\u{1}]{0,40}",
            map in prop::collection::btree_map("[a-zA-Z€😀_]{0,6}", any::<i64>(), 0..8),
        ) {
            let mut s = sample(f);
            s.zulu = text;
            s.by_name = map.into_iter().map(|(k, v)| (k, serde_json::Value::from(v))).collect();
            prop_assert_eq!(canonicalize(&s).unwrap(), via_value(&s));
        }
    }
}
