//! The digests' canonical bytes, written straight into SHA-256.
//!
//! Both digests ([spec §3.4, §4](../../docs/spec.md)) are SHA-256 over compact
//! JSON: exactly what `serde_json::to_writer` writes for the IR's borrowed
//! views (`ir::canonical`, `compile::requested_digest`). This serializer
//! writes those bytes itself, because serde_json's byte-at-a-time escaping
//! and buffered writer were most of the time a compile spends on digests:
//! a string with nothing to escape (almost every one) is copied whole, and
//! the output goes to a plain buffer handed to the hasher in 32 KiB blocks.
//!
//! It covers the shapes the views use (structs, sequences, maps with string
//! keys, strings, booleans, integers up to 64 bits, options, unit variants)
//! and refuses
//! the rest. `tests` compare its bytes with serde_json's for every shape,
//! and every string byte.

use serde::ser::{self, Impossible, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::{self, Write as _};

/// `sha256:` and lowercase hex over the canonical JSON of `value`.
pub(crate) fn digest_of(value: &impl Serialize) -> String {
    let mut w = Writer {
        buf: Vec::with_capacity(4096),
        hash: Some(Sha256::new()),
        scratch: String::new(),
    };
    value
        .serialize(&mut w)
        .expect("the IR views serialize only supported shapes");
    let mut hash = w.hash.take().expect("hashing");
    hash.update(&w.buf);
    crate::ir::hex_digest(hash.finalize().as_slice())
}

/// The canonical bytes themselves (what [`digest_of`] hashes).
#[cfg(test)]
pub(crate) fn to_bytes(value: &impl Serialize) -> Result<Vec<u8>, Unsupported> {
    let mut w = Writer {
        buf: Vec::new(),
        hash: None,
        scratch: String::new(),
    };
    value.serialize(&mut w)?;
    Ok(w.buf)
}

/// Output is handed to the hasher in blocks of about this size.
const BLOCK: usize = 32 * 1024;

struct Writer {
    buf: Vec<u8>,
    /// `None` when collecting the bytes (tests).
    hash: Option<Sha256>,
    /// Reused for `collect_str`.
    scratch: String,
}

impl Writer {
    /// Called between values: hands a full block to the hasher.
    fn maybe_flush(&mut self) {
        if self.buf.len() >= BLOCK {
            if let Some(h) = &mut self.hash {
                h.update(&self.buf);
                self.buf.clear();
            }
        }
    }

    /// A JSON string, escaped as serde_json escapes: `"`, `\`, and bytes
    /// below 0x20 (short forms for \b \t \n \f \r, else `\u00xx`).
    fn string(&mut self, s: &str) {
        self.buf.reserve(s.len() + 2);
        self.buf.push(b'"');
        if needs_escape(s.as_bytes()) {
            self.escaped(s.as_bytes());
        } else {
            self.buf.extend_from_slice(s.as_bytes());
        }
        self.buf.push(b'"');
    }

    /// A struct field's key and its colon. Field names are identifiers
    /// (the views rename none), so there is nothing to escape.
    fn key(&mut self, key: &'static str) {
        debug_assert!(!needs_escape(key.as_bytes()));
        self.buf.reserve(key.len() + 3);
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    #[cold]
    fn escaped(&mut self, bytes: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let short = match b {
                b'"' => b'"',
                b'\\' => b'\\',
                0x08 => b'b',
                0x09 => b't',
                0x0a => b'n',
                0x0c => b'f',
                0x0d => b'r',
                0..=0x1f => b'u',
                _ => continue,
            };
            self.buf.extend_from_slice(&bytes[start..i]);
            self.buf.push(b'\\');
            self.buf.push(short);
            if short == b'u' {
                self.buf.extend_from_slice(&[
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]);
            }
            start = i + 1;
        }
        self.buf.extend_from_slice(&bytes[start..]);
    }

    fn unsigned(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&digits[i..]);
    }

    fn signed(&mut self, v: i64) {
        if v < 0 {
            self.buf.push(b'-');
        }
        self.unsigned(v.unsigned_abs());
    }
}

/// Whether `s` has a byte JSON escapes: `"`, `\` or one below 0x20
/// (eight bytes at a time: most strings have none).
fn needs_escape(s: &[u8]) -> bool {
    use crate::words::{any_word, has_byte, has_byte_below};
    any_word(
        s,
        |x| has_byte_below(x, 0x20) | has_byte(x, b'"') | has_byte(x, b'\\'),
        |b| b < 0x20 || b == b'"' || b == b'\\',
    )
}

/// A shape the canonical form does not use (floats, tuple and struct
/// variants, non-string map keys).
#[derive(Debug)]
pub(crate) struct Unsupported(String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unsupported(msg.to_string())
    }
}

fn unsupported<T>(what: &str) -> Result<T, Unsupported> {
    Err(Unsupported(format!(
        "{what} is not part of the canonical form"
    )))
}

/// `Serializer` methods that write an integer through `Writer::$via`.
macro_rules! integers {
    ($($method:ident($t:ty) => $via:ident,)*) => {$(
        fn $method(self, v: $t) -> Result<(), Unsupported> {
            self.$via(v.into());
            Ok(())
        }
    )*};
}

/// `Serializer` methods of `KeyWriter` that refuse their value.
macro_rules! not_keys {
    ($($method:ident($t:ty),)*) => {$(
        fn $method(self, _: $t) -> Result<(), Unsupported> {
            unsupported("a non-string map key")
        }
    )*};
}

/// An open array or object; `first` until the first element is written.
struct Compound<'a> {
    w: &'a mut Writer,
    first: bool,
}

impl Compound<'_> {
    fn separator(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.w.buf.push(b',');
        }
        self.w.maybe_flush();
    }
}

impl<'a> ser::Serializer for &'a mut Writer {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    integers! {
        serialize_i8(i8) => signed,
        serialize_i16(i16) => signed,
        serialize_i32(i32) => signed,
        serialize_i64(i64) => signed,
        serialize_u8(u8) => unsigned,
        serialize_u16(u16) => unsigned,
        serialize_u32(u32) => unsigned,
        serialize_u64(u64) => unsigned,
    }
    fn serialize_f32(self, _: f32) -> Result<(), Unsupported> {
        unsupported("a float")
    }
    fn serialize_f64(self, _: f64) -> Result<(), Unsupported> {
        unsupported("a float")
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.string(v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unsupported> {
        unsupported("a byte string")
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.buf.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.string(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        unsupported("a newtype variant")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Unsupported> {
        self.buf.push(b'[');
        Ok(Compound {
            w: self,
            first: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        unsupported("a tuple variant")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Unsupported> {
        self.buf.push(b'{');
        Ok(Compound {
            w: self,
            first: true,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Compound<'a>, Unsupported> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        unsupported("a struct variant")
    }
    fn collect_str<T: ?Sized + fmt::Display>(self, v: &T) -> Result<(), Unsupported> {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        write!(s, "{v}").map_err(|_| Unsupported("a Display that fails".into()))?;
        self.string(&s);
        self.scratch = s;
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Unsupported> {
        self.separator();
        v.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.w.buf.push(b']');
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Unsupported> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), Unsupported> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Unsupported> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), Unsupported> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.separator();
        key.serialize(KeyWriter(&mut *self.w))?;
        self.w.buf.push(b':');
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Unsupported> {
        v.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.w.buf.push(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        self.separator();
        self.w.key(key);
        v.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Unsupported> {
        ser::SerializeMap::end(self)
    }
}

/// Map keys: strings only (serde_json also quotes integer keys; the
/// canonical form has none).
struct KeyWriter<'a>(&'a mut Writer);

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.0.string(v);
        Ok(())
    }
    fn collect_str<T: ?Sized + fmt::Display>(self, v: &T) -> Result<(), Unsupported> {
        ser::Serializer::collect_str(self.0, v)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.0.string(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    not_keys! {
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.0.string(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        unsupported("a non-string map key")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        unsupported("a non-string map key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        OneWord,
        #[serde(rename = "*")]
        Star,
    }

    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Either {
        Number(u16),
        Kind(Kind),
    }

    #[derive(serde::Serialize)]
    struct Every<'a> {
        b: bool,
        n: u32,
        neg: i64,
        big: u64,
        port: Either,
        any: Either,
        kind: Kind,
        none: Option<&'a str>,
        some: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<&'a str>,
        list: Vec<&'a str>,
        empty: Vec<u8>,
        set: BTreeSet<String>,
        map: BTreeMap<String, String>,
        empty_map: BTreeMap<String, String>,
        nested: Vec<Vec<Option<bool>>>,
        c: char,
        unit: (),
    }

    /// Every shape the views use gives serde_json's bytes.
    #[test]
    fn every_shape_matches_serde_json() {
        let v = Every {
            b: true,
            n: 4_294_967_295,
            neg: i64::MIN,
            big: u64::MAX,
            port: Either::Number(8443),
            any: Either::Kind(Kind::Star),
            kind: Kind::OneWord,
            none: None,
            some: Some("x\"y"),
            skipped: None,
            list: vec!["a", "", "é\u{1}"],
            empty: vec![],
            set: ["z", "a\\b"].into_iter().map(String::from).collect(),
            map: [("k\n", "v\t"), ("a", "")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            empty_map: BTreeMap::new(),
            nested: vec![vec![Some(false), None], vec![]],
            c: '"',
            unit: (),
        };
        let ours = to_bytes(&v).unwrap();
        let theirs = serde_json::to_vec(&v).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
        for n in [0u64, 9, 10, 99, 100, 65_535, 1 << 40] {
            assert_eq!(to_bytes(&n).unwrap(), serde_json::to_vec(&n).unwrap());
        }
    }

    #[derive(serde::Serialize)]
    struct Skips {
        #[serde(skip_serializing_if = "Option::is_none")]
        first: Option<u8>,
        middle: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        last: Option<u8>,
    }

    #[derive(serde::Serialize)]
    struct AllSkipped {
        #[serde(skip_serializing_if = "Option::is_none")]
        only: Option<u8>,
    }

    /// Skipped fields leave no stray comma, first, last or all of them.
    #[test]
    fn skipped_fields_match_serde_json() {
        for (first, last) in [
            (None, None),
            (Some(1), None),
            (None, Some(3)),
            (Some(1), Some(3)),
        ] {
            let v = Skips {
                first,
                middle: 2,
                last,
            };
            assert_eq!(to_bytes(&v).unwrap(), serde_json::to_vec(&v).unwrap());
        }
        let v = AllSkipped { only: None };
        assert_eq!(to_bytes(&v).unwrap(), b"{}");
        assert_eq!(to_bytes(&v).unwrap(), serde_json::to_vec(&v).unwrap());
    }

    /// Every string byte (alone, between plain text of every length up to
    /// two words and around 32 bytes, and as the last byte) is escaped as serde_json
    /// escapes it.
    #[test]
    fn every_string_byte_matches_serde_json() {
        for b in 0..=0x7fu8 {
            for pad in (0..=17).chain([31, 32, 33]) {
                // In the middle, and last (where only the overlapping
                // read of the final eight bytes sees it).
                for s in [
                    format!("{}{}{}", "a".repeat(pad), b as char, "b".repeat(pad)),
                    format!("{}{}", "a".repeat(pad), b as char),
                ] {
                    assert_eq!(
                        to_bytes(&s).unwrap(),
                        serde_json::to_vec(&s).unwrap(),
                        "byte {b:#04x}, pad {pad}"
                    );
                }
            }
        }
        let s = "ü€😀\u{7f}\u{80}\u{2028}";
        assert_eq!(to_bytes(&s).unwrap(), serde_json::to_vec(&s).unwrap());
    }

    /// Any strings, as list items, map keys and values, give serde_json's
    /// bytes; the generator mixes plain text, escapes and non-ASCII, and
    /// the escaping path is counted so the property is not vacuous.
    #[test]
    fn arbitrary_strings_match_serde_json() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let text = prop_oneof![
            3 => "[a-z0-9./:*-]{0,40}",
            2 => "[a-z\"\\\\\u{0}-\u{1f}\u{7f}é€😀]{0,40}",
            1 => any::<String>(),
        ];
        let strategy = (
            proptest::collection::vec(text.clone(), 0..8),
            proptest::collection::btree_map(text.clone(), text, 0..4),
        );
        let cases = 512;
        let escaped = AtomicUsize::new(0);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |(list, map)| {
            let all = list.iter().chain(map.keys()).chain(map.values());
            if all.clone().any(|s| needs_escape(s.as_bytes())) {
                escaped.fetch_add(1, Ordering::Relaxed);
            }
            let v = (&list, &map);
            prop_assert_eq!(to_bytes(&v).unwrap(), serde_json::to_vec(&v).unwrap());
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let escaped = escaped.into_inner();
        assert!(
            escaped * 4 >= cases as usize,
            "escaping reached in {escaped} of {cases} cases"
        );
    }

    /// Output longer than a block hashes as the same bytes.
    #[test]
    fn long_output_hashes_its_bytes() {
        let v: Vec<String> = (0..20_000).map(|i| format!("entry {i}\n")).collect();
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(bytes.len() > 4 * BLOCK);
        assert_eq!(digest_of(&v), crate::ir::sha256(&bytes));
    }

    /// Shapes outside the canonical form are refused, not approximated.
    #[test]
    fn other_shapes_are_refused() {
        assert!(to_bytes(&1.5f64).is_err());
        let mut m = BTreeMap::new();
        m.insert(1u8, "x");
        assert!(to_bytes(&m).is_err());
    }
}
