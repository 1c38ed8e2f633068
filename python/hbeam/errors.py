"""The hbeam exception hierarchy: every error hbeam raises is an :class:`AOError`.

Leaves also subclass the stdlib type a user already catches (``NotFound`` is a
``KeyError``, ``InvalidPath`` a ``ValueError``).  Each class carries the HTTP status
the node answers with, so one exception handler maps them all to 4xx/5xx JSON.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AOError",
    "CacheMiss",
    "DeviceError",
    "InvalidMessage",
    "InvalidPath",
    "InvalidSignature",
    "LimitExceeded",
    "LuaError",
    "NotFound",
    "RecursionLimit",
    "StoreError",
    "Unauthorized",
    "WalletError",
    "WasmError",
]


class AOError(Exception):
    """Base class of every error hbeam raises."""

    http_status: int = 500

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        """The JSON body the HTTP node answers with for this error."""
        body: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        for key, value in self.details.items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                body[key] = value
            else:
                body[key] = repr(value)
        return body


class NotFound(AOError, KeyError):
    """A key, path, message or process does not exist (HyperBEAM's ``not_found``)."""

    http_status = 404

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class InvalidPath(AOError, ValueError):
    """A path or request path is malformed."""

    http_status = 400


class InvalidMessage(AOError, ValueError):
    """A message holds a key or value hbeam cannot represent, or is malformed."""

    http_status = 400


class InvalidSignature(InvalidMessage):
    """A commitment (signature) on a message does not verify."""

    http_status = 400


class Unauthorized(AOError):
    """The request needs a verified signer it does not have."""

    http_status = 401


class DeviceError(AOError):
    """A device failed: it could not be loaded, or its key function raised.

    Carries ``device`` (name) and ``key``; the original exception is ``__cause__``.
    """

    http_status = 500

    def __init__(
        self,
        message: str = "",
        *,
        device: str | None = None,
        key: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, device=device, key=key, **details)
        self.device = device
        self.key = key


class LuaError(DeviceError):
    """Lua code raised an error or was refused by the sandbox."""


class WasmError(DeviceError):
    """A WebAssembly module trapped, was invalid, or lacked an export/import."""


class LimitExceeded(DeviceError):
    """A sandbox limit (instructions, fuel, memory, time) was exceeded."""

    http_status = 422


class RecursionLimit(AOError):
    """A resolution recursed past the configured depth (HyperBEAM's 508)."""

    http_status = 508


class CacheMiss(AOError):
    """``only-if-cached`` was asked for and the result is not cached (HyperBEAM's 504)."""

    http_status = 504


class StoreError(AOError):
    """The store could not read or write (corrupt file, full disk, I/O error)."""

    http_status = 500


class WalletError(AOError):
    """A wallet (key file or JWK) is missing, unreadable, malformed or readable by others."""

    http_status = 500
