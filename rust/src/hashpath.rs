//! The canonical encoding (writer and reader), blake3 IDs and hash paths
//! (`hashpath-alg` `blake3-chain`). Twin of `python/hbeam/_pure/hashpath.py`; both must
//! produce identical bytes:
//!
//! ```text
//! None  'n'            bool 't' | 'f'
//! int   'i' u32be(len) ascii-decimal      ("-12", "0"; canonical)
//! float 'd' f64be      (-0.0 written as 0.0; every NaN as 0x7ff8000000000000)
//! str   's' u32be(len) utf8               bytes 'b' u32be(len) raw
//! list  'l' u32be(count) value*
//! map   'm' u32be(count) (u32be(keylen) key-utf8 value)*   keys ascending by UTF-8 bytes
//! ```
//!
//! The walk over values belongs to the caller (`message.rs`); this module writes and reads
//! the fields, so it needs no Python.

use crate::errors::{CoreError, CoreResult};
use crate::key::{is_private, MAX_DEPTH, MAX_KEY_BYTES};

/// The hash path algorithm this core implements.
pub const HASHPATH_ALG: &str = "blake3-chain";

const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;
pub(crate) const ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn len32(n: usize) -> CoreResult<[u8; 4]> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| CoreError::TooLong(n))
}

/// Appends canonical fields to a buffer.
#[derive(Default)]
pub struct Encoder {
    /// The bytes written so far.
    pub out: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// `n`
    pub fn null(&mut self) {
        self.out.push(b'n');
    }

    /// `t` / `f`
    pub fn boolean(&mut self, value: bool) {
        self.out.push(if value { b't' } else { b'f' });
    }

    /// `i` + length + canonical decimal text.
    pub fn int_text(&mut self, text: &str) -> CoreResult<()> {
        self.out.push(b'i');
        self.out.extend_from_slice(&len32(text.len())?);
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    /// `d` + f64 big-endian (`-0.0` as `0.0`, every NaN canonical).
    pub fn float(&mut self, value: f64) {
        self.out.push(b'd');
        let bits = if value.is_nan() {
            CANONICAL_NAN
        } else if value == 0.0 {
            0
        } else {
            value.to_bits()
        };
        self.out.extend_from_slice(&bits.to_be_bytes());
    }

    /// `s` + length + UTF-8.
    pub fn str(&mut self, value: &str) -> CoreResult<()> {
        self.out.push(b's');
        self.out.extend_from_slice(&len32(value.len())?);
        self.out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    /// `b` + length + raw bytes.
    pub fn bytes(&mut self, value: &[u8]) -> CoreResult<()> {
        self.out.push(b'b');
        self.out.extend_from_slice(&len32(value.len())?);
        self.out.extend_from_slice(value);
        Ok(())
    }

    /// `l` + count; the items follow.
    pub fn list(&mut self, count: usize) -> CoreResult<()> {
        self.out.push(b'l');
        self.out.extend_from_slice(&len32(count)?);
        Ok(())
    }

    /// `m` + count; `key` + value pairs follow, keys ascending.
    pub fn map(&mut self, count: usize) -> CoreResult<()> {
        self.out.push(b'm');
        self.out.extend_from_slice(&len32(count)?);
        Ok(())
    }

    /// A map key: length + UTF-8 (keys never exceed `MAX_KEY_BYTES`).
    pub fn key(&mut self, key: &str) {
        self.out
            .extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.out.extend_from_slice(key.as_bytes());
    }
}

/// A decoded value, before it becomes Python objects. Containers carry their height
/// (a container of leaves has height 1).
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Null,
    Bool(bool),
    /// Canonical decimal text.
    Int(String),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Decoded>, usize),
    Map(Vec<(String, Decoded)>, usize),
}

impl Decoded {
    /// Nesting height: 0 for leaves.
    pub fn height(&self) -> usize {
        match self {
            Decoded::List(_, h) | Decoded::Map(_, h) => *h,
            _ => 0,
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&self, pos: usize, n: usize) -> CoreResult<&'a [u8]> {
        pos.checked_add(n)
            .and_then(|end| self.data.get(pos..end))
            .ok_or(CoreError::Malformed(pos))
    }

    fn u32(&self, pos: usize) -> CoreResult<usize> {
        let raw = self.take(pos, 4)?;
        let arr: [u8; 4] = raw.try_into().map_err(|_| CoreError::Malformed(pos))?;
        Ok(u32::from_be_bytes(arr) as usize)
    }

    fn text(&self, pos: usize, n: usize) -> CoreResult<&'a str> {
        std::str::from_utf8(self.take(pos, n)?).map_err(|_| CoreError::Malformed(pos))
    }

    fn value(&self, pos: usize, level: usize) -> CoreResult<(Decoded, usize)> {
        let tag = *self.data.get(pos).ok_or(CoreError::Malformed(pos))?;
        let p = pos + 1;
        match tag {
            b'n' => Ok((Decoded::Null, p)),
            b't' => Ok((Decoded::Bool(true), p)),
            b'f' => Ok((Decoded::Bool(false), p)),
            b'i' => {
                let n = self.u32(p)?;
                let text = self.take(p + 4, n)?;
                if !canonical_int(text) {
                    return Err(CoreError::Malformed(p + 4));
                }
                let text = std::str::from_utf8(text).map_err(|_| CoreError::Malformed(p + 4))?;
                Ok((Decoded::Int(text.to_owned()), p + 4 + n))
            }
            b'd' => {
                let raw = self.take(p, 8)?;
                let arr: [u8; 8] = raw.try_into().map_err(|_| CoreError::Malformed(p))?;
                let bits = u64::from_be_bytes(arr);
                let number = f64::from_bits(bits);
                if (number.is_nan() && bits != CANONICAL_NAN) || (number == 0.0 && bits != 0) {
                    return Err(CoreError::Malformed(p));
                }
                Ok((Decoded::Float(number), p + 8))
            }
            b's' => {
                let n = self.u32(p)?;
                Ok((Decoded::Str(self.text(p + 4, n)?.to_owned()), p + 4 + n))
            }
            b'b' => {
                let n = self.u32(p)?;
                Ok((Decoded::Bytes(self.take(p + 4, n)?.to_vec()), p + 4 + n))
            }
            b'l' => {
                if level > MAX_DEPTH {
                    return Err(CoreError::Malformed(pos));
                }
                let count = self.u32(p)?;
                let mut p = p + 4;
                // never trust `count` for the allocation: each item takes a byte at least
                let mut items = Vec::with_capacity(count.min(self.data.len().saturating_sub(p)));
                let mut height = 0;
                for _ in 0..count {
                    let (item, next) = self.value(p, level + 1)?;
                    height = height.max(item.height());
                    items.push(item);
                    p = next;
                }
                Ok((Decoded::List(items, height + 1), p))
            }
            b'm' => {
                if level > MAX_DEPTH {
                    return Err(CoreError::Malformed(pos));
                }
                let count = self.u32(p)?;
                let mut p = p + 4;
                let mut entries: Vec<(String, Decoded)> =
                    Vec::with_capacity(count.min(self.data.len().saturating_sub(p) / 5));
                let mut height = 0;
                for _ in 0..count {
                    let n = self.u32(p)?;
                    let key = self.text(p + 4, n)?;
                    let ascending = entries
                        .last()
                        .is_none_or(|(last, _)| key.as_bytes() > last.as_bytes());
                    if key.is_empty() || n > MAX_KEY_BYTES || is_private(key) || !ascending {
                        return Err(CoreError::Malformed(p + 4));
                    }
                    let (val, next) = self.value(p + 4 + n, level + 1)?;
                    height = height.max(val.height());
                    entries.push((key.to_owned(), val));
                    p = next;
                }
                Ok((Decoded::Map(entries, height + 1), p))
            }
            _ => Err(CoreError::Malformed(pos)),
        }
    }
}

fn canonical_int(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if digits.first() == Some(&b'0') {
        return text == b"0";
    }
    true
}

/// The value `data` encodes; malformed or trailing bytes →
/// `malformed encoding at byte N`.
pub fn decode(data: &[u8]) -> CoreResult<Decoded> {
    let reader = Reader { data };
    let (value, end) = reader.value(0, 1)?;
    if end != data.len() {
        return Err(CoreError::Malformed(end));
    }
    Ok(value)
}

/// base64url without padding.
pub fn b64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    b64_into(data, &mut out);
    out
}

/// base64url without padding, appended to `out`.
pub fn b64_into(data: &[u8], out: &mut String) {
    let sym = |i: u32| char::from(ALPHABET.get((i & 63) as usize).copied().unwrap_or(b'A'));
    for chunk in data.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        if chunk.len() > 1 {
            out.push(sym(n >> 6));
        }
        if chunk.len() > 2 {
            out.push(sym(n));
        }
    }
}

fn sextet(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|i| i as u32)
}

/// Whether `text` is a 43-character base64url ID.
pub fn is_b64_id(text: &str) -> bool {
    text.len() == 43 && text.bytes().all(|c| sextet(c).is_some())
}

/// The bytes of base64url `text` (no padding; unused low bits of the last symbol ignored).
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        acc = (acc << 6) | sextet(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// 43-character base64url of the blake3 digest of `data`.
pub fn blake3_b64(data: &[u8]) -> String {
    b64(blake3::hash(data).as_bytes())
}

/// The next hash path: `prev + "/" + component` when `prev` is a bare ID, else the
/// blake3 chain of its two parts, then `/component`.
pub fn chain(prev: &str, component: &str) -> CoreResult<String> {
    let Some((p1, p2)) = prev.split_once('/') else {
        return Ok(format!("{prev}/{component}"));
    };
    let left = if is_b64_id(p1) { unb64(p1) } else { None };
    let Some(mut joined) = left else {
        let shown: String = p1.chars().take(100).collect();
        return Err(CoreError::BadHashpath(shown));
    };
    match unb64(p2).filter(|_| is_b64_id(p2)) {
        Some(right) => joined.extend(right),
        None => joined.extend_from_slice(p2.as_bytes()),
    }
    Ok(format!("{}/{}", blake3_b64(&joined), component))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let mut e = Encoder::new();
        e.null();
        e.boolean(true);
        e.int_text("-12").unwrap();
        e.float(-0.0);
        e.float(f64::NAN);
        e.str("é").unwrap();
        e.bytes(b"\x00").unwrap();
        assert_eq!(
            e.out,
            b"nti\x00\x00\x00\x03-12d\x00\x00\x00\x00\x00\x00\x00\x00d\x7f\xf8\x00\x00\x00\x00\x00\x00s\x00\x00\x00\x02\xc3\xa9b\x00\x00\x00\x01\x00"
        );
    }

    #[test]
    fn decode_round_trip_and_errors() {
        let mut e = Encoder::new();
        e.map(2).unwrap();
        e.key("a");
        e.list(2).unwrap();
        e.int_text("1").unwrap();
        e.float(2.5);
        e.key("b");
        e.str("x").unwrap();
        let value = decode(&e.out).unwrap();
        assert_eq!(
            value,
            Decoded::Map(
                vec![
                    (
                        "a".into(),
                        Decoded::List(vec![Decoded::Int("1".into()), Decoded::Float(2.5)], 1)
                    ),
                    ("b".into(), Decoded::Str("x".into())),
                ],
                2
            )
        );
        let mut trailing = e.out.clone();
        trailing.push(b'n');
        assert_eq!(decode(&trailing), Err(CoreError::Malformed(e.out.len())));
        assert_eq!(decode(b""), Err(CoreError::Malformed(0)));
        assert_eq!(decode(b"x"), Err(CoreError::Malformed(0)));
        assert_eq!(decode(b"i\x00\x00\x00\x02-0"), Err(CoreError::Malformed(5)));
        assert_eq!(decode(b"i\x00\x00\x00\x0201"), Err(CoreError::Malformed(5)));
        assert_eq!(decode(b"i\x00\x00\x00\x01"), Err(CoreError::Malformed(5)));
        assert_eq!(decode(b"s\x00\x00"), Err(CoreError::Malformed(1)));
        assert_eq!(
            decode(b"d\x80\x00\x00\x00\x00\x00\x00\x00"),
            Err(CoreError::Malformed(1))
        );
        assert_eq!(
            decode(b"s\x00\x00\x00\x01\xff"),
            Err(CoreError::Malformed(5))
        );
        // keys must ascend, be public and non-empty
        assert_eq!(
            decode(b"m\x00\x00\x00\x01\x00\x00\x00\x00n"),
            Err(CoreError::Malformed(9))
        );
        assert_eq!(
            decode(b"m\x00\x00\x00\x01\x00\x00\x00\x04privn"),
            Err(CoreError::Malformed(9))
        );
        assert_eq!(
            decode(b"m\x00\x00\x00\x02\x00\x00\x00\x01bn\x00\x00\x00\x01an"),
            Err(CoreError::Malformed(15))
        );
        // a huge count with no items fails on the first missing item, without allocating it
        assert_eq!(decode(b"l\xff\xff\xff\xff"), Err(CoreError::Malformed(5)));
    }

    #[test]
    fn depth_limit() {
        let mut data = vec![];
        for _ in 0..MAX_DEPTH {
            data.extend_from_slice(b"l\x00\x00\x00\x01");
        }
        data.push(b'n');
        assert!(decode(&data).is_ok());
        let mut deeper = b"l\x00\x00\x00\x01".to_vec();
        deeper.extend_from_slice(&data);
        assert_eq!(decode(&deeper), Err(CoreError::Malformed(5 * MAX_DEPTH)));
    }

    #[test]
    fn base64url() {
        let digest = [0xfbu8; 32];
        let text = b64(&digest);
        assert_eq!(text.len(), 43);
        assert!(is_b64_id(&text));
        assert_eq!(unb64(&text).unwrap(), digest);
        assert_eq!(b64(b"\xff\xfe"), "__4");
        assert!(!is_b64_id("abc"));
        assert!(!is_b64_id(&"+".repeat(43)));
    }

    #[test]
    fn chaining() {
        let id = blake3_b64(b"x");
        assert_eq!(chain(&id, "a").unwrap(), format!("{id}/a"));
        let first = chain(&id, "a").unwrap();
        let second = chain(&first, "b").unwrap();
        let mut joined = unb64(&id).unwrap();
        joined.extend_from_slice(b"a");
        assert_eq!(second, format!("{}/b", blake3_b64(&joined)));
        let err = chain("nope/x", "b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "hash path 'nope' does not start with a 43-character ID"
        );
    }
}
