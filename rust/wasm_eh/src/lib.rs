//! Legacy wasm exception handling → standard exnref form, at load time.
//!
//! Emscripten builds (the aos wasm64 images among them) use the legacy
//! exception-handling instructions `try` / `catch` / `catch_all` / `rethrow` /
//! `delegate`. wasmtime only runs the standardised form (`try_table` with
//! `catch` / `catch_ref` / `catch_all` / `catch_all_ref`, and `throw_ref`), so
//! [`translate`] rewrites every function that uses the legacy instructions and
//! copies everything else unchanged (sections are re-encoded with
//! `wasm_encoder::reencode`; untouched function bodies are copied byte for byte;
//! a module without legacy instructions is returned as is).
//!
//! The approach follows binaryen's `TranslateToExnref` pass, done directly on the
//! flat instruction stream instead of a tree IR:
//!
//! * `try bt B (catch x H)* (catch_all H)? end` becomes an outer `block bt`
//!   holding one block per catch clause (innermost first) around a
//!   `try_table bt (catch x $h1) … B end`; each handler's code follows the `end`
//!   of its block (the tag's values are then on the stack, as the legacy `catch`
//!   left them) and branches to the outer block when done.
//! * `rethrow` needs the caught exception: a `try` targeted by a `rethrow` uses
//!   `catch_ref` / `catch_all_ref`, stores the `exnref` in a local as its handler
//!   starts, and `rethrow` becomes `local.get; throw_ref`.
//! * `try … delegate l` becomes `try_table bt (catch_all_ref $land)` where
//!   `$land` is an `exnref` block wrapping the body of the `try` the exception is
//!   delegated to, followed by `throw_ref` (so that try's handlers see it), or
//!   wrapping the whole function body when it is delegated to the caller.
//!
//! Everything here returns [`Error`] on bad input; nothing panics.

mod emit;
mod module;
mod scan;

/// Why a module could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input is not a valid WebAssembly module (parse or validation error).
    #[error("invalid wasm module at byte {offset}: {message}")]
    Invalid {
        /// Byte offset in the input where the problem was found.
        offset: u64,
        /// What was wrong.
        message: String,
    },
    /// The module is valid but uses a construct the translator does not handle.
    #[error("unsupported construct at byte {offset}: {reason}")]
    Unsupported {
        /// Byte offset in the input of the offending instruction.
        offset: u64,
        /// What is not supported.
        reason: String,
    },
    /// The translation produced something invalid (a bug in this crate).
    #[error("legacy exception-handling translation failed: {0}")]
    Internal(String),
}

impl From<wasmparser::BinaryReaderError> for Error {
    fn from(err: wasmparser::BinaryReaderError) -> Self {
        Error::Invalid {
            offset: err.offset(),
            message: err.message().to_string(),
        }
    }
}

impl<E: std::fmt::Display> From<wasm_encoder::reencode::Error<E>> for Error {
    fn from(err: wasm_encoder::reencode::Error<E>) -> Self {
        match err {
            wasm_encoder::reencode::Error::ParseError(e) => e.into(),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Rewrite the legacy exception-handling instructions of a wasm module into the
/// standard exnref form.
///
/// A module that does not use them is returned byte-identical. The input is
/// validated first (with every wasm feature enabled), and the output is
/// validated without the legacy-exceptions feature before it is returned.
///
/// # Errors
/// [`Error::Invalid`] for bytes that are not a valid module,
/// [`Error::Unsupported`] for a valid construct this translator cannot express
/// (a `delegate` that crosses a standard `try_table`), [`Error::Internal`] if the
/// output fails validation.
pub fn translate(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    if !module::scan_for_legacy(bytes)? {
        return Ok(bytes.to_vec());
    }
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator.validate_all(bytes)?;
    let out = module::translate_module(bytes)?;
    let mut features = wasmparser::WasmFeatures::all();
    features.remove(wasmparser::WasmFeatures::LEGACY_EXCEPTIONS);
    wasmparser::Validator::new_with_features(features)
        .validate_all(&out)
        .map_err(|e| Error::Internal(format!("output does not validate: {e}")))?;
    Ok(out)
}

/// Whether `bytes` is a wasm module whose code uses a legacy exception-handling
/// instruction (`try`, `catch`, `catch_all`, `rethrow` or `delegate`).
///
/// Bytes that do not parse as a module give `false`.
pub fn uses_legacy_eh(bytes: &[u8]) -> bool {
    module::scan_for_legacy(bytes).unwrap_or(false)
}

#[cfg(test)]
mod tests;
