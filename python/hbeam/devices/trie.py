"""``trie@1.0`` — a radix trie stored in nested messages, for large key → value tables.

Every key of a trie message is read through the trie (``info.default`` is :func:`get`):
``hbeam.get("balances/A", state)`` walks the edges of ``balances``.  A node's edges are
its keys other than ``node-value``, ``device``, ``commitments``, ``priv``, ``hashpath``;
an edge holds a sub-node (a message) or, as an *implicit leaf*, the value itself; a
node's own value is under ``node-value``.  Keys are compared character by character
(HyperBEAM compares bytes; for ASCII keys — IDs, addresses — the two agree, and a
character split never cuts a UTF-8 sequence).  A value that is itself a message is stored
as the ``node-value`` of a node, so it is never mistaken for a sub-node.

Inserting ``car 31337, card 90210, cardano 666, carmex 8675309, camshaft 777, zebra 0``
in any order gives ``{device: trie@1.0, zebra: 0, ca: {mshaft: 777, r: {node-value: 31337,
mex: 8675309, d: {node-value: 90210, ano: 666}}}}`` (core.md §10).

Keys: ``get`` (request ``key``; any other key K is ``get`` of K), ``set`` (insert every
request key but ``path``; ``UNSET`` deletes), ``keys`` (every stored key, in trie order).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from hbeam import _core
from hbeam._sentinels import NOT_FOUND, UNDEFINED, UNSET
from hbeam.errors import InvalidMessage

__all__ = ["get", "info", "keys", "set"]

NODE_VALUE: Final = "node-value"
NOT_EDGES: Final = frozenset({NODE_VALUE, "device", "commitments", "priv", "hashpath"})


def _is_edge(key: str) -> bool:
    return key not in NOT_EDGES and not _core.impl.is_private(key)


def _find(node: Mapping[str, Any], key: str) -> tuple[str, Any] | None:
    """The edge of ``node`` that is a prefix of ``key`` (at most one exists)."""
    for end in range(1, len(key) + 1):
        edge = key[:end]
        if edge in node and _is_edge(edge):
            return edge, node[edge]
    return None


def lookup(node: Mapping[str, Any], key: str) -> Any:
    """The value stored at ``key`` in the trie rooted at ``node``, else ``NOT_FOUND``."""
    while key:
        hit = _find(node, key)
        if hit is None:
            return NOT_FOUND
        edge, child = hit
        rest = key[len(edge) :]
        if not rest:
            if isinstance(child, Mapping):
                return child.get(NODE_VALUE, NOT_FOUND)
            return child
        if not isinstance(child, Mapping):
            return NOT_FOUND
        node, key = child, rest
    return NOT_FOUND


def _get_key(key: str, base: Any, req: Any = None, opts: Any = None) -> Any:
    return lookup(base, key)


info: Final[dict[str, Any]] = {"default": _get_key}


def get(base: Any, req: Mapping[str, Any]) -> Any:
    """The value stored at the request's ``key``.

    Raises:
        InvalidMessage: the request has no ``key``.
    """
    key = req.get("key")
    if key is None:
        raise InvalidMessage("trie@1.0 get: the 'key' parameter is required")
    return lookup(base, _core.impl.normalize_key(key))


def _common(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _leaf(value: Any) -> Any:
    M = _core.impl.Message
    return M({NODE_VALUE: value}) if isinstance(value, Mapping) else value


def _insert(node: Any, key: str, value: Any) -> Any:
    M = _core.impl.Message
    hit = _find(node, key)
    if hit is not None:
        edge, child = hit
        rest = key[len(edge) :]
        if not rest:
            if isinstance(child, Mapping):
                return node.set(edge, _as_msg(child).set(NODE_VALUE, value))
            return node.set(edge, _leaf(value))
        if isinstance(child, Mapping):
            return node.set(edge, _insert(_as_msg(child), rest, value))
        return node.set(edge, M({NODE_VALUE: child, rest: _leaf(value)}))
    # an edge sharing a proper prefix with key: split it
    first = key[0]
    for edge in node:
        if edge[:1] != first or not _is_edge(edge):
            continue
        shared = _common(edge, key)
        if shared == 0:
            continue
        child = node[edge]
        prefix = key[:shared]
        split: dict[str, Any] = {edge[shared:]: child}
        if shared == len(key):
            split[NODE_VALUE] = value
        else:
            split[key[shared:]] = _leaf(value)
        return node.remove(edge).set(prefix, M(split))
    if key in NOT_EDGES or _core.impl.is_private(key):
        raise InvalidMessage(f"trie@1.0: key {key!r} collides with a reserved key of a node")
    return node.set(key, _leaf(value))


def _delete(node: Any, key: str) -> Any:
    hit = _find(node, key)
    if hit is None:
        return node
    edge, child = hit
    rest = key[len(edge) :]
    if not rest:
        if isinstance(child, Mapping):
            return node.set(edge, _as_msg(child).remove(NODE_VALUE))
        return node.remove(edge)
    if isinstance(child, Mapping):
        return node.set(edge, _delete(_as_msg(child), rest))
    return node


def _as_msg(value: Mapping[str, Any]) -> Any:
    M = _core.impl.Message
    return value if type(value) is M else M(value)


def set(base: Any, req: Mapping[str, Any]) -> Any:
    """The trie with every request key but ``path`` inserted (``UNSET`` deletes it).

    Raises:
        InvalidMessage: a key equals a node's reserved key (``node-value``, ``device``…).
    """
    node = _as_msg(base)
    for k, v in req.items():
        if k == "path" or v is UNDEFINED:
            continue
        key = k if isinstance(k, str) else _core.impl.normalize_key(k)
        if not key:
            continue
        node = _delete(node, key) if v is UNSET else _insert(node, key, v)
    return node


def _walk(node: Mapping[str, Any], prefix: str) -> Iterator[str]:
    for edge, child in node.items():
        if not _is_edge(edge):
            continue
        if isinstance(child, Mapping):
            if NODE_VALUE in child:
                yield prefix + edge
            yield from _walk(child, prefix + edge)
        else:
            yield prefix + edge


def keys(base: Any) -> list[str]:
    """Every key stored in the trie, in trie (sorted edge) order."""
    return list(_walk(base, ""))
