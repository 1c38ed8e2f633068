//! The Python boundary: the type dispatch of keys and paths on Python objects, small
//! helpers shared by the pyclasses (type names, `describe`, sentinels, integers of any
//! size), and the module-level functions (`normalize_key`, `parts`, `encode`, `id`, …).

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyList, PyString, PyTuple, PyType};

use crate::errors::CoreError;
use crate::hashpath::{self as hp, Encoder, HASHPATH_ALG};
use crate::key::{self, MAX_DEPTH};
use crate::message::{self, kind, Kind, Message};
use crate::path;
use crate::pmap::Key;

// --------------------------------------------------------------------- helpers

/// An optional argument whose absence differs from `None`.
pub enum Arg {
    Missing,
    Given(Py<PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for Arg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Arg::Given(obj.to_owned().unbind()))
    }
}

/// `type(obj).__name__`.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .and_then(|n| n.to_cow().map(Cow::into_owned))
        .unwrap_or_else(|_| "object".to_owned())
}

/// `repr(obj)` cut to 100 characters (then `...`); never fails.
pub fn describe(obj: &Bound<'_, PyAny>) -> String {
    let text = match obj.repr() {
        Ok(r) => r.to_string_lossy().into_owned(),
        Err(_) => format!("<{} object>", type_name(obj)),
    };
    key::clip(&text)
}

pub fn is_bool(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyBool>()
}

fn sentinel<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.import(py, "hbeam._sentinels", name)
}

static NOT_FOUND: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static UNSET: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static UNDEFINED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `hbeam._sentinels.NOT_FOUND`.
pub fn not_found(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    sentinel(py, &NOT_FOUND, "NOT_FOUND").cloned()
}

/// Whether `obj` is `hbeam._sentinels.UNSET`.
pub fn is_unset(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(obj.is(sentinel(py, &UNSET, "UNSET")?))
}

/// Whether `obj` is `hbeam._sentinels.UNDEFINED`.
pub fn is_undefined(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(obj.is(sentinel(py, &UNDEFINED, "UNDEFINED")?))
}

/// `isinstance(obj, collections.abc.Mapping)`.
pub fn is_mapping(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.is_exact_instance_of::<PyDict>() || obj.is_exact_instance_of::<Message>() {
        return Ok(true);
    }
    // the builtin leaves and sequences never are: skip the (slow) ABC check
    if obj.is_exact_instance_of::<PyString>()
        || obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyBytes>()
        || obj.is_exact_instance_of::<PyBool>()
        || obj.is_exact_instance_of::<pyo3::types::PyFloat>()
        || obj.is_exact_instance_of::<PyList>()
        || obj.is_exact_instance_of::<PyTuple>()
        || obj.is_none()
    {
        return Ok(false);
    }
    static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    obj.is_instance(MAPPING.import(obj.py(), "collections.abc", "Mapping")?)
}

/// A `(key, value)` pair of a Mapping.
pub type Pair<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>);

/// The pairs of a Mapping, in its iteration order.
pub enum Items<'py> {
    /// An exact `dict`'s pairs, all taken before the first is used.
    Taken(std::vec::IntoIter<Pair<'py>>),
    /// The iterator of another Mapping's `items()`.
    Called(Bound<'py, pyo3::types::PyIterator>),
}

impl<'py> Iterator for Items<'py> {
    type Item = PyResult<Pair<'py>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Items::Taken(pairs) => pairs.next().map(Ok),
            Items::Called(it) => it.next().map(|pair| pair.and_then(|p| split_pair(&p))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Items::Taken(pairs) => pairs.size_hint(),
            Items::Called(_) => (0, None),
        }
    }
}

fn split_pair<'py>(pair: &Bound<'py, PyAny>) -> PyResult<Pair<'py>> {
    if let Ok(t) = pair.cast_exact::<PyTuple>() {
        if t.len() == 2 {
            return Ok((t.get_item(0)?, t.get_item(1)?));
        }
    }
    let items: Vec<Bound<'py, PyAny>> = pair.try_iter()?.collect::<PyResult<_>>()?;
    match <[Bound<'py, PyAny>; 2]>::try_from(items) {
        Ok([k, v]) => Ok((k, v)),
        Err(items) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "expected a (key, value) pair, got {} values",
            items.len()
        ))),
    }
}

/// The pairs of an exact `dict`, taken all at once: no Python code runs while they are
/// read, so code run later while converting them (a Mapping's `items`, a list subclass's
/// `__iter__`) may change the dict without disturbing the walk (a private snapshot, as
/// `dict.copy()` would be, without building a dict).
pub fn dict_pairs<'py>(d: &Bound<'py, PyDict>) -> Vec<Pair<'py>> {
    let mut pairs = Vec::with_capacity(d.len());
    pairs.extend(d.iter());
    pairs
}

/// The `(key, value)` pairs of a Mapping, in its iteration order.
pub fn mapping_items<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Items<'py>> {
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        return Ok(Items::Taken(dict_pairs(d).into_iter()));
    }
    let source = obj.call_method0(pyo3::intern!(obj.py(), "items"))?;
    Ok(Items::Called(source.try_iter()?))
}

/// `hbeam._sentinels.UNSET` and `UNDEFINED`, looked up once for a walk over many values.
pub struct Sentinels<'py> {
    unset: &'py Bound<'py, PyAny>,
    undefined: &'py Bound<'py, PyAny>,
}

impl<'py> Sentinels<'py> {
    pub fn get(py: Python<'py>) -> PyResult<Self> {
        Ok(Sentinels {
            unset: sentinel(py, &UNSET, "UNSET")?,
            undefined: sentinel(py, &UNDEFINED, "UNDEFINED")?,
        })
    }

    /// Whether `obj` is `UNSET`.
    pub fn is_unset(&self, obj: &Bound<'_, PyAny>) -> bool {
        obj.is(self.unset)
    }

    /// Whether `obj` is `UNDEFINED`.
    pub fn is_undefined(&self, obj: &Bound<'_, PyAny>) -> bool {
        obj.is(self.undefined)
    }
}

/// `int.__int__(obj)`: the exact `int` of an `int` (subclass) instance.
pub fn exact_int<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if obj.is_exact_instance_of::<PyInt>() {
        return Ok(obj.clone());
    }
    static INT_INT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = obj.py();
    INT_INT
        .get_or_try_init(py, || {
            py.get_type::<PyInt>().getattr("__int__").map(Bound::unbind)
        })?
        .bind(py)
        .call1((obj,))
}

/// Decimal text of an `int`, however large.
pub fn int_text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(n) = obj.extract::<i64>() {
        return Ok(n.to_string());
    }
    let py = obj.py();
    let int = exact_int(obj)?;
    let bits: usize = int
        .call_method0(pyo3::intern!(py, "bit_length"))?
        .extract()?;
    let len = bits / 8 + 1;
    let kwargs = PyDict::new(py);
    kwargs.set_item(pyo3::intern!(py, "signed"), true)?;
    let data = int.call_method(
        pyo3::intern!(py, "to_bytes"),
        (len, pyo3::intern!(py, "big")),
        Some(&kwargs),
    )?;
    Ok(key::int_text_from_be(data.cast::<PyBytes>()?.as_bytes()))
}

/// The `int` of canonical decimal text (`-12`), however long.
pub fn int_from_text<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(PyInt::new(py, n).into_any());
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let mag = key::decimal_to_be(digits.as_bytes()).ok_or_else(|| {
        CoreError::InvalidMessage(format!("bad integer text '{}'", key::clip(text)))
    })?;
    let value = py
        .get_type::<PyInt>()
        .call_method1("from_bytes", (PyBytes::new(py, &mag), "big"))?;
    if negative {
        value.neg()
    } else {
        Ok(value)
    }
}

// ------------------------------------------------------------------- keys

fn key_part(key: &Bound<'_, PyAny>, depth: usize, out: &mut String) -> PyResult<()> {
    let not_utf8 = || -> PyErr {
        CoreError::InvalidMessage(format!("key is not valid UTF-8: {}", describe(key))).into()
    };
    if let Ok(s) = key.cast::<PyString>() {
        out.push_str(s.to_str().map_err(|_| not_utf8())?);
    } else if let Ok(b) = key.cast::<PyBytes>() {
        out.push_str(std::str::from_utf8(b.as_bytes()).map_err(|_| not_utf8())?);
    } else if is_bool(key) {
        out.push_str(if key.is_truthy()? { "true" } else { "false" });
    } else if key.is_instance_of::<PyInt>() {
        out.push_str(&int_text(key)?);
    } else if key.is_instance_of::<PyList>() || key.is_instance_of::<PyTuple>() {
        if depth > MAX_DEPTH {
            return Err(CoreError::InvalidMessage(format!(
                "key nesting deeper than {MAX_DEPTH} levels"
            ))
            .into());
        }
        for (i, item) in key.try_iter()?.enumerate() {
            if i > 0 {
                out.push('/');
            }
            key_part(&item?, depth + 1, out)?;
        }
    } else {
        return Err(CoreError::InvalidMessage(format!(
            "unsupported key type {}: {}",
            type_name(key),
            describe(key)
        ))
        .into());
    }
    Ok(())
}

/// `normalize_key(key)` (contract "Keys"): str, bytes, bool, int, or a list of those.
pub fn norm_key(key: &Bound<'_, PyAny>) -> PyResult<Key> {
    if let Ok(s) = key.cast_exact::<PyString>() {
        if let Ok(text) = s.to_str() {
            key::check_len(text)?;
            return Ok(Key::new(text));
        }
    }
    let mut text = String::new();
    key_part(key, 1, &mut text)?;
    key::check_len(&text)?;
    Ok(Key::from(text))
}

// ------------------------------------------------------------------ paths

fn collect_parts(p: &Bound<'_, PyAny>, out: &mut Vec<Key>, depth: usize) -> PyResult<()> {
    let not_utf8 = || -> PyErr {
        CoreError::InvalidPath(format!("path is not valid UTF-8: {}", describe(p))).into()
    };
    if let Ok(s) = p.cast::<PyString>() {
        path::split_into(s.to_str().map_err(|_| not_utf8())?, out)?;
    } else if let Ok(b) = p.cast::<PyBytes>() {
        path::split_into(
            std::str::from_utf8(b.as_bytes()).map_err(|_| not_utf8())?,
            out,
        )?;
    } else if is_bool(p) {
        out.push(Key::new(if p.is_truthy()? { "true" } else { "false" }));
    } else if p.is_instance_of::<PyInt>() {
        out.push(Key::from(int_text(p)?));
    } else if p.is_instance_of::<PyList>() || p.is_instance_of::<PyTuple>() {
        if depth > MAX_DEPTH {
            return Err(CoreError::InvalidPath(format!(
                "path nesting deeper than {MAX_DEPTH} levels"
            ))
            .into());
        }
        for item in p.try_iter()? {
            collect_parts(&item?, out, depth + 1)?;
        }
    } else {
        return Err(CoreError::InvalidPath(format!(
            "unsupported path type {}: {}",
            type_name(p),
            describe(p)
        ))
        .into());
    }
    Ok(())
}

/// `parts(path)` as keys (contract "Paths").
pub fn parts_of(p: &Bound<'_, PyAny>) -> PyResult<Vec<Key>> {
    let mut out = Vec::new();
    collect_parts(p, &mut out, 1)?;
    Ok(out)
}

// -------------------------------------------------------- module functions

/// A key in its normalised form: `42` → `"42"`, `["a", b"b", 1]` → `"a/b/1"`.
#[pyfunction]
pub fn normalize_key<'py>(py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(s) = key.cast_exact::<PyString>() {
        if let Ok(text) = s.to_str() {
            key::check_len(text)?;
            return Ok(key.clone());
        }
    }
    Ok(PyString::new(py, &norm_key(key)?).into_any())
}

/// A list/tuple → `Message({"1": v1, …})`; a Mapping → `Message(value)`; else as is.
#[pyfunction]
pub fn normalize_keys<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    message::normalize_keys(py, value)
}

/// Whether `key` is private: it starts with `priv` in any ASCII case.
#[pyfunction]
pub fn is_private(key: &Bound<'_, PyString>) -> PyResult<bool> {
    match key.to_str() {
        Ok(text) => Ok(key::is_private(text)),
        // lone surrogates: only the first four characters matter
        Err(_) => {
            let head = key
                .as_any()
                .get_item(pyo3::types::PySlice::new(key.py(), 0, 4, 1))?;
            Ok(head
                .cast::<PyString>()
                .ok()
                .and_then(|h| h.to_str().ok().map(key::is_private))
                .unwrap_or(false))
        }
    }
}

/// The keys a path names: split on `/`, empty segments dropped, lists flattened.
#[pyfunction]
pub fn parts<'py>(py: Python<'py>, path: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    // a short exact str: let str.split cut it (no segment can pass the limit)
    if let Ok(s) = path.cast_exact::<PyString>() {
        if s.to_str().is_ok_and(|t| t.len() <= key::MAX_KEY_BYTES) {
            let pieces = s.call_method1(pyo3::intern!(py, "split"), (pyo3::intern!(py, "/"),))?;
            let pieces = pieces.cast_into::<PyList>()?;
            let kept: Vec<Bound<'py, PyAny>> = pieces
                .iter()
                .filter(|p| p.len().is_ok_and(|n| n > 0))
                .collect();
            if kept.len() == pieces.len() {
                return Ok(pieces);
            }
            return PyList::new(py, kept);
        }
    }
    let ps = parts_of(path)?;
    PyList::new(py, ps.iter().map(|p| PyString::new(py, p)))
}

/// `"/".join(parts(path))`.
#[pyfunction]
pub fn to_str(path: &Bound<'_, PyAny>) -> PyResult<String> {
    let ps = parts_of(path)?;
    let parts: Vec<&str> = ps.iter().map(Key::as_str).collect();
    Ok(parts.join("/"))
}

/// The canonical, typed, decodable encoding of `value` (private keys skipped).
#[pyfunction]
pub fn encode<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let stored = message::to_stored(py, value)?;
    let mut enc = Encoder::new();
    message::encode_stored(py, &stored, &mut enc, None)?;
    Ok(PyBytes::new(py, &enc.out))
}

fn thaw<'py>(value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    message::out(value)
}

/// The value `encode` wrote (maps as `Message`, lists as `list`).
#[pyfunction]
pub fn decode<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let owned;
    let bytes: &[u8] = if let Ok(b) = data.cast::<PyBytes>() {
        b.as_bytes()
    } else if data.is_instance_of::<pyo3::types::PyByteArray>()
        || data.is_instance_of::<pyo3::types::PyMemoryView>()
    {
        owned = py.get_type::<PyBytes>().call1((data,))?;
        owned.cast::<PyBytes>()?.as_bytes()
    } else {
        return Err(CoreError::InvalidMessage(format!(
            "decode expects bytes, got {}",
            type_name(data)
        ))
        .into());
    };
    let decoded = hp::decode(bytes)?;
    thaw(message::from_decoded(py, decoded)?)
}

/// The 43-character base64url blake3 ID of `value`.
#[pyfunction]
pub fn id(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(m) = value.cast_exact::<Message>() {
        return message::message_id(py, m);
    }
    if value.is_instance_of::<PyString>() {
        let stored = message::to_stored(py, value)?;
        let text = stored.cast::<PyString>()?.to_str()?;
        return Ok(message::hash_b64(text.as_bytes()));
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(message::hash_b64(b.as_bytes()));
    }
    if value.is_instance_of::<pyo3::types::PyByteArray>()
        || value.is_instance_of::<pyo3::types::PyMemoryView>()
    {
        let copy = py.get_type::<PyBytes>().call1((value,))?;
        return Ok(message::hash_b64(copy.cast::<PyBytes>()?.as_bytes()));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let msg = message::numbered_from_values(py, value)?;
        return message::message_id(py, &msg);
    }
    let stored = message::to_stored(py, value)?;
    if let Ok(m) = stored.cast_exact::<Message>() {
        return message::message_id(py, m);
    }
    let mut enc = Encoder::new();
    message::encode_stored(py, &stored, &mut enc, None)?;
    Ok(message::hash_owned_b64(py, enc.out))
}

fn as_message<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Message>> {
    let stored = if value.is_exact_instance_of::<Message>() {
        value.clone()
    } else {
        message::to_stored(py, value)?
    };
    Ok(stored.cast_into::<Message>()?)
}

fn base_hashpath(py: Python<'_>, base: &Bound<'_, PyAny>) -> PyResult<String> {
    if base.is_instance_of::<PyString>() {
        let stored = message::to_stored(py, base)?;
        return Ok(stored.cast::<PyString>()?.to_str()?.to_owned());
    }
    if is_mapping(base)? {
        let msg = as_message(py, base)?;
        if let Some(priv_) = msg.get().map.get("priv") {
            if let Ok(p) = priv_.0.bind(py).cast_exact::<Message>() {
                if let Some(recorded) = p.get().map.get("hashpath") {
                    if let Ok(s) = recorded.0.bind(py).cast_exact::<PyString>() {
                        return Ok(s.to_str()?.to_owned());
                    }
                }
            }
        }
        return message::message_id(py, &msg);
    }
    Err(CoreError::InvalidMessage(format!(
        "hashpath expects a Mapping or str, got {}: {}",
        type_name(base),
        describe(base)
    ))
    .into())
}

fn component(py: Python<'_>, req: &Bound<'_, PyAny>) -> PyResult<String> {
    let first = |ps: Vec<Key>| {
        ps.into_iter()
            .next()
            .map_or_else(|| "/".to_owned(), String::from)
    };
    if req.is_instance_of::<PyString>() {
        return Ok(first(parts_of(req)?));
    }
    if is_mapping(req)? {
        let msg = as_message(py, req)?;
        let map = &msg.get().map;
        if let Some(path) = map.get("path") {
            let only_path = map
                .keys()
                .all(|k| k == "path" || k == "hashpath" || key::is_private(k));
            if only_path {
                return Ok(first(parts_of(path.0.bind(py))?));
            }
        }
        return message::message_id(py, &msg);
    }
    Err(CoreError::InvalidMessage(format!(
        "hashpath request must be a Mapping or str, got {}: {}",
        type_name(req),
        describe(req)
    ))
    .into())
}

/// A hash path: of a result (one argument), or of resolving `req` on `base`.
#[pyfunction]
#[pyo3(signature = (base, req = None))]
pub fn hashpath(
    py: Python<'_>,
    base: &Bound<'_, PyAny>,
    req: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let prev = base_hashpath(py, base)?;
    let Some(req) = req else { return Ok(prev) };
    if is_mapping(base)? {
        let msg = as_message(py, base)?;
        if let Some(alg) = msg.get().map.get("hashpath-alg") {
            let alg = alg.0.bind(py);
            let ok = alg
                .cast_exact::<PyString>()
                .ok()
                .and_then(|s| s.to_str().ok())
                .is_some_and(|s| s == HASHPATH_ALG);
            if !ok {
                let shown = match kind(alg) {
                    Kind::Str(s) => format!("'{}'", s.to_str()?),
                    _ => describe(alg),
                };
                return Err(
                    CoreError::InvalidMessage(format!("unsupported hashpath-alg {shown}")).into(),
                );
            }
        }
    }
    let comp = component(py, req)?;
    Ok(hp::chain(&prev, &comp)?)
}

/// Add the module-level functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(normalize_key, m)?)?;
    m.add_function(wrap_pyfunction!(normalize_keys, m)?)?;
    m.add_function(wrap_pyfunction!(is_private, m)?)?;
    m.add_function(wrap_pyfunction!(parts, m)?)?;
    m.add_function(wrap_pyfunction!(to_str, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(id, m)?)?;
    m.add_function(wrap_pyfunction!(hashpath, m)?)?;
    Ok(())
}
