//! Paths: splitting text into parts (HyperBEAM's `hb_path:term_to_path_parts`) and list
//! indices. Twin of `python/hbeam/_pure/path.py` (the type dispatch of `parts` on Python
//! objects lives in `py.rs`).

use crate::errors::{CoreError, CoreResult};
use crate::key::MAX_KEY_BYTES;
use crate::pmap::Key;

/// Append the non-empty `/`-separated segments of `text` to `out`.
///
/// A segment over `MAX_KEY_BYTES` is refused with its 1-based position in `out`.
pub fn split_into<S: for<'a> From<&'a str>>(text: &str, out: &mut Vec<S>) -> CoreResult<()> {
    for segment in text.split('/') {
        if segment.is_empty() {
            continue;
        }
        if segment.len() > MAX_KEY_BYTES {
            return Err(CoreError::SegmentTooLong {
                index: out.len() + 1,
                len: segment.len(),
                limit: MAX_KEY_BYTES,
            });
        }
        out.push(S::from(segment));
    }
    Ok(())
}

/// The parts of a text path: `"/a//b/"` → `["a", "b"]`, `"/"` → `[]`.
pub fn parts_of(text: &str) -> CoreResult<Vec<String>> {
    let mut out = Vec::new();
    split_into(text, &mut out)?;
    Ok(out)
}

/// [`parts_of`] as map keys.
pub fn parts_of_keys(text: &str) -> CoreResult<Vec<Key>> {
    let mut out = Vec::new();
    split_into(text, &mut out)?;
    Ok(out)
}

/// The 0-based index a list part names (`"1"` … `"N"`, no sign, no leading zero).
pub fn list_index(part: &str, size: usize) -> Option<usize> {
    let bytes = part.as_bytes();
    if bytes.is_empty()
        || bytes.len() > 18
        || bytes.first() == Some(&b'0')
        || !bytes.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let i: usize = part.parse().ok()?;
    if i <= size {
        i.checked_sub(1)
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        assert_eq!(parts_of("/a//b/").unwrap(), ["a", "b"]);
        assert!(parts_of("/").unwrap().is_empty());
        assert!(parts_of("").unwrap().is_empty());
        assert_eq!(parts_of("../.").unwrap(), ["..", "."]);
        assert_eq!(parts_of("A/B").unwrap(), ["A", "B"]);
    }

    #[test]
    fn segment_limit() {
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        let err = parts_of(&format!("a/b/{long}")).unwrap_err();
        assert_eq!(err.to_string(), "segment 3 is 65537 bytes (limit 65536)");
        assert!(parts_of(&"x".repeat(MAX_KEY_BYTES)).is_ok());
    }

    #[test]
    fn list_indices() {
        assert_eq!(list_index("1", 3), Some(0));
        assert_eq!(list_index("3", 3), Some(2));
        assert_eq!(list_index("4", 3), None);
        assert_eq!(list_index("0", 3), None);
        assert_eq!(list_index("01", 3), None);
        assert_eq!(list_index("-1", 3), None);
        assert_eq!(list_index("", 3), None);
        assert_eq!(list_index("1234567890123456789", usize::MAX), None);
    }
}
