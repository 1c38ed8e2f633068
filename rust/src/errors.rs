//! `CoreError`, the one error type of the core, and its single mapping to the Python
//! classes of `hbeam.errors` (the texts are part of the contract: `_pure` raises the same
//! class with the same message).

/// Everything the core can refuse. The `Display` text is the exception message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A key, value or encoding hbeam cannot represent (`InvalidMessage`).
    #[error("{0}")]
    InvalidMessage(String),
    /// A malformed path (`InvalidPath`).
    #[error("{0}")]
    InvalidPath(String),
    /// A missing key (`NotFound`, a `KeyError`).
    #[error("{0}")]
    NotFound(String),
    /// An argument of the right type with a value out of range (`ValueError`).
    #[error("{0}")]
    Value(String),
    /// An argument of the wrong type (`TypeError`).
    #[error("{0}")]
    Type(String),
    /// A key over `MAX_KEY_BYTES`.
    #[error("key is {len} bytes (limit {limit})")]
    KeyTooLong { len: usize, limit: usize },
    /// A path segment over `MAX_KEY_BYTES` (segments counted from 1).
    #[error("segment {index} is {len} bytes (limit {limit})")]
    SegmentTooLong {
        index: usize,
        len: usize,
        limit: usize,
    },
    /// `set` with a path that names no key.
    #[error("empty path")]
    EmptyPath,
    /// `decode` found a wrong field at this byte offset.
    #[error("malformed encoding at byte {0}")]
    Malformed(usize),
    /// A length that does not fit the encoding's u32.
    #[error("cannot encode: length {0} exceeds 4294967295")]
    TooLong(usize),
    /// A previous hash path whose first part is not an ID.
    #[error("hash path '{0}' does not start with a 43-character ID")]
    BadHashpath(String),
    /// Any of the above, found inside a nested map: the text gains ` at key '<where>'`.
    #[error("{inner} at key '{at}'")]
    At { inner: Box<CoreError>, at: String },
}

/// Which Python exception class a [`CoreError`] becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    InvalidMessage,
    InvalidPath,
    NotFound,
    Value,
    Type,
}

impl CoreError {
    /// The exception class (one exhaustive match: a new variant must be mapped here).
    pub fn class(&self) -> ErrorClass {
        match self {
            CoreError::InvalidMessage(_)
            | CoreError::KeyTooLong { .. }
            | CoreError::Malformed(_)
            | CoreError::TooLong(_)
            | CoreError::BadHashpath(_) => ErrorClass::InvalidMessage,
            CoreError::InvalidPath(_) | CoreError::SegmentTooLong { .. } | CoreError::EmptyPath => {
                ErrorClass::InvalidPath
            }
            CoreError::NotFound(_) => ErrorClass::NotFound,
            CoreError::Value(_) => ErrorClass::Value,
            CoreError::Type(_) => ErrorClass::Type,
            CoreError::At { inner, .. } => inner.class(),
        }
    }
}

/// `Result` of the core.
pub type CoreResult<T> = Result<T, CoreError>;

#[cfg(feature = "python")]
mod python {
    use super::{CoreError, ErrorClass};
    use pyo3::exceptions::{PyTypeError, PyValueError};
    use pyo3::PyErr;

    pyo3::import_exception!(hbeam.errors, InvalidMessage);
    pyo3::import_exception!(hbeam.errors, InvalidPath);
    pyo3::import_exception!(hbeam.errors, NotFound);

    impl From<CoreError> for PyErr {
        fn from(err: CoreError) -> PyErr {
            let text = err.to_string();
            match err.class() {
                ErrorClass::InvalidMessage => InvalidMessage::new_err(text),
                ErrorClass::InvalidPath => InvalidPath::new_err(text),
                ErrorClass::NotFound => NotFound::new_err(text),
                ErrorClass::Value => PyValueError::new_err(text),
                ErrorClass::Type => PyTypeError::new_err(text),
            }
        }
    }

    /// Whether `err` is an `hbeam.errors.InvalidMessage` (or a subclass).
    pub fn is_invalid_message(py: pyo3::Python<'_>, err: &PyErr) -> bool {
        err.is_instance_of::<InvalidMessage>(py)
    }
}

#[cfg(feature = "python")]
pub use python::{is_invalid_message, InvalidMessage, InvalidPath, NotFound};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_classes() {
        let e = CoreError::SegmentTooLong {
            index: 3,
            len: 10_485_760,
            limit: 65536,
        };
        assert_eq!(e.to_string(), "segment 3 is 10485760 bytes (limit 65536)");
        assert_eq!(e.class(), ErrorClass::InvalidPath);
        let at = CoreError::At {
            inner: Box::new(CoreError::InvalidMessage("empty key".into())),
            at: "a/b".into(),
        };
        assert_eq!(at.to_string(), "empty key at key 'a/b'");
        assert_eq!(at.class(), ErrorClass::InvalidMessage);
        assert_eq!(
            CoreError::Malformed(17).to_string(),
            "malformed encoding at byte 17"
        );
    }
}
