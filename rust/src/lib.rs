//! `hbeam._native`: the Rust twin of `hbeam._pure` (see `docs/core-contract.md`).
//!
//! The pure-Rust core (`key`, `path`, `pmap`, `hashpath`, and the LRU of `cache`) knows
//! nothing of Python and is tested with `cargo test --no-default-features`; `py.rs`,
//! `message.rs` and the `ResultCache` class are the binding, built with the `python`
//! feature. This file is the only one that registers things with Python.

/// The allocator of everything the binding allocates in Rust (map nodes, keys, buffers).
/// A process frees each state's nodes long after it made them (it keeps its recent
/// states); under glibc's malloc about a tenth of the token pipeline's time went to
/// malloc and free, much of it consolidating and re-binning those chunks. mimalloc's
/// per-thread free lists serve the same pattern without that work.
#[cfg(feature = "python")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod cache;
pub mod errors;
pub mod hashpath;
pub mod key;
pub mod path;
pub mod pmap;
pub mod request;

#[cfg(feature = "python")]
mod assign;
#[cfg(feature = "python")]
mod luaflat;
#[cfg(feature = "python")]
mod message;
#[cfg(feature = "python")]
mod patch;
#[cfg(feature = "python")]
mod py;
#[cfg(feature = "python")]
mod wasm;

#[cfg(feature = "python")]
use pyo3::prelude::*;

#[cfg(feature = "python")]
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    m.add("build_profile", profile)?;
    m.add("MAX_DEPTH", key::MAX_DEPTH)?;
    m.add("MAX_KEY_BYTES", key::MAX_KEY_BYTES)?;
    m.add_class::<message::Message>()?;
    m.add_class::<cache::ResultCache>()?;
    py::register(m)?;
    m.add("MAX_SEGMENT_BYTES", request::MAX_SEGMENT_BYTES)?;
    m.add_function(wrap_pyfunction!(request::python::parse_request, m)?)?;
    m.add_function(wrap_pyfunction!(wasm::wasm_translate_legacy_eh, m)?)?;
    m.add_function(wrap_pyfunction!(patch::apply_patches, m)?)?;
    m.add_function(wrap_pyfunction!(luaflat::lua_decode_values, m)?)?;
    m.add_function(wrap_pyfunction!(luaflat::lua_encode_map, m)?)?;
    m.add_function(wrap_pyfunction!(luaflat::lua_encode_values, m)?)?;
    m.add_function(wrap_pyfunction!(luaflat::lua_payload_bound, m)?)?;
    m.add_function(wrap_pyfunction!(assign::assign_many, m)?)?;
    message::register(m.py())?;
    Ok(())
}
