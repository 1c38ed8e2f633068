//! The flat wire codec of hbeam's Lua layer: `lua_decode_values`, `lua_encode_map`,
//! `lua_encode_values`. Twin of `python/hbeam/_pure/luaflat.py` (the reference: same
//! results, same exception classes and messages); the format is described at the top of
//! `python/hbeam/lua/convert.lua`.
//!
//! Values cross the lupa boundary as one flat sequence of scalars; a table is a `None`
//! marker, an integer code `n * 8 + kind`, then its contents. Decoding walks the tuple lupa
//! returns with borrowed item access and builds dicts and exact-size lists directly;
//! encoding gathers the output in a `Vec` and makes one list of it at the end.

use pyo3::exceptions::{PyTypeError, PyUnicodeDecodeError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PySequence,
    PyString, PyTuple,
};

use crate::errors::InvalidMessage;
use crate::key::MAX_DEPTH;
use crate::py::{is_mapping, type_name};

const FMAP: u64 = 1;
const MAP: u64 = 2;
const FLIST: u64 = 3;
const LIST: u64 = 4;
const NIL: u64 = 5;
const BYTES: u64 = 6;
const FPAIRS: u64 = 7;

/// Whether `obj` is exactly a `str`, `bytes`, `int`, `float` or `bool` (the types that go
/// onto the wire as they are; subclasses are converted first).
#[inline]
fn is_scalar(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_exact_instance_of::<PyString>()
        || obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyFloat>()
        || obj.is_exact_instance_of::<PyBool>()
        || obj.is_exact_instance_of::<PyBytes>()
}

// ------------------------------------------------------------------------------ decoding

/// Why decoding stopped (the text of the first two depends on the top-level value).
enum DecErr {
    /// A read past the end of the sequence.
    Truncated,
    /// A map key Python cannot hash (any `TypeError` of a dict store).
    Unhashable,
    Py(PyErr),
}

impl From<PyErr> for DecErr {
    fn from(err: PyErr) -> Self {
        DecErr::Py(err)
    }
}

type Dec<T> = Result<T, DecErr>;

fn malformed(text: String) -> DecErr {
    DecErr::Py(InvalidMessage::new_err(format!(
        "malformed value from Lua: {text}"
    )))
}

/// `dict[key] = value`, a `TypeError` (unhashable key) told apart.
fn store(d: &Bound<'_, PyDict>, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> Dec<()> {
    d.set_item(key, value).map_err(|err| {
        if err.is_instance_of::<PyTypeError>(d.py()) {
            DecErr::Unhashable
        } else {
            DecErr::Py(err)
        }
    })
}

/// `start + count * width`, or `Truncated` when it passes `end` (or overflows).
fn span(start: usize, count: usize, width: usize, end: usize) -> Dec<usize> {
    match count.checked_mul(width).and_then(|c| c.checked_add(start)) {
        Some(j) if j <= end => Ok(j),
        _ => Err(DecErr::Truncated),
    }
}

/// A Lua number or boolean map key as text (`_lua_key` of the pure twin).
fn lua_key<'py>(key: &Bound<'py, PyAny>) -> Dec<Bound<'py, PyAny>> {
    let py = key.py();
    if key.is_exact_instance_of::<PyString>() {
        return Ok(key.clone());
    }
    if key.is_exact_instance_of::<PyBool>() {
        let text = if key.is_truthy()? { "true" } else { "false" };
        return Ok(PyString::new(py, text).into_any());
    }
    if key.is_exact_instance_of::<PyInt>() {
        return Ok(key.str()?.into_any());
    }
    if key.is_exact_instance_of::<PyFloat>() {
        // Lua's own tostring format (integral floats are integer keys)
        return Ok(key.call_method1(pyo3::intern!(py, "__format__"), (".14g",))?);
    }
    Err(DecErr::Py(InvalidMessage::new_err(format!(
        "cannot convert the Lua result: unsupported map key {}",
        key.repr()?.to_string_lossy()
    ))))
}

struct Decoder<'a, 'py> {
    vals: &'a Bound<'py, PyTuple>,
    end: usize,
}

impl<'a, 'py> Decoder<'a, 'py> {
    #[inline]
    fn item(&self, i: usize) -> Dec<Borrowed<'a, 'py, PyAny>> {
        if i < self.end {
            // SAFETY: `i` is below the length of the tuple, which is immutable.
            Ok(unsafe { self.vals.get_borrowed_item_unchecked(i) })
        } else {
            Err(DecErr::Truncated)
        }
    }

    /// The kind and count of the table code at `at` (a non-negative exact `int`).
    fn code(&self, at: usize) -> Dec<(u64, usize)> {
        let code = self.item(at)?;
        if code.is_exact_instance_of::<PyInt>() {
            if let Ok(c) = code.extract::<u64>() {
                return Ok((c & 7, usize::try_from(c >> 3).unwrap_or(usize::MAX)));
            }
            if code.ge(0)? {
                // beyond 64 bits: the count runs past any sequence
                let kind = code.bitand(7)?.extract::<u64>()?;
                return Ok((kind, usize::MAX));
            }
        }
        Err(malformed(format!(
            "bad table code {} at position {at}",
            code.repr()?.to_string_lossy()
        )))
    }

    /// The value at `i` and the position after it.
    fn dec(&self, i: usize, depth: usize) -> Dec<(Bound<'py, PyAny>, usize)> {
        let py = self.vals.py();
        let v = self.item(i)?;
        if !v.is_none() {
            return Ok((v.to_owned(), i + 1));
        }
        let (kind, n) = self.code(i + 1)?;
        let mut i = i + 2;
        match kind {
            FPAIRS => {
                let j = span(i, n, 2, self.end)?;
                Ok((self.pairs(i, j)?, j))
            }
            MAP => {
                if depth >= MAX_DEPTH {
                    return Err(too_deep(i - 2));
                }
                let out = PyDict::new(py);
                for _ in 0..n {
                    let key = self.item(i)?;
                    let v = self.item(i + 1)?;
                    if v.is_none() {
                        let (x, next) = self.dec(i + 1, depth + 1)?;
                        store(&out, &key, &x)?;
                        i = next;
                    } else {
                        store(&out, &key, &v)?;
                        i += 2;
                    }
                }
                Ok((out.into_any(), i))
            }
            LIST => {
                if depth >= MAX_DEPTH {
                    return Err(too_deep(i - 2));
                }
                let mut items = Vec::with_capacity(n.min(self.end - i.min(self.end)));
                for _ in 0..n {
                    let (x, next) = self.dec(i, depth + 1)?;
                    items.push(x);
                    i = next;
                }
                Ok((PyList::new(py, items)?.into_any(), i))
            }
            FLIST => {
                let j = span(i, n, 1, self.end)?;
                let mut items = Vec::with_capacity(n);
                for p in i..j {
                    items.push(self.item(p)?);
                }
                Ok((PyList::new(py, items)?.into_any(), j))
            }
            NIL => Ok((py.None().into_bound(py), i)),
            BYTES => {
                let s = self.item(i)?;
                let bytes = latin1(&s).ok_or_else(|| bad_bytes(i))?;
                Ok((PyBytes::new(py, &bytes).into_any(), i + 1))
            }
            FMAP => {
                let j = span(i, n, 1, self.end)?;
                span(j, n, 1, self.end)?;
                let out = PyDict::new(py);
                for o in 0..n {
                    let (k, v) = (self.item(i + o)?, self.item(j + o)?);
                    store(&out, &k, &v)?;
                }
                Ok((out.into_any(), j + n))
            }
            _ => Err(malformed(format!(
                "unknown kind {kind} at position {}",
                i - 2
            ))),
        }
    }

    /// The map of the `(key, value)` pairs in `[i, j)`; keys that are not strings become
    /// text as Lua writes them.
    fn pairs(&self, i: usize, j: usize) -> Dec<Bound<'py, PyAny>> {
        let py = self.vals.py();
        let d = PyDict::new(py);
        let mut all_str = true;
        for p in (i..j).step_by(2) {
            let key = self.item(p)?;
            all_str &= key.is_exact_instance_of::<PyString>();
            let v = self.item(p + 1)?;
            store(&d, &key, &v)?;
        }
        // the check is on the keys the dict kept (as the pure twin does)
        if all_str
            || d.keys()
                .iter()
                .all(|k| k.is_exact_instance_of::<PyString>())
        {
            return Ok(d.into_any());
        }
        let out = PyDict::new(py);
        for (k, v) in d.iter() {
            store(&out, &lua_key(&k)?, &v)?;
        }
        Ok(out.into_any())
    }
}

fn too_deep(at: usize) -> DecErr {
    malformed(format!(
        "nesting deeper than {MAX_DEPTH} levels at position {at}"
    ))
}

fn bad_bytes(at: usize) -> DecErr {
    malformed(format!(
        "BYTES needs a string of code points below 256 at position {at}"
    ))
}

/// The Latin-1 bytes of an exact `str` whose code points are all below 256.
fn latin1(s: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    let s = s.cast_exact::<PyString>().ok()?.to_str().ok()?;
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Where `lua_decode_values` starts: an `int` compared as Python compares it, so one
/// beyond `usize` is past any end (`None`) and a negative one is refused.
pub struct Start(Option<usize>);

impl<'a, 'py> FromPyObject<'a, 'py> for Start {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.lt(0)? {
            return Err(InvalidMessage::new_err(format!(
                "malformed value from Lua: negative start {}",
                obj.str()?
            )));
        }
        match obj.extract::<usize>() {
            Ok(start) => Ok(Start(Some(start))),
            Err(_) if obj.is_instance_of::<PyInt>() => Ok(Start(None)),
            Err(err) => Err(err),
        }
    }
}

/// The Python values encoded in the flat sequence `vals[start:]`.
#[pyfunction]
#[pyo3(signature = (vals, start = Start(Some(0))), text_signature = "(vals, start=0)")]
pub fn lua_decode_values<'py>(
    py: Python<'py>,
    vals: &Bound<'py, PyAny>,
    start: Start,
) -> PyResult<Bound<'py, PyList>> {
    let Start(Some(start)) = start else {
        return Ok(PyList::empty(py));
    };
    let tuple = match vals.cast_exact::<PyTuple>() {
        Ok(t) => t.clone(),
        Err(_) => match vals.cast_exact::<PyList>() {
            Ok(l) => l.to_tuple(),
            Err(_) => vals.cast::<PySequence>()?.to_tuple()?,
        },
    };
    let dec = Decoder {
        end: tuple.len(),
        vals: &tuple,
    };
    let mut out = Vec::new();
    let mut i = start;
    while i < dec.end {
        match dec.dec(i, 0) {
            Ok((value, next)) => {
                out.push(value);
                i = next;
            }
            Err(DecErr::Truncated) => {
                return Err(InvalidMessage::new_err(format!(
                    "malformed value from Lua: the sequence ends inside the value at position {i}"
                )))
            }
            Err(DecErr::Unhashable) => {
                return Err(InvalidMessage::new_err(format!(
                    "malformed value from Lua: unhashable map key in the value at position {i}"
                )))
            }
            Err(DecErr::Py(err)) => return Err(err),
        }
    }
    PyList::new(py, out)
}

// ------------------------------------------------------------------------------ encoding

/// Why encoding stopped; the key path (innermost first) is collected while unwinding.
enum EncErr<'py> {
    TooDeep(Vec<Bound<'py, PyAny>>),
    Unsupported(String, Vec<Bound<'py, PyAny>>),
    Py(PyErr),
}

impl From<PyErr> for EncErr<'_> {
    fn from(err: PyErr) -> Self {
        EncErr::Py(err)
    }
}

impl<'py> EncErr<'py> {
    /// The error with `key` as the next outer path element.
    fn at(mut self, key: Bound<'py, PyAny>) -> Self {
        match &mut self {
            EncErr::TooDeep(path) | EncErr::Unsupported(_, path) => path.push(key),
            EncErr::Py(_) => {}
        }
        self
    }

    /// The `InvalidMessage` of `lua_encode_values` (the path may hold any `str`, even one
    /// Rust cannot, so the text is put together by Python).
    fn into_pyerr(self, py: Python<'py>) -> PyErr {
        let (what, mut path) = match self {
            EncErr::Py(err) => return err,
            EncErr::TooDeep(path) => (
                format!("nesting deeper than {MAX_DEPTH} levels (or a cycle)"),
                path,
            ),
            EncErr::Unsupported(what, path) => (what, path),
        };
        path.reverse();
        let text = (|| -> PyResult<Bound<'py, PyAny>> {
            if path.len() > 8 {
                let tail = path.split_off(path.len() - 3);
                path.truncate(4);
                path.push(PyString::new(py, "…").into_any());
                path.extend(tail);
            }
            let joined = PyString::new(py, "/").call_method1(pyo3::intern!(py, "join"), (path,))?;
            PyString::new(py, &format!("cannot pass value to Lua: {what} at key '"))
                .add(joined)?
                .add("'")
        })();
        match text {
            Ok(text) => InvalidMessage::new_err(text.unbind()),
            Err(err) => err,
        }
    }
}

type Enc<'py, T> = Result<T, EncErr<'py>>;

struct Encoder<'py> {
    py: Python<'py>,
    out: Vec<Bound<'py, PyAny>>,
}

type Objects<'py> = Vec<Bound<'py, PyAny>>;

/// The items of an exact `list`/`tuple`, or of anything iterable (a subclass).
fn items_of<'py>(value: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(t) = value.cast_exact::<PyTuple>() {
        return Ok(t.iter().collect());
    }
    if let Ok(l) = value.cast_exact::<PyList>() {
        return Ok(l.iter().collect());
    }
    value.try_iter()?.collect()
}

/// `(list(m.keys()), list(m.values()))` — for an exact `dict` without calling Python; the
/// values are only asked for when there are keys.
fn keys_values<'py>(value: &Bound<'py, PyAny>) -> PyResult<(Objects<'py>, Objects<'py>)> {
    if let Ok(d) = value.cast_exact::<PyDict>() {
        let mut keys = Vec::with_capacity(d.len());
        let mut vals = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            keys.push(k);
            vals.push(v);
        }
        return Ok((keys, vals));
    }
    let py = value.py();
    let keys = items_of(&value.call_method0(pyo3::intern!(py, "keys"))?)?;
    if keys.is_empty() {
        return Ok((keys, Vec::new()));
    }
    let vals = items_of(&value.call_method0(pyo3::intern!(py, "values"))?)?;
    Ok((keys, vals))
}

/// `"1" in value`.
fn has_one(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    let one = pyo3::intern!(value.py(), "1");
    match value.cast_exact::<PyDict>() {
        Ok(d) => d.contains(one),
        Err(_) => value.contains(one),
    }
}

/// For keys that are exactly `"1".."n"` (any order, no repeats): the index of the key of
/// each number, in number order.
fn seq_order(keys: &[Bound<'_, PyAny>]) -> Option<Vec<usize>> {
    let n = keys.len();
    let mut order = vec![usize::MAX; n];
    for (idx, key) in keys.iter().enumerate() {
        let text = key.cast::<PyString>().ok()?.to_str().ok()?;
        let b = text.as_bytes();
        if b.len() > 19 || b.first().is_none_or(|c| *c == b'0') || !b.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let v: usize = text.parse().ok()?;
        let slot = order.get_mut(v.checked_sub(1)?)?;
        if *slot != usize::MAX {
            return None;
        }
        *slot = idx;
    }
    Some(order)
}

impl<'py> Encoder<'py> {
    fn push_code(&mut self, n: usize, kind: u64) -> PyResult<()> {
        let code = (n as u64).wrapping_mul(8).wrapping_add(kind);
        self.out.push(self.py.None().into_bound(self.py));
        self.out.push(code.into_pyobject(self.py)?.into_any());
        Ok(())
    }

    fn enc(&mut self, value: &Bound<'py, PyAny>, depth: usize) -> Enc<'py, ()> {
        if is_scalar(value) {
            self.out.push(value.clone());
            return Ok(());
        }
        if value.is_none() {
            self.push_code(0, NIL)?;
            return Ok(());
        }
        if depth >= MAX_DEPTH {
            return Err(EncErr::TooDeep(Vec::new()));
        }
        if is_mapping(value)? {
            let (keys, vals) = keys_values(value)?;
            if keys.is_empty() {
                self.push_code(0, FMAP)?;
                return Ok(());
            }
            return self.enc_map(value, keys, vals, depth);
        }
        if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
            let items = items_of(value)?;
            return self.enc_list(&items, depth, None);
        }
        let leaf = self.leaf(value)?;
        self.out.push(leaf);
        Ok(())
    }

    fn enc_map(
        &mut self,
        value: &Bound<'py, PyAny>,
        keys: Vec<Bound<'py, PyAny>>,
        vals: Vec<Bound<'py, PyAny>>,
        depth: usize,
    ) -> Enc<'py, ()> {
        let n = keys.len();
        let keys = if !keys.iter().all(|k| k.is_exact_instance_of::<PyString>()) {
            keys.iter()
                .map(|k| self.key_text(k))
                .collect::<Enc<'py, Vec<_>>>()?
        } else {
            if has_one(value)? {
                if let Some(order) = seq_order(&keys) {
                    let mut items = Vec::with_capacity(n);
                    let mut names = Vec::with_capacity(n);
                    for &idx in &order {
                        let (Some(item), Some(name)) = (vals.get(idx), keys.get(idx)) else {
                            // a Mapping whose values() is shorter than its keys()
                            let err =
                                pyo3::exceptions::PyIndexError::new_err("list index out of range");
                            return Err(EncErr::Py(err));
                        };
                        items.push(item.clone());
                        names.push(name.clone());
                    }
                    return self.enc_list(&items, depth, Some(&names));
                }
            }
            keys
        };
        if vals.iter().all(is_scalar) {
            self.push_code(n, FMAP)?;
            self.out.extend(keys);
            self.out.extend(vals);
            return Ok(());
        }
        self.push_code(n, MAP)?;
        for (k, v) in keys.into_iter().zip(vals.iter()) {
            self.out.push(k.clone());
            self.enc(v, depth + 1).map_err(|e| e.at(k))?;
        }
        Ok(())
    }

    fn enc_list(
        &mut self,
        items: &[Bound<'py, PyAny>],
        depth: usize,
        names: Option<&[Bound<'py, PyAny>]>,
    ) -> Enc<'py, ()> {
        let n = items.len();
        if items.iter().all(is_scalar) {
            self.push_code(n, FLIST)?;
            self.out.extend(items.iter().cloned());
            return Ok(());
        }
        self.push_code(n, LIST)?;
        for (i, v) in items.iter().enumerate() {
            if let Err(e) = self.enc(v, depth + 1) {
                let name = match names.and_then(|names| names.get(i)) {
                    Some(name) => name.clone(),
                    None => PyString::new(self.py, &(i + 1).to_string()).into_any(),
                };
                return Err(e.at(name));
            }
        }
        Ok(())
    }

    /// A map key as text (`_key` of the pure twin).
    fn key_text(&self, key: &Bound<'py, PyAny>) -> Enc<'py, Bound<'py, PyAny>> {
        let py = self.py;
        if key.is_exact_instance_of::<PyString>() {
            return Ok(key.clone());
        }
        if key.is_instance_of::<PyBool>() {
            let text = if key.is_truthy()? { "true" } else { "false" };
            return Ok(PyString::new(py, text).into_any());
        }
        if key.is_instance_of::<PyInt>() {
            return Ok(py.get_type::<PyInt>().call1((key,))?.str()?.into_any());
        }
        if key.is_instance_of::<PyString>() {
            return Ok(key.str()?.into_any());
        }
        if key.is_instance_of::<PyBytes>()
            || key.is_instance_of::<PyByteArray>()
            || key.is_instance_of::<PyMemoryView>()
        {
            let raw = py.get_type::<PyBytes>().call1((key,))?;
            return match raw.call_method1(pyo3::intern!(py, "decode"), ("utf-8",)) {
                Ok(text) => Ok(text),
                Err(err) if err.is_instance_of::<PyUnicodeDecodeError>(py) => Err(
                    EncErr::Unsupported("map key is not valid UTF-8".to_owned(), Vec::new()),
                ),
                Err(err) => Err(EncErr::Py(err)),
            };
        }
        Err(EncErr::Unsupported(
            format!("unsupported key type {}", type_name(key)),
            Vec::new(),
        ))
    }

    /// A scalar of a subclass or buffer type, as the plain type lupa pushes (`_leaf`).
    fn leaf(&self, value: &Bound<'py, PyAny>) -> Enc<'py, Bound<'py, PyAny>> {
        let py = self.py;
        if value.is_instance_of::<PyBool>() {
            return Ok(PyBool::new(py, value.is_truthy()?).to_owned().into_any());
        }
        if value.is_instance_of::<PyInt>() {
            return Ok(py.get_type::<PyInt>().call1((value,))?);
        }
        if value.is_instance_of::<PyFloat>() {
            return Ok(py.get_type::<PyFloat>().call1((value,))?);
        }
        if value.is_instance_of::<PyString>() {
            return Ok(value.str()?.into_any());
        }
        if value.is_instance_of::<PyByteArray>() || value.is_instance_of::<PyMemoryView>() {
            return Ok(py.get_type::<PyBytes>().call1((value,))?);
        }
        Err(EncErr::Unsupported(
            format!("unsupported value type {}", type_name(value)),
            Vec::new(),
        ))
    }
}

/// The flat wire form of `values` (each one top-level argument for Lua).
#[pyfunction]
pub fn lua_encode_values<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let mut enc = Encoder {
        py,
        out: Vec::new(),
    };
    let one = |enc: &mut Encoder<'py>, value: &Bound<'py, PyAny>| -> PyResult<()> {
        enc.enc(value, 0).map_err(|e| e.into_pyerr(py))
    };
    if let Ok(t) = values.cast_exact::<PyTuple>() {
        for value in t.iter() {
            one(&mut enc, &value)?;
        }
    } else if let Ok(l) = values.cast_exact::<PyList>() {
        for value in items_of(l.as_any())? {
            one(&mut enc, &value)?;
        }
    } else {
        for value in values.try_iter()? {
            one(&mut enc, &value?)?;
        }
    }
    PyList::new(py, enc.out)
}

/// The flat wire form of one mapping: `lua_encode_values((value,))`, with a fast path for
/// the common message shape (string keys, scalar values).
#[pyfunction]
pub fn lua_encode_map<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let (keys, vals) = if let Ok(d) = value.cast_exact::<PyDict>() {
        keys_values(d.as_any())?
    } else {
        // both asked for, as the pure twin does, even for an empty mapping
        let keys = items_of(&value.call_method0(pyo3::intern!(py, "keys"))?)?;
        let vals = items_of(&value.call_method0(pyo3::intern!(py, "values"))?)?;
        (keys, vals)
    };
    if !keys.is_empty()
        && keys.iter().all(|k| k.is_exact_instance_of::<PyString>())
        && vals.iter().all(is_scalar)
        && !has_one(value)?
    {
        let mut enc = Encoder {
            py,
            out: Vec::with_capacity(2 + keys.len() + vals.len()),
        };
        enc.push_code(keys.len(), FMAP)?;
        enc.out.extend(keys);
        enc.out.extend(vals);
        return PyList::new(py, enc.out);
    }
    lua_encode_values(py, PyTuple::new(py, [value])?.as_any())
}

/// `4 * sum(len(x) for x in values if type(x) in (str, bytes))`: an upper bound of the
/// bytes Lua allocates for the strings of a flat sequence (a character is at most 4 UTF-8
/// bytes). Counted in `u128`, so the result is exact for any real sequence.
#[pyfunction]
pub fn lua_payload_bound<'py>(values: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    /// `len(x)` of an exact `str` or `bytes`, else 0 (runs no Python code).
    #[inline]
    fn size(x: &Bound<'_, PyAny>) -> PyResult<usize> {
        if x.is_exact_instance_of::<PyString>() {
            x.len()
        } else if let Ok(b) = x.cast_exact::<PyBytes>() {
            Ok(b.as_bytes().len())
        } else {
            Ok(0)
        }
    }
    let py = values.py();
    let mut total: u128 = 0;
    if let Ok(l) = values.cast_exact::<PyList>() {
        // borrowed items: `size` runs no Python code, so the list cannot change meanwhile
        for i in 0..l.len() {
            let Ok(i) = pyo3::ffi::Py_ssize_t::try_from(i) else {
                break;
            };
            // SAFETY: `l` is a list, `i` below its length; the item is borrowed from it
            // while nothing can change it.
            let item = unsafe { pyo3::ffi::PyList_GetItem(l.as_ptr(), i) };
            // SAFETY: an in-range item of a list is a valid object.
            let Some(item) = (unsafe { Borrowed::from_ptr_or_opt(py, item) }) else {
                return Err(PyErr::fetch(py));
            };
            total += size(&item)? as u128;
        }
    } else if let Ok(t) = values.cast_exact::<PyTuple>() {
        for x in t.iter_borrowed() {
            total += size(&x)? as u128;
        }
    } else {
        for x in values.try_iter()? {
            total += size(&x?)? as u128;
        }
    }
    let total = 4 * total;
    match u64::try_from(total) {
        Ok(small) => Ok(small.into_pyobject(py)?.into_any()),
        Err(_) => Ok(total.into_pyobject(py)?.into_any()),
    }
}
