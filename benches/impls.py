"""The implementations the core benchmarks compare: ``IMPLS["native"|"pure"|"baseline"]``.

``native`` and ``pure`` are the two core backends; ``baseline`` does the same jobs with
plain Python: nested ``dict``s copied on every update, ``str`` methods, ``json`` +
``blake3`` for IDs, a ``dict`` for the cache.  Each exposes the same small interface
(:class:`Impl`), so one benchmark body measures all three.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from blake3 import blake3
from hbeam import _core
from hbeam._sentinels import UNDEFINED, UNSET

__all__ = ["IMPLS", "Impl", "available"]


class Impl:
    """One implementation of the hot core operations.

    Benchmarks time the callables :meth:`func` and :meth:`bound` hand out, so the core
    backends are measured through their own functions and methods, with no wrapper call
    in between (a wrapper would cost as much as some of the operations).
    """

    name = "?"

    def func(self, name: str) -> Callable[..., Any]:
        """The implementation of a module-level operation (``normalize_key``, ``id``…)."""
        fn: Callable[..., Any] = getattr(self, name)
        return fn

    def bound(self, msg: Any, name: str) -> Callable[..., Any]:
        """A message operation (``get_path``, ``set``…) bound to ``msg``."""
        return functools.partial(getattr(self, name), msg)

    def message(self, data: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def normalize_key(self, key: Any) -> str:
        raise NotImplementedError

    def parts(self, path: Any) -> list[str]:
        raise NotImplementedError

    def get_path(self, msg: Any, path: Any) -> Any:
        raise NotImplementedError

    def set(self, msg: Any, path: Any, value: Any) -> Any:
        raise NotImplementedError

    def merge(self, msg: Any, updates: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def remove(self, msg: Any, key: Any) -> Any:
        raise NotImplementedError

    def id(self, value: Any) -> str:
        raise NotImplementedError

    def hashpath(self, base: Any, req: Any) -> str:
        raise NotImplementedError

    def cache(self, capacity: int) -> Any:
        raise NotImplementedError


class CoreImpl(Impl):
    """A core backend module (``hbeam._native`` or ``hbeam._pure``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._module: ModuleType | None = None

    @property
    def core(self) -> ModuleType:
        if self._module is None:
            self._module = _core.load(self.name)
        return self._module

    def func(self, name: str) -> Callable[..., Any]:
        attr = {"message": "Message", "cache": "ResultCache"}.get(name, name)
        fn: Callable[..., Any] = getattr(self.core, attr)
        return fn

    def bound(self, msg: Any, name: str) -> Callable[..., Any]:
        method: Callable[..., Any] = getattr(msg, name)
        return method

    def message(self, data: Mapping[str, Any]) -> Any:
        return self.core.Message(data)

    def normalize_key(self, key: Any) -> str:
        result: str = self.core.normalize_key(key)
        return result

    def parts(self, path: Any) -> list[str]:
        result: list[str] = self.core.parts(path)
        return result

    def get_path(self, msg: Any, path: Any) -> Any:
        return msg.get_path(path)

    def set(self, msg: Any, path: Any, value: Any) -> Any:
        return msg.set(path, value)

    def merge(self, msg: Any, updates: Mapping[str, Any]) -> Any:
        return msg.merge(updates)

    def remove(self, msg: Any, key: Any) -> Any:
        return msg.remove(key)

    def id(self, value: Any) -> str:
        result: str = self.core.id(value)
        return result

    def hashpath(self, base: Any, req: Any) -> str:
        result: str = self.core.hashpath(base, req)
        return result

    def cache(self, capacity: int) -> Any:
        return self.core.ResultCache(capacity)


def _b64(digest: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _DictCache:
    """The baseline cache: an ``OrderedDict`` LRU without a lock or counters."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str, default: Any = None) -> Any:
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
        return default

    def put(self, key: str, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


class BaselineImpl(Impl):
    """Plain Python: nested dicts, a full copy of each touched level per update."""

    name = "baseline"

    def message(self, data: Mapping[str, Any]) -> Any:
        return {k: self.message(v) if isinstance(v, Mapping) else v for k, v in data.items()}

    def normalize_key(self, key: Any) -> str:
        if isinstance(key, str):
            return key
        if isinstance(key, bytes):
            return key.decode("utf-8")
        if isinstance(key, (list, tuple)):
            return "/".join(self.normalize_key(k) for k in key)
        return str(key)

    def parts(self, path: Any) -> list[str]:
        if isinstance(path, (list, tuple)):
            return [p for item in path for p in self.parts(item)]
        return [p for p in str(path).split("/") if p]

    def get_path(self, msg: Any, path: Any) -> Any:
        current = msg
        for part in self.parts(path):
            if not isinstance(current, dict) or part not in current:
                return None
            current = current[part]
        return current

    def set(self, msg: Any, path: Any, value: Any) -> Any:
        ps = self.parts(path)
        top = dict(msg)
        level = top
        for part in ps[:-1]:
            child = level.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            level[part] = child
            level = child
        level[ps[-1]] = value
        return top

    def merge(self, msg: Any, updates: Mapping[str, Any]) -> Any:
        out = dict(msg)
        for k, v in updates.items():
            if v is UNSET:
                out.pop(k, None)
            elif v is UNDEFINED:
                continue
            elif isinstance(v, Mapping) and isinstance(out.get(k), dict):
                out[k] = self.merge(out[k], v)
            else:
                out[k] = v
        return out

    def remove(self, msg: Any, key: Any) -> Any:
        out = dict(msg)
        out.pop(key, None)
        return out

    def id(self, value: Any) -> str:
        if isinstance(value, (bytes, str)):
            data = value.encode() if isinstance(value, str) else value
        else:
            data = json.dumps(value, sort_keys=True, default=repr).encode()
        return _b64(blake3(data).digest())

    def hashpath(self, base: Any, req: Any) -> str:
        prev = base["priv"]["hashpath"] if isinstance(base, dict) else str(base)
        p1, _, p2 = prev.partition("/")
        return _b64(blake3((p1 + p2).encode()).digest()) + "/" + self.parts(req)[0]

    def cache(self, capacity: int) -> Any:
        return _DictCache(capacity)


IMPLS: dict[str, Impl] = {
    "native": CoreImpl("native"),
    "pure": CoreImpl("pure"),
    "baseline": BaselineImpl(),
}


def available(name: str) -> bool:
    """Whether ``IMPLS[name]`` can run here (the native core may not be built)."""
    return name != "native" or _core.available("native")
