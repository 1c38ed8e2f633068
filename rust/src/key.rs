//! Keys: the limits, `is_private`, the length check of a normalised key, and decimal text
//! of integers of any size. Twin of `python/hbeam/_pure/key.py` (the type dispatch of
//! `normalize_key` on Python objects lives in `py.rs`).

use crate::errors::{CoreError, CoreResult};

/// Deepest nesting of maps/lists in a value (a message is level 1).
pub const MAX_DEPTH: usize = 200;
/// Longest key or path segment, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 65536;
/// Characters of a `repr` or key shown in an error message before `...`.
pub const CLIP_CHARS: usize = 100;

/// Whether `key` is private: it starts with `priv` in any ASCII case.
pub fn is_private(key: &str) -> bool {
    key.as_bytes()
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case(b"priv"))
}

/// `text` when it fits `MAX_KEY_BYTES`, else `key is N bytes (limit 65536)`.
pub fn check_len(text: &str) -> CoreResult<()> {
    if text.len() > MAX_KEY_BYTES {
        return Err(CoreError::KeyTooLong {
            len: text.len(),
            limit: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

/// `text` cut to [`CLIP_CHARS`] characters, then `...` (for error messages).
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(CLIP_CHARS) {
        Some((cut, _)) => format!("{}...", text.get(..cut).unwrap_or(text)),
        None => text.to_owned(),
    }
}

/// Decimal text of the two's-complement big-endian integer `bytes` (any length).
pub fn int_text_from_be(bytes: &[u8]) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    // magnitude as little-endian u32 limbs
    let mut limbs: Vec<u32> = Vec::with_capacity(bytes.len() / 4 + 1);
    let mut acc: u64 = 0;
    let mut bits = 0;
    let mut borrow = negative; // two's complement negation: invert, then add one
    for &byte in bytes.iter().rev() {
        let mut b = if negative { !byte } else { byte };
        if borrow {
            let (sum, carry) = b.overflowing_add(1);
            b = sum;
            borrow = carry;
        }
        acc |= u64::from(b) << bits;
        bits += 8;
        if bits == 32 {
            limbs.push(acc as u32);
            acc = 0;
            bits = 0;
        }
    }
    if bits > 0 {
        limbs.push(acc as u32);
    }
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    if limbs.is_empty() {
        return "0".to_owned();
    }
    // repeated division by 10^9, collecting 9-digit chunks from the low end
    const CHUNK: u64 = 1_000_000_000;
    let mut chunks: Vec<u32> = Vec::new();
    while !limbs.is_empty() {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / CHUNK) as u32;
            rem = cur % CHUNK;
        }
        chunks.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut out = String::with_capacity(chunks.len() * 9 + 1);
    if negative {
        out.push('-');
    }
    let mut iter = chunks.iter().rev();
    if let Some(first) = iter.next() {
        out.push_str(&first.to_string());
    }
    for chunk in iter {
        out.push_str(&format!("{chunk:09}"));
    }
    out
}

/// The magnitude of ASCII decimal `digits` (no sign) as big-endian bytes (empty for 0).
/// `None` when a character is not a digit.
pub fn decimal_to_be(digits: &[u8]) -> Option<Vec<u8>> {
    let mut limbs: Vec<u32> = Vec::new(); // little-endian base 2^32
    for chunk in digits.chunks(9) {
        let mut value: u64 = 0;
        let mut scale: u64 = 1;
        for &d in chunk {
            if !d.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u64::from(d - b'0');
            scale *= 10;
        }
        let mut carry = value;
        for limb in limbs.iter_mut() {
            let cur = u64::from(*limb) * scale + carry;
            *limb = cur as u32;
            carry = cur >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    let mut out: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let zeros = out.iter().take_while(|&&b| b == 0).count();
    out.drain(..zeros);
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn private_keys() {
        assert!(is_private("priv"));
        assert!(is_private("PRIVATE"));
        assert!(is_private("Priv/x"));
        assert!(!is_private("pri"));
        assert!(!is_private("xpriv"));
        assert!(!is_private("prüv"));
    }

    #[test]
    fn key_length() {
        assert!(check_len(&"a".repeat(MAX_KEY_BYTES)).is_ok());
        assert_eq!(
            check_len(&"a".repeat(70000)).unwrap_err().to_string(),
            "key is 70000 bytes (limit 65536)"
        );
    }

    #[test]
    fn clipping() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(150);
        assert_eq!(clip(&long), format!("{}...", "é".repeat(100)));
    }

    fn be(n: i128) -> Vec<u8> {
        n.to_be_bytes().to_vec()
    }

    #[test]
    fn int_text_round_trips() {
        for n in [
            0i128,
            1,
            -1,
            9,
            10,
            -128,
            255,
            256,
            i64::MAX as i128,
            i128::MIN,
            i128::MAX,
            -1_000_000_007,
        ] {
            assert_eq!(int_text_from_be(&be(n)), n.to_string());
            let text = n.unsigned_abs().to_string();
            let mag = decimal_to_be(text.as_bytes()).unwrap();
            let mut padded = vec![0u8; 16 - mag.len()];
            padded.extend(mag);
            assert_eq!(
                u128::from_be_bytes(padded.try_into().unwrap()),
                n.unsigned_abs()
            );
        }
        assert_eq!(int_text_from_be(&[]), "0");
        assert_eq!(int_text_from_be(&[0xff]), "-1");
        assert_eq!(int_text_from_be(&[0x00, 0x80]), "128");
        assert_eq!(decimal_to_be(b"12a"), None);
        // 10^40 + 1 both ways
        let big = format!("1{}1", "0".repeat(39));
        let mag = decimal_to_be(big.as_bytes()).unwrap();
        let mut signed = vec![0u8];
        signed.extend(mag);
        assert_eq!(int_text_from_be(&signed), big);
    }
}
