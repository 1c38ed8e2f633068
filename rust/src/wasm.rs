//! Python binding of the `wasm_eh` crate: legacy wasm exception handling → exnref.
//!
//! Twin: `python/hbeam/_pure/wasm.py` (which can only pass through modules that do not
//! use the legacy instructions).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

pyo3::import_exception!(hbeam.errors, WasmError);

/// Return `data` with legacy exception handling (`try`/`catch`/`catch_all`/`rethrow`/
/// `delegate`) rewritten to the standard exnref form; a module without them comes back
/// byte-identical. Raises `hbeam.errors.WasmError` for bytes that are not a valid module.
#[pyfunction]
pub fn wasm_translate_legacy_eh<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    // The input is an immutable `bytes` buffer, so it is safe to read without the GIL.
    let result = py.detach(|| wasm_eh::translate(data));
    match result {
        Ok(out) => Ok(PyBytes::new(py, &out)),
        Err(err @ wasm_eh::Error::Invalid { .. }) => Err(WasmError::new_err(err.to_string())),
        Err(err) => Err(WasmError::new_err(format!(
            "cannot translate legacy exception handling: {err}"
        ))),
    }
}
