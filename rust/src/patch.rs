//! `apply_patches`: patch@1.0's move of patch messages (`Send({device='patch@1.0', …})`
//! outbox entries into the process state) in one core call, on the persistent maps.
//! Twin of `python/hbeam/_pure/patch.py`; the contract is `docs/core-contract.md`.
//!
//! The result equals what `hbeam.devices.patch._move("patches", …)` returns for the same
//! state (destination `/`), or is `None` whenever the case is not a plain one: the caller
//! then takes the generic path. It never raises.

use std::cmp::Ordering;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::errors::CoreError;
use crate::key::{is_private, MAX_DEPTH};
use crate::message::{self, convert, empty, kind, new_msg, Kind, Message, Val};
use crate::pmap::{Key, PMap};

/// message@1.0's function keys: reading one of them is not a plain read.
const FUNCTION_KEYS: [&str; 11] = [
    "get",
    "set",
    "set-path",
    "set_path",
    "remove",
    "keys",
    "id",
    "commit",
    "verify",
    "committers",
    "committed",
];
/// Keys message@1.0's `set` never writes.
const RESERVED: [&str; 9] = [
    "id",
    "commitments",
    "committers",
    "keys",
    "path",
    "set",
    "remove",
    "verify",
    "set-mode",
];
/// Keys (any ASCII case) a patch loses before it is written.
const STRIPPED: [&str; 3] = ["method", "commitments", "tags"];
/// Deepest nesting the device check walks before it gives up (not plain).
const NESTED_LIMIT: usize = 64;

/// The case is not a plain one (or the core refused it): the generic path decides.
struct NotPlain;

impl From<PyErr> for NotPlain {
    fn from(_: PyErr) -> Self {
        NotPlain
    }
}

type Plain<T> = Result<T, NotPlain>;

fn is_digits(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit())
}

/// The order patches are applied in: numeric keys by value (`"2"` before `"10"`, ties by
/// the key), then the others in key order.
fn patch_order(a: &str, b: &str) -> Ordering {
    match (is_digits(a), is_digits(b)) {
        (true, true) => {
            let (sa, sb) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
            sa.len()
                .cmp(&sb.len())
                .then_with(|| sa.cmp(sb))
                .then_with(|| a.cmp(b))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

fn str_is(py: Python<'_>, value: &Val, words: &[&str]) -> bool {
    match value.0.bind(py).cast_exact::<PyString>() {
        Ok(s) => s
            .to_str()
            .is_ok_and(|t| words.iter().any(|w| t.eq_ignore_ascii_case(w))),
        Err(_) => false,
    }
}

fn is_none(py: Python<'_>, value: &Val) -> bool {
    value.0.bind(py).is_none()
}

/// `map[word]` when present and not None, else the first non-None value (key order) of a
/// key equal to `word` under ASCII case folding, as `_is_patch`'s scan finds it.
fn first_ci<'a>(py: Python<'_>, map: &'a PMap<Val>, word: &str) -> Option<&'a Val> {
    if let Some(v) = map.get(word) {
        if !is_none(py, v) {
            return Some(v);
        }
    }
    match map.get_ascii_ci(word) {
        None => None,
        Some((_, v)) if !is_none(py, v) => Some(v),
        Some(_) => map
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(word) && !is_none(py, v))
            .map(|(_, v)| v),
    }
}

/// The map of an entry that is a patch (method `PATCH` or device `patch@1.0`).
fn patch_map<'a>(py: Python<'_>, entry: &'a Bound<'_, PyAny>) -> Option<&'a PMap<Val>> {
    let Kind::Msg(m) = kind(entry) else {
        return None;
    };
    let map = &m.get().map;
    let method = first_ci(py, map, "method");
    if method.is_some_and(|v| str_is(py, v, &["PATCH"])) {
        return Some(map);
    }
    let dev = first_ci(py, map, "device");
    dev.is_some_and(|v| str_is(py, v, &["patch@1.0"]))
        .then_some(map)
}

/// Whether merging `new` into `old` may meet a level that is not a plain core Message
/// (`devices.patch._nested_devices`): then message@1.0's set decides how.
fn nested_devices(py: Python<'_>, old: &PMap<Val>, new: &PMap<Val>, depth: usize) -> bool {
    if depth > NESTED_LIMIT {
        return true;
    }
    for (k, v) in new.iter() {
        let value = v.0.bind(py);
        let Kind::Msg(vm) = kind(value) else {
            continue;
        };
        let Some(sub) = old.get(k) else { continue };
        let sub = sub.0.bind(py);
        match kind(sub) {
            Kind::None | Kind::Str(_) | Kind::Bytes(_) => {}
            Kind::Msg(sm) => {
                let sm = &sm.get().map;
                if sm.get("device").is_some_and(|d| !is_none(py, d)) {
                    return true;
                }
                if nested_devices(py, sm, &vm.get().map, depth + 1) {
                    return true;
                }
            }
            _ => return true,
        }
    }
    false
}

/// The keys message@1.0's `set` would merge into `old` for `map` (no `/` or `path` keys),
/// `None` when there is nothing to set, or `NotPlain` when that set is not one plain deep
/// merge.
fn set_updates(py: Python<'_>, old: &PMap<Val>, map: &PMap<Val>) -> Plain<Option<PMap<Val>>> {
    let mut req = map.clone();
    req.remove_mut("hashpath");
    req.remove_mut("priv");
    if req.is_empty() {
        return Ok(None);
    }
    if req.contains_key("set-mode") || nested_devices(py, old, &req, 0) {
        return Err(NotPlain);
    }
    let dropped: Vec<Key> = req
        .keys()
        .filter(|k| RESERVED.contains(&k.as_str()) || is_private(k))
        .cloned()
        .collect();
    for k in &dropped {
        req.remove_mut(k);
    }
    Ok(Some(req))
}

/// `Message.merge` of a stored Message's entries into `msg` (at `level`): the same deep
/// merge, without turning the updates into Python pairs (a level holding a `/` key is
/// handed to the generic merge, which reads those as paths).
fn merge_msg<'py>(
    py: Python<'py>,
    msg: &Bound<'py, Message>,
    updates: &Bound<'py, Message>,
    level: usize,
    at: &mut Vec<Key>,
) -> PyResult<Bound<'py, Message>> {
    let entries = &updates.get().map;
    if entries.keys().any(|k| k.contains('/')) {
        return message::merge(py, msg, updates.as_any(), level, at);
    }
    let m = msg.get();
    let mut draft = m.map.clone();
    let mut changed = false;
    let mut height = m.height();
    for (k, v) in entries.iter() {
        let value = v.0.bind(py);
        at.push(k.clone());
        let result = match kind(value) {
            Kind::Msg(sub) => {
                if level + 1 > MAX_DEPTH {
                    Err(CoreError::InvalidMessage("nesting too deep".to_owned()).into())
                } else {
                    let base = match draft.get(k).map(|e| e.0.bind(py).cast_exact::<Message>()) {
                        Some(Ok(b)) => Ok(b.clone()),
                        _ => empty(py),
                    };
                    base.and_then(|b| merge_msg(py, &b, sub, level + 1, at))
                        .map(|merged| {
                            let h = merged.get().height();
                            (merged.into_any(), h)
                        })
                }
            }
            _ => convert(py, value, level + 1, at),
        };
        at.pop();
        let (stored, h) = result?;
        match draft.insert_mut(k.clone(), Val(stored.clone().unbind())) {
            Some(old) if old.0.is(&stored) => {}
            _ => changed = true,
        }
        height = height.max(h + 1);
    }
    if !changed {
        return Ok(msg.clone());
    }
    new_msg(py, draft, height)
}

/// `merge_msg(empty, msg, level)` without the copy, when that merge would only copy `msg`:
/// no key at any depth holds a `/` (a merge reads one as a path) and its nesting fits
/// below [`MAX_DEPTH`] from `level` (so no level refuses it). Otherwise the merge itself.
fn merged_into_empty<'py>(
    py: Python<'py>,
    msg: Bound<'py, Message>,
    level: usize,
    at: &mut Vec<Key>,
) -> PyResult<Bound<'py, Message>> {
    let m = msg.get();
    if level + m.height() <= MAX_DEPTH && no_path_keys(py, &m.map) {
        return Ok(msg);
    }
    merge_msg(py, &empty(py)?, &msg, level, at)
}

/// Whether no key of `map`, nor of a Message nested in it, contains a `/`.
fn no_path_keys(py: Python<'_>, map: &PMap<Val>) -> bool {
    map.iter().all(|(k, v)| {
        !k.contains('/')
            && match kind(v.0.bind(py)) {
                Kind::Msg(m) => no_path_keys(py, &m.get().map),
                _ => true,
            }
    })
}

fn text_parts(list: &Bound<'_, PyList>) -> Plain<Vec<String>> {
    let mut parts = Vec::with_capacity(list.len());
    for item in list.iter() {
        let s = item.cast_exact::<PyString>().map_err(|_| NotPlain)?;
        parts.push(s.to_str()?.to_owned());
    }
    Ok(parts)
}

fn move_patches<'py>(
    py: Python<'py>,
    root: &Bound<'py, Message>,
    source: &[String],
) -> Plain<Bound<'py, Message>> {
    // 1. the source, read with exact keys through plain levels
    if root.get().map.contains_key("commitments") {
        return Err(NotPlain);
    }
    let joined = source.join("/");
    if ["path", "hashpath", "priv"].contains(&joined.as_str()) {
        return Err(NotPlain);
    }
    if let [only] = source {
        if RESERVED.contains(&only.as_str()) {
            return Err(NotPlain);
        }
    }
    let mut levels: Vec<Bound<'py, Message>> = Vec::with_capacity(source.len());
    let mut cur: Bound<'py, PyAny> = root.clone().into_any();
    for (i, part) in source.iter().enumerate() {
        if part.is_empty()
            || part.contains('/')
            || is_private(part)
            || FUNCTION_KEYS.contains(&part.as_str())
        {
            return Err(NotPlain);
        }
        let level = cur.cast_exact::<Message>().map_err(|_| NotPlain)?.clone();
        if i > 0 && level.get().map.contains_key("device") {
            return Err(NotPlain);
        }
        let next = level
            .get()
            .map
            .get(part)
            .ok_or(NotPlain)?
            .0
            .bind(py)
            .clone();
        levels.push(level);
        cur = next;
    }
    // 2. the source value
    let src = match kind(&cur) {
        Kind::Tuple(_) => return Err(NotPlain),
        Kind::Msg(m) => m.clone(),
        _ => return Ok(root.clone()),
    };
    let src_map = &src.get().map;

    // 3., 4. and 5. patches in order, cleaned; the other entries kept
    if src_map.keys().any(|k| !k.is_ascii()) {
        return Err(NotPlain);
    }
    let mut order: Vec<(&Key, &Val)> = src_map.iter().collect();
    order.sort_by(|a, b| patch_order(a.0, b.0));
    let mut found: Vec<PMap<Val>> = Vec::new();
    let mut kept = src_map.clone();
    for (k, v) in order {
        if is_private(k) {
            continue;
        }
        let Some(map) = patch_map(py, v.0.bind(py)) else {
            continue;
        };
        kept.remove_mut(k);
        let mut cleaned = map.clone();
        let stripped: Vec<Key> = map
            .keys()
            .filter(|ek| STRIPPED.iter().any(|w| ek.eq_ignore_ascii_case(w)))
            .cloned()
            .collect();
        for ek in &stripped {
            cleaned.remove_mut(ek);
        }
        found.push(cleaned);
    }
    if found.is_empty() {
        return Ok(root.clone());
    }

    // 6. the patches merged, one message@1.0 set each
    let mut at = Vec::new();
    let mut written = empty(py)?;
    for patch in &found {
        if let Some(dev) = written.get().map.get("device") {
            if !str_is(py, dev, &["patch@1.0", "message@1.0"]) {
                return Err(NotPlain);
            }
        }
        if patch.keys().any(|k| k.contains('/') || k == "path") {
            return Err(NotPlain);
        }
        if let Some(updates) = set_updates(py, &written.get().map, patch)? {
            let height = src.get().height();
            let updates = new_msg(py, updates, height)?;
            written = if written.get().map.is_empty() {
                merged_into_empty(py, updates, 1, &mut at)?
            } else {
                merge_msg(py, &written, &updates, 1, &mut at)?
            };
        }
    }

    // 7. the kept entries replace the source, as set over the placeholder: merged into
    // an empty message at their depth
    let kept = new_msg(py, kept, src.get().height())?;
    let mut node = merged_into_empty(py, kept, source.len() + 1, &mut at)?;
    for (level, part) in levels.iter().zip(source).rev() {
        let m = level.get();
        let height = m.height().max(node.get().height() + 1);
        let map = m.map.insert(Key::new(part), Val(node.into_any().unbind()));
        node = new_msg(py, map, height)?;
    }

    // 8. what was written, set on the result
    match set_updates(py, &node.get().map, &written.get().map)? {
        None => Ok(node),
        Some(updates) => {
            let updates = new_msg(py, updates, written.get().height())?;
            Ok(merge_msg(py, &node, &updates, 1, &mut at)?)
        }
    }
}

/// `msg` with the patch messages at path `source` moved to `dest` (patch@1.0's
/// `patches`), or `None` when the case is not a plain one (then use the generic path).
#[pyfunction]
pub fn apply_patches<'py>(
    py: Python<'py>,
    msg: &Bound<'py, PyAny>,
    source: &Bound<'py, PyAny>,
    dest: &Bound<'py, PyAny>,
) -> Option<Bound<'py, Message>> {
    let root = msg.cast_exact::<Message>().ok()?;
    let source = source.cast_exact::<PyList>().ok()?;
    let dest = dest.cast_exact::<PyList>().ok()?;
    if source.is_empty() || !dest.is_empty() {
        return None;
    }
    let parts = text_parts(source).ok()?;
    move_patches(py, root, &parts).ok()
}
