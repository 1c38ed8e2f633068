//! `assign_many`: the scheduler's per-message work for a whole batch in one core call —
//! each message's ID, the hash chain, the assignment Message and its encoding.
//! Twin of `python/hbeam/_pure/assign.py`; the contract is `docs/core-contract.md`
//! §assign_many.
//!
//! Every result is the one the Python twin gets from the core's own functions: `id` of the
//! message, the chain `blake3(chain ‖ raw ID)`, a Message of the assignment's fields built
//! by the conversion `Message({...})` uses (so the same errors, in the same order), and
//! `encode` of it. Two shortcuts keep the bytes identical: the encoding is written field by
//! field around the body's, and an exact Message without `commitments` gets its ID from
//! that same body encoding (one walk instead of two; the ID is then not cached on it).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyList, PyString, PyTuple};

use crate::errors::CoreError;
use crate::hashpath::{Encoder, ALPHABET};
use crate::message::{convert, encode_stored, new_msg, Message, Val};
use crate::pmap::{Key, PMap};
use crate::py;

fn refuse(text: String) -> PyErr {
    CoreError::InvalidMessage(text).into()
}

/// An `int` argument (not a `bool`) as the exact `int` a Message stores.
fn int_arg<'py>(name: &str, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if value.is_instance_of::<PyInt>() && !py::is_bool(value) {
        return py::exact_int(value);
    }
    Err(refuse(format!(
        "assign_many: {name} must be an int, got {}",
        py::type_name(value)
    )))
}

const INVALID: u8 = 0xff;

/// base64url symbol → its 6 bits (`INVALID` for other bytes); a table, because the
/// symbols of an ID are random and a chain of comparisons mispredicts on them.
// built at compile time: an out-of-range index would fail the build, not panic
#[allow(clippy::indexing_slicing)]
const SEXTETS: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Append the bytes of base64url `text` (unused low bits of the last symbol ignored);
/// `None` on a byte outside the alphabet.
fn unb64_into(text: &str, out: &mut Vec<u8>) -> Option<()> {
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let six = SEXTETS.get(usize::from(c)).copied().unwrap_or(INVALID);
        if six == INVALID {
            return None;
        }
        acc = (acc << 6) | u32::from(six);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(())
}

/// base64url (no padding) of a 32-byte digest: 43 symbols.
fn b64_digest(digest: &[u8; 32], out: &mut String) {
    out.clear();
    crate::hashpath::b64_into(digest, out);
}

/// The value of an assignment's `key`, converted as `Message({...})` converts it.
fn field<'py>(
    py: Python<'py>,
    key: &'static str,
    value: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, usize)> {
    convert(py, value, 2, &mut vec![Key::new_static(key)])
}

/// The assignments of `messages` to slots `slot, slot + 1, …` of `process` (see the
/// contract): `(assignments, encodings, chain after the last)`.
#[pyfunction]
#[pyo3(signature = (process, messages, slot, chain, timestamp, block_height, block_timestamp))]
#[allow(clippy::too_many_arguments)]
pub fn assign_many<'py>(
    py: Python<'py>,
    process: &Bound<'py, PyAny>,
    messages: &Bound<'py, PyAny>,
    slot: &Bound<'py, PyAny>,
    chain: &Bound<'py, PyAny>,
    timestamp: &Bound<'py, PyAny>,
    block_height: &Bound<'py, PyAny>,
    block_timestamp: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let items: Vec<Bound<'py, PyAny>> = if let Ok(list) = messages.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = messages.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        return Err(refuse(format!(
            "assign_many expects a list of messages, got {}",
            py::type_name(messages)
        )));
    };
    let first = int_arg("slot", slot)?;
    let count = items.len();
    // slots are i64: the last one assigned must fit
    let start = first.extract::<i64>().ok().filter(|s| *s >= 0).filter(|s| {
        count == 0 || i64::try_from(count - 1).is_ok_and(|n| s.checked_add(n).is_some())
    });
    let Some(start) = start else {
        return Err(refuse(format!(
            "assign_many: cannot assign {count} slots from {} (slots are 0..{})",
            py::int_text(&first)?,
            i64::MAX
        )));
    };
    let Ok(chain_in) = chain.cast::<PyBytes>() else {
        return Err(refuse(format!(
            "assign_many: chain must be bytes, got {}",
            py::type_name(chain)
        )));
    };
    let timestamp = int_arg("timestamp", timestamp)?;
    let block_height = int_arg("block_height", block_height)?;
    let block_timestamp = int_arg("block_timestamp", block_timestamp)?;
    if items.is_empty() {
        return PyTuple::new(
            py,
            [
                PyList::empty(py).into_any(),
                PyList::empty(py).into_any(),
                chain.clone(),
            ],
        );
    }

    let text = |s: &str| Val(PyString::new(py, s).into_any().unbind());
    let (compute, ao, variant, kind, epoch) = (
        text("compute"),
        text("ao"),
        text("ao.N.1"),
        text("Assignment"),
        text("0"),
    );
    // the encoding of an assignment, written directly (`encode` of the Message gives the
    // same bytes: keys ascending, none private): head, body, middle, chain, ID, process
    // part, slot, tail — only the body and the per-message fields vary
    let mut head = Encoder::new();
    head.map(13)?;
    head.key("block-height");
    encode_stored(py, &block_height, &mut head, None)?;
    head.key("block-timestamp");
    encode_stored(py, &block_timestamp, &mut head, None)?;
    head.key("body");
    let mut middle = Encoder::new();
    middle.key("data-protocol");
    middle.str("ao")?;
    middle.key("epoch");
    middle.str("0")?;
    middle.key("hash-chain");
    let mut tail = Encoder::new();
    tail.key("timestamp");
    encode_stored(py, &timestamp, &mut tail, None)?;
    tail.key("type");
    tail.str("Assignment")?;
    tail.key("variant");
    tail.str("ao.N.1")?;
    let (timestamp, block_height, block_timestamp) = (
        Val(timestamp.unbind()),
        Val(block_height.unbind()),
        Val(block_timestamp.unbind()),
    );
    // `process` is converted (and its part of the encoding written) with the first message,
    // where `Message({...})` would convert it: after the ID, before the body
    let mut stored_process: Option<(Val, usize, Vec<u8>)> = None;
    let mut chain_now: Vec<u8> = chain_in.as_bytes().to_vec();
    let mut raw_id: Vec<u8> = Vec::with_capacity(32);
    let mut chain_text = String::with_capacity(44);
    let mut enc = Encoder::new();
    let mut assignments = Vec::with_capacity(count);
    let mut encodings = Vec::with_capacity(count);
    let mut slot_now = start;
    for message in &items {
        enc.out.clear();
        enc.out.extend_from_slice(&head.out);
        raw_id.clear();
        // an exact Message without `commitments`: its ID hashes its encoding, which the
        // assignment's encoding holds anyway (one walk over the body instead of two)
        let plain = message
            .cast_exact::<Message>()
            .is_ok_and(|m| !m.get().map.contains_key("commitments"));
        let message_id = if plain {
            encode_stored(py, message, &mut enc, None)?;
            let Some(encoded) = enc.out.get(head.out.len()..) else {
                return Err(refuse("assign_many: lost the body encoding".to_owned()));
            };
            let digest = blake3::hash(encoded);
            raw_id.extend_from_slice(digest.as_bytes());
            let mut text = String::with_capacity(44);
            b64_digest(digest.as_bytes(), &mut text);
            text
        } else {
            let text = py::id(py, message)?;
            if unb64_into(&text, &mut raw_id).is_none() {
                return Err(refuse(format!("assign_many: bad message ID '{text}'")));
            }
            text
        };
        let mut hasher = blake3::Hasher::new();
        hasher.update(&chain_now);
        hasher.update(&raw_id);
        let digest = hasher.finalize();
        chain_now.clear();
        chain_now.extend_from_slice(digest.as_bytes());
        b64_digest(digest.as_bytes(), &mut chain_text);
        if stored_process.is_none() {
            let (stored, height) = field(py, "process", process)?;
            let mut part = Encoder::new();
            part.key("path");
            part.str("compute")?;
            part.key("process");
            encode_stored(py, &stored, &mut part, None)?;
            part.key("slot");
            stored_process = Some((Val(stored.unbind()), height, part.out));
        }
        let Some((process_val, process_height, process_part)) = &stored_process else {
            return Err(refuse("assign_many: process not converted".to_owned()));
        };
        let (body, body_height) = field(py, "body", message)?;
        if !plain {
            encode_stored(py, &body, &mut enc, None)?;
        }
        enc.out.extend_from_slice(&middle.out);
        enc.str(&chain_text)?;
        enc.key("message");
        enc.str(&message_id)?;
        enc.out.extend_from_slice(process_part);
        enc.int_text(&slot_now.to_string())?;
        enc.out.extend_from_slice(&tail.out);
        let entries: Vec<(Key, Val)> = vec![
            (Key::new_static("block-height"), block_height.clone()),
            (Key::new_static("block-timestamp"), block_timestamp.clone()),
            (Key::new_static("body"), Val(body.unbind())),
            (Key::new_static("data-protocol"), ao.clone()),
            (Key::new_static("epoch"), epoch.clone()),
            (
                Key::new_static("hash-chain"),
                Val(PyString::new(py, &chain_text).into_any().unbind()),
            ),
            (
                Key::new_static("message"),
                Val(PyString::new(py, &message_id).into_any().unbind()),
            ),
            (Key::new_static("path"), compute.clone()),
            (Key::new_static("process"), process_val.clone()),
            (
                Key::new_static("slot"),
                Val(PyInt::new(py, slot_now).into_any().unbind()),
            ),
            (Key::new_static("timestamp"), timestamp.clone()),
            (Key::new_static("type"), kind.clone()),
            (Key::new_static("variant"), variant.clone()),
        ];
        let height = (*process_height).max(body_height) + 1;
        assignments.push(new_msg(py, PMap::from_sorted(entries), height)?);
        encodings.push(PyBytes::new(py, &enc.out));
        // the last slot may be i64::MAX: step only when another message follows
        slot_now = slot_now.saturating_add(1);
    }
    PyTuple::new(
        py,
        [
            PyList::new(py, assignments)?.into_any(),
            PyList::new(py, encodings)?.into_any(),
            PyBytes::new(py, &chain_now).into_any(),
        ],
    )
}
