//! `Message`: the immutable, sorted, structurally shared mapping at the heart of AO-Core,
//! with its deep get/set/merge/remove, typed equality, canonical encoding walk and lazily
//! cached ID. Twin of `python/hbeam/_pure/message.py`.
//!
//! A Message wraps a [`PMap`] of normalised keys (Rust strings, so comparisons never call
//! into Python) to *stored* values kept as the Python objects themselves, validated on
//! entry: exact `str`, `bytes`, `int`, `float`, `bool`, `None`, a `tuple` (a frozen list)
//! or a `Message`. A read hands the stored object back with one reference-count
//! increment instead of building a new Python object (and big ints, long strings and
//! nested Messages are shared, not converted twice). Reads hand lists out as fresh `list`s.
//!
//! Nesting is bounded by `MAX_DEPTH` (a message is level 1). Each Message carries an upper
//! bound of its height; the exact height is recomputed only when the bound would break the
//! limit, so every walk over stored values recurses at most `MAX_DEPTH` frames deep.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
    PyType,
};

use crate::errors::{CoreError, InvalidMessage};
use crate::hashpath::{self, Encoder};
use crate::key::{clip, is_private, MAX_DEPTH, MAX_KEY_BYTES};
use crate::path::list_index;
use crate::pmap::{Key, OwnedIter, PMap};
use crate::py;

const WHERE_PARTS: usize = 8;
const REPR_KEYS: usize = 100;
/// Encodings at least this long are hashed with the interpreter released.
const DETACH_BYTES: usize = 64 * 1024;

/// A stored value. Cloning increments the Python reference count.
///
/// Maps (and so values) are only ever copied inside Message methods, while attached to
/// the interpreter, which is what `Py::clone` (pyo3's `py-clone`) requires; it costs one
/// thread-local check where `Python::attach` + `clone_ref` costs three (measured: 5% of a
/// one-key `set`).
#[derive(Clone)]
pub struct Val(pub Py<PyAny>);

/// The immutable AO-Core message.
#[pyclass(module = "hbeam._native", name = "Message", frozen, mapping)]
pub struct Message {
    pub(crate) map: PMap<Val>,
    height: AtomicUsize,
    id: OnceLock<String>,
}

impl Message {
    fn from_map(map: PMap<Val>, height: usize) -> Self {
        Message {
            map,
            height: AtomicUsize::new(height),
            id: OnceLock::new(),
        }
    }

    /// Upper bound of this message's nesting (1 for a message of leaves).
    pub(crate) fn height(&self) -> usize {
        self.height.load(Ordering::Relaxed)
    }

    fn get_bound<'py>(&self, py: Python<'py>, key: &str) -> Option<Bound<'py, PyAny>> {
        self.map.get(key).map(|v| v.0.bind(py).clone())
    }

    /// The Message `Message(mapping, **kw)` builds (see `new`).
    fn build(
        py: Python<'_>,
        mapping: Option<&Bound<'_, PyAny>>,
        kw: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Message> {
        let kw = kw.filter(|k| !k.is_empty());
        if let (Some(m), None) = (mapping, kw) {
            // the common call: one dict, converted as a nested one would be (at level 1)
            if m.is_exact_instance_of::<PyDict>() {
                let (map, height) = mapping_entries(py, m, 1, &mut Vec::new())?;
                return Ok(Message::from_map(map, height + 1));
            }
        }
        let sized = mapping.and_then(|m| m.cast_exact::<PyDict>().ok());
        let size = sized.map_or(0, |d| d.len()) + kw.map_or(0, |k| k.len());
        let mut entries: Vec<(Key, Val)> = Vec::with_capacity(size);
        let mut height = 0;
        let mut at: Vec<Key> = Vec::new();
        // the exact `str` keys of one dict are all different (see `convert`)
        let mut distinct = match (mapping, kw) {
            (None, _) => true,
            (Some(m), None) => m.is_exact_instance_of::<PyDict>(),
            (Some(_), Some(_)) => false,
        };
        let mut add = |k: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| -> PyResult<()> {
            distinct &= k.is_exact_instance_of::<PyString>();
            let key = map_key(py, k, &[])?;
            if plain_leaf(v) {
                entries.push((key, Val(v.clone().unbind())));
                return Ok(());
            }
            at.clear();
            at.push(key.clone());
            let (stored, h) = convert(py, v, 2, &mut at)?;
            height = height.max(h);
            entries.push((key, Val(stored.unbind())));
            Ok(())
        };
        match mapping {
            None => {}
            Some(m) if kw.is_none() && m.is_exact_instance_of::<Message>() => {
                let other = m.cast_exact::<Message>()?.get();
                let copy = Message::from_map(other.map.clone(), other.height());
                if let Some(id) = other.id.get() {
                    let _ = copy.id.set(id.clone());
                }
                return Ok(copy);
            }
            Some(m) if py::is_mapping(m)? => {
                for pair in py::mapping_items(m)? {
                    let (k, v) = pair?;
                    add(&k, &v)?;
                }
            }
            Some(m) => {
                let pairs = match m.try_iter() {
                    Ok(pairs) => pairs,
                    Err(err) if err.is_instance_of::<PyTypeError>(py) => {
                        return Err(build_error(format!(
                            "cannot build a Message from {}: {}",
                            py::type_name(m),
                            py::describe(m)
                        )));
                    }
                    Err(err) => return Err(err),
                };
                for (i, pair) in pairs.enumerate() {
                    let pair = pair?;
                    let is_seq =
                        pair.is_instance_of::<PyTuple>() || pair.is_instance_of::<PyList>();
                    if !is_seq || pair.len()? != 2 {
                        return Err(build_error(format!(
                            "element {} of the Message argument is not a (key, value) pair",
                            i + 1
                        )));
                    }
                    add(&pair.get_item(0)?, &pair.get_item(1)?)?;
                }
            }
        }
        if let Some(kw) = kw {
            for (k, v) in kw.iter() {
                add(&k, &v)?;
            }
        }
        let map = if distinct {
            PMap::from_distinct(entries)
        } else {
            PMap::from_unsorted(entries)
        };
        Ok(Message::from_map(map, height + 1))
    }
}

// ------------------------------------------------------------------------ errors

/// The key path of an error: the first 8 parts, each cut to 100 characters, then `/…`.
pub(crate) fn where_text(at: &[Key]) -> String {
    let shown: Vec<String> = at.iter().take(WHERE_PARTS).map(|p| clip(p)).collect();
    let mut text = shown.join("/");
    if at.len() > WHERE_PARTS {
        text.push_str("/…");
    }
    text
}

fn at_where(text: String, at: &[Key]) -> CoreError {
    if at.is_empty() {
        CoreError::InvalidMessage(text)
    } else {
        CoreError::At {
            inner: Box::new(CoreError::InvalidMessage(text)),
            at: where_text(at),
        }
    }
}

fn too_deep(at: &[Key]) -> PyErr {
    at_where(format!("nesting deeper than {MAX_DEPTH} levels"), at).into()
}

/// `normalize_key(key)` for a key of the map at `at`; `""` is refused.
fn map_key(py: Python<'_>, key: &Bound<'_, PyAny>, at: &[Key]) -> PyResult<Key> {
    if let Some(key) = plain_key(key) {
        return Ok(key);
    }
    let text = match py::norm_key(key) {
        Ok(text) => text,
        Err(err) if !at.is_empty() && err.is_instance_of::<InvalidMessage>(py) => {
            let inner = err.value(py).str()?.to_cow()?.into_owned();
            return Err(at_where(inner, at).into());
        }
        Err(err) => return Err(err),
    };
    if text.is_empty() {
        return Err(at_where("empty key".to_owned(), at).into());
    }
    Ok(text)
}

/// The key of an exact `str` that `normalize_key` keeps as it is and `map_key` accepts:
/// valid UTF-8, not empty, at most `MAX_KEY_BYTES` bytes; else `None`.
#[inline]
fn plain_key(key: &Bound<'_, PyAny>) -> Option<Key> {
    let text = key.cast_exact::<PyString>().ok()?.to_str().ok()?;
    if text.is_empty() || text.len() > MAX_KEY_BYTES {
        return None;
    }
    Some(Key::new(text))
}

// ------------------------------------------------------------------ value kinds

/// What a stored value is.
pub(crate) enum Kind<'a, 'py> {
    Str(&'a Bound<'py, PyString>),
    Int,
    Msg(&'a Bound<'py, Message>),
    Bytes(&'a Bound<'py, PyBytes>),
    Tuple(&'a Bound<'py, PyTuple>),
    Bool(bool),
    Float(f64),
    None,
}

pub(crate) fn kind<'a, 'py>(value: &'a Bound<'py, PyAny>) -> Kind<'a, 'py> {
    if let Ok(s) = value.cast_exact::<PyString>() {
        Kind::Str(s)
    } else if value.is_exact_instance_of::<PyInt>() {
        Kind::Int
    } else if let Ok(m) = value.cast_exact::<Message>() {
        Kind::Msg(m)
    } else if let Ok(b) = value.cast_exact::<PyBytes>() {
        Kind::Bytes(b)
    } else if let Ok(t) = value.cast_exact::<PyTuple>() {
        Kind::Tuple(t)
    } else if let Ok(b) = value.cast_exact::<PyBool>() {
        Kind::Bool(b.is_true())
    } else if let Ok(f) = value.cast_exact::<PyFloat>() {
        Kind::Float(f.value())
    } else {
        Kind::None
    }
}

/// A stored value as handed to callers: frozen lists become fresh (nested) lists.
pub(crate) fn out<'py>(value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match value.cast_exact::<PyTuple>() {
        Ok(t) => {
            let items: Vec<Bound<'py, PyAny>> = t.iter().map(out).collect::<PyResult<_>>()?;
            Ok(PyList::new(value.py(), items)?.into_any())
        }
        Err(_) => Ok(value),
    }
}

// -------------------------------------------------------------- value conversion

fn is_leaf_exact(value: &Bound<'_, PyAny>) -> bool {
    value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyBool>()
        || value.is_exact_instance_of::<PyFloat>()
        || value.is_exact_instance_of::<PyBytes>()
        || value.is_none()
}

/// Whether `value` is stored as it is, with no conversion and no key path needed: an
/// exact `str` (valid UTF-8), `int`, `bool`, `float`, `bytes` or `None`.
#[inline]
fn plain_leaf(value: &Bound<'_, PyAny>) -> bool {
    match value.cast_exact::<PyString>() {
        Ok(s) => s.to_str().is_ok(),
        Err(_) => is_leaf_exact(value),
    }
}

/// `(stored, height)` of a Python value sitting at nesting `level`; `at` is its key path
/// (pushed and popped while descending). Leaves have height 0.
pub(crate) fn convert<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
    level: usize,
    at: &mut Vec<Key>,
) -> PyResult<(Bound<'py, PyAny>, usize)> {
    if let Ok(s) = value.cast_exact::<PyString>() {
        if s.to_str().is_err() {
            return Err(at_where("value is not valid UTF-8".to_owned(), at).into());
        }
        return Ok((value.clone(), 0));
    }
    if is_leaf_exact(value) {
        return Ok((value.clone(), 0));
    }
    if value.is_exact_instance_of::<PyDict>() {
        if level > MAX_DEPTH {
            return Err(too_deep(at));
        }
        let (map, height) = mapping_entries(py, value, level, at)?;
        return Ok((new_msg(py, map, height + 1)?.into_any(), height + 1));
    }
    if let Ok(m) = value.cast_exact::<Message>() {
        let mut height = m.get().height();
        if level + height > MAX_DEPTH + 1 {
            height = exact_height(m.as_any());
            if level + height > MAX_DEPTH + 1 {
                return Err(too_deep(at));
            }
        }
        return Ok((value.clone(), height));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        if level > MAX_DEPTH {
            return Err(too_deep(at));
        }
        let mut items = Vec::new();
        let mut height = 0;
        let mut push = |item: Bound<'py, PyAny>, i: usize, at: &mut Vec<Key>| -> PyResult<()> {
            at.push(Key::new(i.to_string()));
            let converted = convert(py, &item, level + 1, at);
            at.pop();
            let (stored, h) = converted?;
            height = height.max(h);
            items.push(stored);
            Ok(())
        };
        if let Ok(list) = value.cast_exact::<PyList>() {
            for (i, item) in list.iter().enumerate() {
                push(item, i + 1, at)?;
            }
        } else if let Ok(tuple) = value.cast_exact::<PyTuple>() {
            for (i, item) in tuple.iter().enumerate() {
                push(item, i + 1, at)?;
            }
        } else {
            for (i, item) in value.try_iter()?.enumerate() {
                push(item?, i + 1, at)?;
            }
        }
        return Ok((PyTuple::new(py, items)?.into_any(), height + 1));
    }
    if py::is_mapping(value)? {
        if level > MAX_DEPTH {
            return Err(too_deep(at));
        }
        let (map, height) = mapping_entries(py, value, level, at)?;
        return Ok((new_msg(py, map, height + 1)?.into_any(), height + 1));
    }
    if value.is_instance_of::<PyString>() {
        let text = value.cast::<PyString>()?.to_str();
        return match text {
            Ok(text) => Ok((PyString::new(py, text).into_any(), 0)),
            Err(_) => Err(at_where("value is not valid UTF-8".to_owned(), at).into()),
        };
    }
    if value.is_instance_of::<PyInt>() {
        return Ok((py::exact_int(value)?, 0));
    }
    if value.is_instance_of::<PyFloat>() {
        let f: f64 = value.extract()?;
        return Ok((PyFloat::new(py, f).into_any(), 0));
    }
    if value.is_instance_of::<PyBytes>()
        || value.is_instance_of::<PyByteArray>()
        || value.is_instance_of::<PyMemoryView>()
    {
        if let Ok(b) = py.get_type::<PyBytes>().call1((value,)) {
            return Ok((b, 0));
        }
    }
    Err(at_where(
        format!("unsupported value type {}", py::type_name(value)),
        at,
    )
    .into())
}

/// Convert the entry `k: v` of a mapping at nesting `level` (whose key path is `at`)
/// into `entries`, raising `height` to the value's.
fn add_entry<'py>(
    py: Python<'py>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    level: usize,
    at: &mut Vec<Key>,
    entries: &mut Vec<(Key, Val)>,
    height: &mut usize,
) -> PyResult<()> {
    let key = map_key(py, k, at)?;
    if plain_leaf(v) {
        entries.push((key, Val(v.clone().unbind())));
        return Ok(());
    }
    at.push(key.clone());
    let converted = convert(py, v, level + 1, at);
    at.pop();
    let (stored, h) = converted?;
    *height = (*height).max(h);
    entries.push((key, Val(stored.unbind())));
    Ok(())
}

/// The stored map of a Mapping at nesting `level` (whose key path is `at`) and the
/// height of its tallest value (0 when all are leaves).
fn mapping_entries<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
    level: usize,
    at: &mut Vec<Key>,
) -> PyResult<(PMap<Val>, usize)> {
    if let Ok(d) = value.cast_exact::<PyDict>() {
        return dict_entries(py, d, level, at);
    }
    let mut entries: Vec<(Key, Val)> = Vec::new();
    let mut height = 0;
    for pair in py::mapping_items(value)? {
        let (k, v) = pair?;
        add_entry(py, &k, &v, level, at, &mut entries, &mut height)?;
    }
    Ok((PMap::from_unsorted(entries), height))
}

/// [`mapping_entries`] of an exact `dict`.
///
/// The pairs must be read as a private snapshot (see [`py::dict_pairs`]): converting a
/// value may run Python code that changes the dict. Entries of a plain key and a plain
/// leaf run none, so they are read straight from the dict (no snapshot); at the first
/// other entry the pairs left are taken all at once, which is the snapshot the whole dict
/// would have given, as nothing could change it before.
fn dict_entries<'py>(
    py: Python<'py>,
    d: &Bound<'py, PyDict>,
    level: usize,
    at: &mut Vec<Key>,
) -> PyResult<(PMap<Val>, usize)> {
    let size = d.len();
    let mut entries: Vec<(Key, Val)> = Vec::with_capacity(size);
    let mut height = 0;
    // the exact `str` keys of one dict are all different (others may collide once
    // normalised: `1` and `"1"`)
    let mut distinct = true;
    let mut pos: ffi::Py_ssize_t = 0;
    let mut kp: *mut ffi::PyObject = std::ptr::null_mut();
    let mut vp: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `d` is a live dict (we hold a reference and the interpreter); the pointers
    // it fills are borrowed from it and used only while no Python code can run.
    while unsafe { ffi::PyDict_Next(d.as_ptr(), &mut pos, &mut kp, &mut vp) } != 0 {
        // SAFETY: PyDict_Next returned a pair: two valid, non-null borrowed objects. They
        // are owned at once: the checks below create an exception for a `str` that is not
        // valid UTF-8, which may run the garbage collector (and finalizers) before the
        // pair is used again.
        let (k, v) = unsafe {
            (
                Bound::from_borrowed_ptr(py, kp),
                Bound::from_borrowed_ptr(py, vp),
            )
        };
        if plain_leaf(&v) {
            if let Some(key) = plain_key(&k) {
                entries.push((key, Val(v.unbind())));
                continue;
            }
        }
        // the pairs left, this one first (when a check above failed, this pair fails
        // again first, so what the pairs left are does not matter)
        let mut rest: Vec<py::Pair<'py>> = Vec::with_capacity(size.saturating_sub(entries.len()));
        rest.push((k, v));
        // SAFETY: as above; each pair is owned before anything else runs.
        while unsafe { ffi::PyDict_Next(d.as_ptr(), &mut pos, &mut kp, &mut vp) } != 0 {
            // SAFETY: as above.
            let (k, v) = unsafe { (Borrowed::from_ptr(py, kp), Borrowed::from_ptr(py, vp)) };
            rest.push((k.to_owned(), v.to_owned()));
        }
        for (k, v) in rest {
            distinct &= k.is_exact_instance_of::<PyString>();
            add_entry(py, &k, &v, level, at, &mut entries, &mut height)?;
        }
        break;
    }
    let map = if distinct {
        PMap::from_distinct(entries)
    } else {
        PMap::from_unsorted(entries)
    };
    Ok((map, height))
}

/// `value` converted and validated as a top-level stored value.
pub(crate) fn to_stored<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(convert(py, value, 1, &mut Vec::new())?.0)
}

/// The exact nesting height of a stored value (cached back on Messages).
fn exact_height(value: &Bound<'_, PyAny>) -> usize {
    match kind(value) {
        Kind::Msg(m) => {
            let msg = m.get();
            let py = value.py();
            let inner = msg
                .map
                .iter()
                .map(|(_, v)| exact_height(v.0.bind(py)))
                .max()
                .unwrap_or(0);
            msg.height.store(inner + 1, Ordering::Relaxed);
            inner + 1
        }
        Kind::Tuple(t) => 1 + t.iter().map(|v| exact_height(&v)).max().unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn new_msg<'py>(
    py: Python<'py>,
    map: PMap<Val>,
    height: usize,
) -> PyResult<Bound<'py, Message>> {
    untracked(py, Message::from_map(map, height))
}

/// `msg` as a new Python object that the cycle collector does not track.
///
/// PyO3 makes every class a GC type, but a Message's traverse visits none of its values,
/// so the collector can never break a cycle through one: tracking it only made every
/// collection walk every live Message (a node keeps thousands, its recent states and
/// assignments) and count each survivor towards the next full collection.
pub(crate) fn untracked<'py>(py: Python<'py>, msg: Message) -> PyResult<Bound<'py, Message>> {
    let bound = Bound::new(py, msg)?;
    // SAFETY: `bound` is a live object of a GC type, created above; untracking is allowed
    // at any time, and the dealloc's own untrack is then a no-op.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(bound.as_ptr().cast()) };
    Ok(bound)
}

/// The shared empty Message.
pub(crate) fn empty(py: Python<'_>) -> PyResult<Bound<'_, Message>> {
    static EMPTY: PyOnceLock<Py<Message>> = PyOnceLock::new();
    EMPTY
        .get_or_try_init(py, || new_msg(py, PMap::new(), 1).map(Bound::unbind))
        .map(|m| m.bind(py).clone())
}

/// A stored list as the Message `{"1": …, "2": …}`.
fn numbered<'py>(tuple: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, Message>> {
    let py = tuple.py();
    let entries: Vec<(Key, Val)> = tuple
        .iter()
        .enumerate()
        .map(|(i, v)| (Key::new((i + 1).to_string()), Val(v.unbind())))
        .collect();
    let height = exact_height(tuple.as_any());
    new_msg(py, PMap::from_distinct(entries), height)
}

/// A list/tuple value as the Message `{"1": …}` built from Python values (at level 2).
pub(crate) fn numbered_from_values<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, Message>> {
    let mut entries = Vec::new();
    let mut height = 0;
    for (i, item) in items.try_iter()?.enumerate() {
        let key = Key::new((i + 1).to_string());
        let mut at = vec![key.clone()];
        let (stored, h) = convert(py, &item?, 2, &mut at)?;
        height = height.max(h);
        entries.push((key, Val(stored.unbind())));
    }
    new_msg(py, PMap::from_distinct(entries), height + 1)
}

/// An existing value as a Message level to descend into (lists numbered), or `None`.
fn as_level<'py>(value: Option<Bound<'py, PyAny>>) -> PyResult<Option<Bound<'py, Message>>> {
    let Some(value) = value else { return Ok(None) };
    if let Ok(m) = value.cast_exact::<Message>() {
        return Ok(Some(m.clone()));
    }
    if let Ok(t) = value.cast_exact::<PyTuple>() {
        return Ok(Some(numbered(t)?));
    }
    Ok(None)
}

fn level_or_empty<'py>(
    py: Python<'py>,
    value: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, Message>> {
    match as_level(value)? {
        Some(m) => Ok(m),
        None => empty(py),
    }
}

// ------------------------------------------------------------ set, remove, merge

fn set_in<'py>(
    py: Python<'py>,
    msg: &Bound<'py, Message>,
    ps: &[Key],
    stored: &Bound<'py, PyAny>,
    height: usize,
) -> PyResult<Bound<'py, Message>> {
    let Some((key, rest)) = ps.split_first() else {
        return Ok(msg.clone());
    };
    let m = msg.get();
    if rest.is_empty() {
        let mut map = m.map.clone();
        if let Some(old) = map.insert_mut(key.clone(), Val(stored.clone().unbind())) {
            if old.0.is(stored) {
                return Ok(msg.clone());
            }
        }
        return new_msg(py, map, m.height().max(height + 1));
    }
    let sub = level_or_empty(py, m.get_bound(py, key))?;
    let child = set_in(py, &sub, rest, stored, height)?;
    let child_height = child.get().height();
    let map = m.map.insert(key.clone(), Val(child.into_any().unbind()));
    new_msg(py, map, m.height().max(child_height + 1))
}

/// `msg` without the key at `ps`; `msg` itself when there is none.
fn remove_in<'py>(
    py: Python<'py>,
    msg: &Bound<'py, Message>,
    ps: &[Key],
) -> PyResult<Bound<'py, Message>> {
    let Some((key, rest)) = ps.split_first() else {
        return Ok(msg.clone());
    };
    let m = msg.get();
    if rest.is_empty() {
        if !m.map.contains_key(key) {
            return Ok(msg.clone());
        }
        return new_msg(py, m.map.remove(key), m.height());
    }
    let Some(sub) = as_level(m.get_bound(py, key))? else {
        return Ok(msg.clone());
    };
    let child = remove_in(py, &sub, rest)?;
    if child.is(&sub) {
        return Ok(msg.clone());
    }
    new_msg(
        py,
        m.map.insert(key.clone(), Val(child.into_any().unbind())),
        m.height(),
    )
}

/// `(stored, height)` of `value` merged over `existing` at `level`.
fn merge_value<'py>(
    py: Python<'py>,
    existing: Option<Bound<'py, PyAny>>,
    value: &Bound<'py, PyAny>,
    level: usize,
    at: &mut Vec<Key>,
) -> PyResult<(Bound<'py, PyAny>, usize)> {
    if py::is_mapping(value)? {
        if level > MAX_DEPTH {
            return Err(too_deep(at));
        }
        let base = match existing.as_ref().map(|e| e.cast_exact::<Message>()) {
            Some(Ok(m)) => m.clone(),
            _ => empty(py)?,
        };
        let merged = merge(py, &base, value, level, at)?;
        let height = merged.get().height();
        return Ok((merged.into_any(), height));
    }
    convert(py, value, level, at)
}

/// `msg` (at `level`) with `value` merged at `ps`, creating levels.
fn merge_path<'py>(
    py: Python<'py>,
    msg: &Bound<'py, Message>,
    ps: &[Key],
    value: &Bound<'py, PyAny>,
    level: usize,
    at: &mut Vec<Key>,
) -> PyResult<Bound<'py, Message>> {
    if level > MAX_DEPTH {
        return Err(too_deep(at));
    }
    let Some((key, rest)) = ps.split_first() else {
        return Ok(msg.clone());
    };
    let m = msg.get();
    at.push(key.clone());
    let result = if rest.is_empty() {
        merge_value(py, m.get_bound(py, key), value, level + 1, at)
    } else {
        level_or_empty(py, m.get_bound(py, key)).and_then(|sub| {
            let child = merge_path(py, &sub, rest, value, level + 1, at)?;
            let h = child.get().height();
            Ok((child.into_any(), h))
        })
    };
    at.pop();
    let (stored, height) = result?;
    new_msg(
        py,
        m.map.insert(key.clone(), Val(stored.unbind())),
        m.height().max(height + 1),
    )
}

/// A merge in progress: the draft of the merged level and what is known about it.
struct Merging<'py> {
    py: Python<'py>,
    sentinels: py::Sentinels<'py>,
    /// A private clone of the level's map: each node it shares is copied once, on the
    /// first update that touches it, and then edited in place.
    draft: PMap<Val>,
    changed: bool,
    height: usize,
    level: usize,
}

impl<'py> Merging<'py> {
    fn current(&self, key: &str) -> Option<Bound<'py, PyAny>> {
        self.draft.get(key).map(|e| e.0.bind(self.py).clone())
    }

    /// Store `stored` (of nesting `h`) under `key`.
    fn put(&mut self, key: &Key, stored: Bound<'py, PyAny>, h: usize) {
        let ptr = stored.as_ptr();
        match self.draft.insert_mut(key.clone(), Val(stored.unbind())) {
            Some(old) if old.0.as_ptr() == ptr => {}
            _ => self.changed = true,
        }
        self.height = self.height.max(h + 1);
    }

    /// Merge the update `text: v` (`text` normalised) into the draft.
    fn update(&mut self, text: &Key, v: &Bound<'py, PyAny>, at: &mut Vec<Key>) -> PyResult<()> {
        let py = self.py;
        if self.sentinels.is_undefined(v) {
            return Ok(());
        }
        let many: Vec<Key>;
        let (first, rest): (&Key, &[Key]) = if text.contains('/') {
            many = crate::path::parts_of_keys(text)?;
            match many.split_first() {
                Some(split) => split,
                None => return Err(CoreError::EmptyPath.into()),
            }
        } else {
            (text, &[])
        };
        let unset = self.sentinels.is_unset(v);
        if rest.is_empty() {
            if unset {
                self.changed |= self.draft.remove_mut(first).is_some();
                return Ok(());
            }
            // a leaf replaces whatever is there: no lookup, no key path
            if plain_leaf(v) {
                self.put(first, v.clone(), 0);
                return Ok(());
            }
            at.push(first.clone());
            let r = merge_value(py, self.current(first), v, self.level + 1, at);
            at.pop();
            let (stored, h) = r?;
            self.put(first, stored, h);
        } else if unset {
            let Some(sub) = as_level(self.current(first))? else {
                return Ok(());
            };
            let child = remove_in(py, &sub, rest)?;
            if !child.is(&sub) {
                self.put(first, child.into_any(), 0);
            }
        } else {
            if self.level + 1 > MAX_DEPTH {
                let mut full = at.clone();
                full.push(first.clone());
                return Err(too_deep(&full));
            }
            at.push(first.clone());
            let r = level_or_empty(py, self.current(first))
                .and_then(|sub| merge_path(py, &sub, rest, v, self.level + 1, at));
            at.pop();
            let child = r?;
            let h = child.get().height();
            self.put(first, child.into_any(), h);
        }
        Ok(())
    }
}

/// HyperBEAM's deep merge of `updates` into `msg` (which sits at `level`); `msg` itself
/// when nothing changed.
pub(crate) fn merge<'py>(
    py: Python<'py>,
    msg: &Bound<'py, Message>,
    updates: &Bound<'py, PyAny>,
    level: usize,
    at: &mut Vec<Key>,
) -> PyResult<Bound<'py, Message>> {
    let m = msg.get();
    let mut merging = Merging {
        py,
        sentinels: py::Sentinels::get(py)?,
        draft: m.map.clone(),
        changed: false,
        height: m.height(),
        level,
    };
    if let Ok(other) = updates.cast_exact::<Message>() {
        // keys already normalised and values already stored: read them in place
        for (k, v) in other.get().map.iter() {
            merging.update(k, v.0.bind(py), at)?;
        }
    } else {
        for pair in py::mapping_items(updates)? {
            let (k, v) = pair?;
            let text = map_key(py, &k, at)?;
            merging.update(&text, &v, at)?;
        }
    }
    if !merging.changed {
        return Ok(msg.clone());
    }
    new_msg(py, merging.draft, merging.height)
}

// ------------------------------------------------------------- equality, repr, dicts

fn leaf_eq(mine: &Bound<'_, PyAny>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
    mine.eq(other)
}

/// Typed equality of a stored value with any value, on public content.
fn typed_eq(py: Python<'_>, mine: &Bound<'_, PyAny>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
    match kind(mine) {
        Kind::Msg(m) => {
            if let Ok(o) = other.cast_exact::<Message>() {
                let ours = m.get().map.iter().filter(|(k, _)| !is_private(k));
                let mut theirs = o.get().map.iter().filter(|(k, _)| !is_private(k));
                for (k1, v1) in ours {
                    let Some((k2, v2)) = theirs.next() else {
                        return Ok(false);
                    };
                    if k1 != k2 || !typed_eq(py, v1.0.bind(py), v2.0.bind(py))? {
                        return Ok(false);
                    }
                }
                return Ok(theirs.next().is_none());
            }
            if !py::is_mapping(other)? {
                return Ok(false);
            }
            let theirs = PyDict::new(py);
            for pair in py::mapping_items(other)? {
                let (k, v) = pair?;
                let text = match py::norm_key(&k) {
                    Ok(text) => text,
                    Err(err) if err.is_instance_of::<InvalidMessage>(py) => return Ok(false),
                    Err(err) => return Err(err),
                };
                if !is_private(&text) {
                    theirs.set_item(PyString::new(py, &text), v)?;
                }
            }
            let ours: Vec<_> = m.get().map.iter().filter(|(k, _)| !is_private(k)).collect();
            if ours.len() != theirs.len() {
                return Ok(false);
            }
            for (k, v) in ours {
                let Some(w) = theirs.get_item(k.as_str())? else {
                    return Ok(false);
                };
                if !typed_eq(py, v.0.bind(py), &w)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Kind::Tuple(t) => {
            if !(other.is_instance_of::<PyList>() || other.is_instance_of::<PyTuple>()) {
                return Ok(false);
            }
            if t.len() != other.len()? {
                return Ok(false);
            }
            for (i, a) in t.iter().enumerate() {
                let b = other.get_item(i)?;
                if !typed_eq(py, &a, &b)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Kind::Str(_) => Ok(other.is_instance_of::<PyString>() && leaf_eq(mine, other)?),
        Kind::Bytes(_) => Ok((other.is_instance_of::<PyBytes>()
            || other.is_instance_of::<PyByteArray>()
            || other.is_instance_of::<PyMemoryView>())
            && leaf_eq(mine, other)?),
        Kind::Bool(_) => Ok(other.is_instance_of::<PyBool>() && leaf_eq(mine, other)?),
        Kind::Int => Ok(other.is_instance_of::<PyInt>()
            && !other.is_instance_of::<PyBool>()
            && leaf_eq(mine, other)?),
        Kind::Float(_) => Ok(other.is_instance_of::<PyFloat>() && leaf_eq(mine, other)?),
        Kind::None => Ok(other.is_none()),
    }
}

fn repr_into(py: Python<'_>, value: &Bound<'_, PyAny>, out: &mut String) -> PyResult<()> {
    match kind(value) {
        Kind::Msg(m) => {
            out.push('{');
            for (i, (k, v)) in m.get().map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&PyString::new(py, k).repr()?.to_cow()?);
                out.push_str(": ");
                repr_into(py, v.0.bind(py), out)?;
            }
            out.push('}');
        }
        Kind::Tuple(t) => {
            out.push('[');
            for (i, v) in t.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr_into(py, &v, out)?;
            }
            out.push(']');
        }
        Kind::Int => out.push_str(&py::int_text(value)?),
        _ => out.push_str(&value.repr()?.to_cow()?),
    }
    Ok(())
}

fn plain<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match kind(value) {
        Kind::Msg(m) => {
            let dict = PyDict::new(py);
            for (k, v) in m.get().map.iter() {
                dict.set_item(PyString::new(py, k), plain(py, v.0.bind(py))?)?;
            }
            Ok(dict.into_any())
        }
        Kind::Tuple(t) => {
            let items: Vec<Bound<'py, PyAny>> =
                t.iter().map(|v| plain(py, &v)).collect::<PyResult<_>>()?;
            Ok(PyList::new(py, items)?.into_any())
        }
        _ => Ok(value.clone()),
    }
}

// --------------------------------------------------------------- encoding and IDs

/// Append the canonical encoding of a stored value; `skip` is a top-level key to leave out.
pub(crate) fn encode_stored(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    enc: &mut Encoder,
    skip: Option<&str>,
) -> PyResult<()> {
    match kind(value) {
        Kind::Str(s) => enc.str(s.to_str()?)?,
        Kind::Msg(m) => {
            let keep = |k: &Key| !is_private(k) && Some(k.as_str()) != skip;
            let map = &m.get().map;
            enc.map(map.keys().filter(|k| keep(k)).count())?;
            for (k, v) in map.iter() {
                if keep(k) {
                    enc.key(k);
                    encode_stored(py, v.0.bind(py), enc, None)?;
                }
            }
        }
        Kind::Bytes(b) => enc.bytes(b.as_bytes())?,
        Kind::Bool(b) => enc.boolean(b),
        Kind::Int => enc.int_text(&py::int_text(value)?)?,
        Kind::Float(f) => enc.float(f),
        Kind::Tuple(t) => {
            enc.list(t.len())?;
            for v in t.iter() {
                encode_stored(py, &v, enc, None)?;
            }
        }
        Kind::None => enc.null(),
    }
    Ok(())
}

/// blake3 of `data` as 43 characters.
pub(crate) fn hash_b64(data: &[u8]) -> String {
    hashpath::blake3_b64(data)
}

/// blake3 of an owned buffer as 43 characters, with the interpreter released while a
/// large one is hashed (other threads run Python meanwhile).
pub(crate) fn hash_owned_b64(py: Python<'_>, data: Vec<u8>) -> String {
    if data.len() >= DETACH_BYTES {
        py.detach(move || hashpath::blake3_b64(&data))
    } else {
        hashpath::blake3_b64(&data)
    }
}

/// The (cached) unsigned ID of a Message: its encoding without top-level `commitments`.
pub(crate) fn message_id(py: Python<'_>, msg: &Bound<'_, Message>) -> PyResult<String> {
    let m = msg.get();
    if let Some(id) = m.id.get() {
        return Ok(id.clone());
    }
    let mut enc = Encoder::new();
    encode_stored(py, msg.as_any(), &mut enc, Some("commitments"))?;
    let id = hash_owned_b64(py, enc.out);
    Ok(m.id.get_or_init(|| id).clone())
}

/// A decoded value as Python objects (maps as Messages, lists as tuples).
pub(crate) fn from_decoded<'py>(
    py: Python<'py>,
    value: hashpath::Decoded,
) -> PyResult<Bound<'py, PyAny>> {
    use hashpath::Decoded as D;
    Ok(match value {
        D::Null => py.None().into_bound(py),
        D::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        D::Int(text) => py::int_from_text(py, &text)?,
        D::Float(f) => PyFloat::new(py, f).into_any(),
        D::Str(s) => PyString::new(py, &s).into_any(),
        D::Bytes(b) => PyBytes::new(py, &b).into_any(),
        D::List(items, _) => {
            let items: Vec<Bound<'py, PyAny>> = items
                .into_iter()
                .map(|v| from_decoded(py, v))
                .collect::<PyResult<_>>()?;
            PyTuple::new(py, items)?.into_any()
        }
        D::Map(entries, height) => {
            let mut stored = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                stored.push((Key::from(k), Val(from_decoded(py, v)?.unbind())));
            }
            new_msg(py, PMap::from_sorted(stored), height)?.into_any()
        }
    })
}

// ------------------------------------------------------------------ iteration

#[derive(Clone, Copy)]
enum IterMode {
    Keys,
    Values,
    Items,
}

/// One key, value or item as an iterator yields it.
fn iter_item<'py>(
    py: Python<'py>,
    k: &Key,
    v: &Val,
    mode: IterMode,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match mode {
        IterMode::Keys => PyString::new(py, k).into_any(),
        IterMode::Values => out(v.0.bind(py).clone())?,
        IterMode::Items => {
            let value = out(v.0.bind(py).clone())?;
            (PyString::new(py, k), value).into_pyobject(py)?.into_any()
        }
    })
}

/// Iterator over a Message's keys, values or items (in key order).
#[pyclass(module = "hbeam._native")]
pub struct MessageIter {
    it: OwnedIter<Val>,
    mode: IterMode,
}

#[pymethods]
impl MessageIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some((k, v)) = self.it.next() else {
            return Ok(None);
        };
        iter_item(py, &k, &v, self.mode).map(Some)
    }

    fn __length_hint__(&self) -> usize {
        self.it.size_hint().0
    }
}

/// A new `name` view (a class of [`views`]) of `msg`: `cls(msg)`, made as
/// `MappingView.__init__` makes it, without running that Python function.
fn view<'py>(
    msg: &Bound<'py, Message>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    static OBJECT_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = msg.py();
    let cls = cell.get_or_try_init(py, || views(py)?.getattr(name).map(Bound::unbind))?;
    let new = OBJECT_NEW.get_or_try_init(py, || {
        py.get_type::<pyo3::types::PyAny>()
            .getattr("__new__")
            .map(Bound::unbind)
    })?;
    let obj = new.bind(py).call1((cls.bind(py),))?;
    obj.setattr(pyo3::intern!(py, "_mapping"), msg)?;
    Ok(obj)
}

fn views(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static VIEWS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    VIEWS
        .get_or_try_init(py, || {
            let code = c"
from collections.abc import ItemsView, KeysView, ValuesView

class _Values(ValuesView):
    __slots__ = ()
    def __iter__(self):
        return self._mapping._iter_values()

class _Items(ItemsView):
    __slots__ = ()
    def __iter__(self):
        return self._mapping._iter_items()
";
            PyModule::from_code(py, code, c"hbeam/_native_views.py", c"hbeam._native_views")
                .map(Bound::unbind)
        })
        .map(|m| m.bind(py))
}

// --------------------------------------------------------------------- Message API

/// The key a path names when it is an exact `str` of one segment (no `/`), else `None`.
fn single_key(path: &Bound<'_, PyAny>) -> Option<Key> {
    let text = path.cast_exact::<PyString>().ok()?.to_str().ok()?;
    if text.is_empty() || text.len() > MAX_KEY_BYTES || text.contains('/') {
        return None;
    }
    Some(Key::new(text))
}

/// The value at `parts` below `current`, or `None` (see `Message.get_path`).
fn walk<'a, 'py>(
    py: Python<'py>,
    mut current: Bound<'py, PyAny>,
    parts: impl Iterator<Item = &'a str>,
) -> Option<Bound<'py, PyAny>> {
    for part in parts {
        current = match kind(&current) {
            Kind::Msg(m) => {
                let map = &m.get().map;
                map.get(part)
                    .or_else(|| map.get_ascii_ci(part).map(|(_, v)| v))
                    .map(|v| v.0.bind(py).clone())
            }
            Kind::Tuple(t) => list_index(part, t.len()).and_then(|i| t.get_item(i).ok()),
            _ => None,
        }?;
    }
    Some(current)
}

/// `f(normalize_key(key))`; an exact `str` key is used in place (no copy).
fn with_key<R>(key: &Bound<'_, PyAny>, f: impl FnOnce(&str) -> R) -> PyResult<R> {
    if let Ok(s) = key.cast_exact::<PyString>() {
        if let Ok(text) = s.to_str() {
            // a longer one is refused by `normalize_key`
            if text.len() <= MAX_KEY_BYTES {
                return Ok(f(text));
            }
        }
    }
    Ok(f(&py::norm_key(key)?))
}

fn build_error(what: String) -> PyErr {
    CoreError::InvalidMessage(what).into()
}

#[pymethods]
impl Message {
    #[new]
    #[pyo3(signature = (mapping = None, /, **kw))]
    fn new(
        py: Python<'_>,
        mapping: Option<&Bound<'_, PyAny>>,
        kw: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<Self>> {
        Ok(untracked(py, Self::build(py, mapping, kw)?)?.unbind())
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        with_key(key, |text| match self.get_bound(py, text) {
            Some(v) => out(v),
            None => Err(CoreError::NotFound(format!("key '{}' not found", clip(text))).into()),
        })?
    }

    /// The value of `key` (normalised, exact match), or `default`.
    #[pyo3(signature = (key, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match with_key(key, |text| self.get_bound(py, text))? {
            Some(v) => out(v),
            None => Ok(default.unwrap_or_else(|| py.None().into_bound(py))),
        }
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        with_key(key, |text| self.map.contains_key(text))
    }

    fn __iter__(&self) -> MessageIter {
        MessageIter {
            it: self.map.owned_iter(),
            mode: IterMode::Keys,
        }
    }

    fn __len__(&self) -> usize {
        self.map.len()
    }

    /// The keys in sorted order (a `KeysView`).
    fn keys<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static KEYS_VIEW: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        KEYS_VIEW
            .import(slf.py(), "collections.abc", "KeysView")?
            .call1((slf,))
    }

    /// The values in key order (lists as fresh lists).
    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static VALUES: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        view(slf, &VALUES, "_Values")
    }

    /// `(key, value)` pairs in key order (lists as fresh lists).
    fn items<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static ITEMS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        view(slf, &ITEMS, "_Items")
    }

    fn _iter_values(&self) -> MessageIter {
        MessageIter {
            it: self.map.owned_iter(),
            mode: IterMode::Values,
        }
    }

    fn _iter_items(&self) -> MessageIter {
        MessageIter {
            it: self.map.owned_iter(),
            mode: IterMode::Items,
        }
    }

    fn __richcmp__<'py>(
        slf: &Bound<'py, Self>,
        other: &Bound<'py, PyAny>,
        op: CompareOp,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let not_implemented = || py.NotImplemented().into_bound(py);
        match op {
            CompareOp::Eq | CompareOp::Ne => {
                if !other.is_exact_instance_of::<Message>() && !py::is_mapping(other)? {
                    return Ok(not_implemented());
                }
                let equal = typed_eq(py, slf.as_any(), other)?;
                let result = if matches!(op, CompareOp::Eq) {
                    equal
                } else {
                    !equal
                };
                Ok(PyBool::new(py, result).to_owned().into_any())
            }
            _ => Ok(not_implemented()),
        }
    }

    fn __hash__(slf: &Bound<'_, Self>) -> PyResult<isize> {
        let id = message_id(slf.py(), slf)?;
        PyString::new(slf.py(), &id).hash()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let mut text = String::from("Message({");
        for (i, (k, v)) in slf.get().map.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            if i == REPR_KEYS {
                text.push_str("...");
                break;
            }
            text.push_str(&PyString::new(py, k).repr()?.to_cow()?);
            text.push_str(": ");
            repr_into(py, v.0.bind(py), &mut text)?;
        }
        text.push_str("})");
        Ok(text)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let dict = plain(py, slf.as_any())?;
        let args = PyTuple::new(py, [dict])?;
        PyTuple::new(py, [py.get_type::<Message>().into_any(), args.into_any()])
    }

    /// Plain nested `dict`s (keys sorted) and `list`s, private keys included.
    fn to_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        plain(slf.py(), slf.as_any())
    }

    /// The sorted top-level keys that are not private.
    fn public_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let keys: Vec<Bound<'py, PyString>> = self
            .map
            .keys()
            .filter(|k| !is_private(k))
            .map(|k| PyString::new(py, k))
            .collect();
        PyList::new(py, keys)
    }

    /// The value at `path`, or `default`: each part an exact key, else the first key equal
    /// under ASCII case folding; lists are indexed "1"…"N". `[]`/`"/"` → this message.
    #[pyo3(signature = (path, default = py::Arg::Missing))]
    fn get_path<'py>(
        slf: &Bound<'py, Self>,
        path: &Bound<'py, PyAny>,
        default: py::Arg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let start = slf.clone().into_any();
        // a str path short enough that no segment can break the limit: walk its
        // segments in place, without building the parts list
        let found = match path.cast_exact::<PyString>().map(|s| s.to_str()) {
            Ok(Ok(text)) if text.len() <= MAX_KEY_BYTES => {
                walk(py, start, text.split('/').filter(|p| !p.is_empty()))
            }
            _ => walk(py, start, py::parts_of(path)?.iter().map(Key::as_str)),
        };
        match (found, default) {
            (Some(v), _) => out(v),
            (None, py::Arg::Given(d)) => Ok(d.into_bound(py)),
            (None, py::Arg::Missing) => py::not_found(py),
        }
    }

    /// A message with `value` at `path` (levels created; the last key replaced).
    /// `UNSET` removes the key at `path`; `UNDEFINED` changes nothing.
    fn set<'py>(
        slf: &Bound<'py, Self>,
        path: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Message>> {
        let py = slf.py();
        // the common one-key path needs no parts list
        let single: [Key; 1];
        let many: Vec<Key>;
        let ps: &[Key] = match single_key(path) {
            Some(key) => {
                single = [key];
                &single
            }
            None => {
                many = py::parts_of(path)?;
                &many
            }
        };
        if ps.is_empty() {
            return Err(CoreError::EmptyPath.into());
        }
        if py::is_unset(py, value)? {
            return remove_in(py, slf, ps);
        }
        if py::is_undefined(py, value)? {
            return Ok(slf.clone());
        }
        if ps.len() > MAX_DEPTH {
            return Err(too_deep(ps.get(..MAX_DEPTH).unwrap_or(ps)));
        }
        let (stored, height) = if plain_leaf(value) {
            (value.clone(), 0)
        } else {
            let mut at = ps.to_vec();
            convert(py, value, ps.len() + 1, &mut at)?
        };
        set_in(py, slf, ps, &stored, height)
    }

    /// HyperBEAM's deep merge: `/` keys are paths, maps merge into maps key by key, other
    /// values replace, `UNSET` deletes, `UNDEFINED` is skipped.
    fn merge<'py>(
        slf: &Bound<'py, Self>,
        updates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Message>> {
        let py = slf.py();
        if !py::is_mapping(updates)? {
            return Err(build_error(format!(
                "merge expects a Mapping, got {}",
                py::type_name(updates)
            )));
        }
        merge(py, slf, updates, 1, &mut Vec::new())
    }

    /// A message without the given key(s); `"a/b"` removes a nested key; missing keys are
    /// ignored. A list/tuple names several keys.
    fn remove<'py>(
        slf: &Bound<'py, Self>,
        key_or_keys: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Message>> {
        let py = slf.py();
        let keys: Vec<Bound<'py, PyAny>> =
            if key_or_keys.is_instance_of::<PyList>() || key_or_keys.is_instance_of::<PyTuple>() {
                key_or_keys.try_iter()?.collect::<PyResult<_>>()?
            } else {
                vec![key_or_keys.clone()]
            };
        let m = slf.get();
        let mut draft = m.map.clone();
        let mut changed = false;
        for key in &keys {
            let text = py::norm_key(key)?;
            let ps: Vec<Key> = if text.contains('/') {
                crate::path::parts_of_keys(&text)?
            } else {
                vec![text]
            };
            let Some((first, rest)) = ps.split_first() else {
                continue;
            };
            if rest.is_empty() {
                changed |= draft.remove_mut(first).is_some();
                continue;
            }
            let existing = draft.get(first).map(|e| e.0.bind(py).clone());
            let Some(sub) = as_level(existing)? else {
                continue;
            };
            let child = remove_in(py, &sub, rest)?;
            if !child.is(&sub) {
                draft.insert_mut(first.clone(), Val(child.into_any().unbind()));
                changed = true;
            }
        }
        if !changed {
            return Ok(slf.clone());
        }
        new_msg(py, draft, m.height())
    }
}

/// `normalize_keys`: a list/tuple → numbered Message; a Mapping → Message; else as is.
pub(crate) fn normalize_keys<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    if value.is_exact_instance_of::<Message>() {
        return Ok(value.clone());
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        return Ok(numbered_from_values(py, value)?.into_any());
    }
    if py::is_mapping(value)? {
        let msg = Message::build(py, Some(value), None)?;
        return Ok(untracked(py, msg)?.into_any());
    }
    Ok(value.clone())
}

/// Make `hbeam._native.Message` a `collections.abc.Mapping`: registered with a private
/// ABC that is registered with `Mapping`. CPython never caches the answer for a class
/// registered with an ABC directly (it walks the ABC's checks, `__subclasshook__`
/// included, on every `isinstance`: ~0.45 us), but caches one found through a registered
/// ABC (~0.1 us after the first).
pub(crate) fn register(py: Python<'_>) -> PyResult<()> {
    // ABC registries hold weak references: the private ABC lives as long as the module
    static VIA: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let via = VIA.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let meta = py.import("abc")?.getattr("ABCMeta")?;
        let via = meta.call1(("CoreMessage", PyTuple::empty(py), PyDict::new(py)))?;
        via.call_method1("register", (py.get_type::<Message>(),))?;
        Ok(via.unbind())
    })?;
    let mapping = py.import("collections.abc")?.getattr("Mapping")?;
    mapping.call_method1("register", (via.bind(py),))?;
    views(py)?;
    Ok(())
}
