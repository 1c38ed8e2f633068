"""``Message``: the immutable, sorted, structurally shared mapping at the heart of AO-Core.

Twin of ``rust/src/message.rs``.  A Message wraps a :class:`~hbeam._pure.pmap.PMap` of
normalised ``str`` keys to *stored* values: ``str``, ``bytes``, ``int``, ``float``,
``bool``, ``None``, ``tuple`` (a frozen list) or ``Message``.  Reads hand lists out as
fresh ``list`` objects; everything else is returned as stored.

Nesting is bounded by ``MAX_DEPTH`` (a message is level 1, a map or list inside it level
2, …).  Every Message carries ``_height``, an upper bound of its nesting (exact when
built from input, possibly high after updates that replaced a deep value); the exact
height is recomputed only when the bound would break the limit.  Every walk over stored
values therefore recurses at most ``MAX_DEPTH`` frames deep, one frame per level.

Error texts (contract; ``<where>`` is a key path like ``a/b/2``, cut to its first 8
parts then ``…``, each part cut to 100 characters then ``...``; ``X at key '<where>'``
drops the suffix when the value is the top level):

* ``unsupported value type set at key 'a/b'``
* ``value is not valid UTF-8 at key 'a'`` (a ``str`` holding lone surrogates)
* ``nesting deeper than 200 levels at key 'a/a/a/a/a/a/a/a/…'``
* ``empty key at key 'a'`` / ``empty key`` (top level)
* a key error of :func:`~hbeam._pure.key.normalize_key`, plus `` at key '<map>'`` when the
  offending key sits in a nested map
* ``key 'x' not found`` (:class:`~hbeam.errors.NotFound`)
* ``cannot build a Message from int: 5``, ``element 2 of the Message argument is not a
  (key, value) pair``, ``merge expects a Mapping, got int``, ``empty path``
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from typing import Any

from hbeam._pure.key import (
    MAX_DEPTH,
    MAX_KEY_BYTES,
    describe,
    int_text,
    is_private,
    normalize_key,
    utf8_len,
)
from hbeam._pure.path import parts
from hbeam._pure.pmap import PMap
from hbeam._sentinels import NOT_FOUND, UNDEFINED, UNSET
from hbeam.errors import InvalidMessage, InvalidPath, NotFound

__all__ = ["Message"]

_ABSENT: Any = object()
_WHERE_PARTS = 8
_CLIP_CHARS = 100
_REPR_KEYS = 100


# ---------------------------------------------------------------------------- errors


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP_CHARS else text[:_CLIP_CHARS] + "..."


def _where(where: list[str]) -> str:
    shown = "/".join(_clip(p) for p in where[:_WHERE_PARTS])
    return shown + "/…" if len(where) > _WHERE_PARTS else shown


def _at(text: str, where: list[str]) -> str:
    return f"{text} at key '{_where(where)}'" if where else text


def _too_deep(where: list[str]) -> InvalidMessage:
    return InvalidMessage(_at(f"nesting deeper than {MAX_DEPTH} levels", where))


def _plain_key(key: Any) -> bool:
    """Whether ``key`` is already a normalised key (the common, cheap case)."""
    return type(key) is str and key.isascii() and len(key) <= MAX_KEY_BYTES


def _key(key: Any, where: list[str]) -> str:
    """``normalize_key(key)`` for a key of the map at ``where``; ``""`` is refused."""
    if type(key) is str and key and key.isascii() and len(key) <= MAX_KEY_BYTES:
        return key
    try:
        text = normalize_key(key)
    except InvalidMessage as exc:
        if not where:
            raise
        raise InvalidMessage(_at(exc.message, where)) from None
    if not text:
        raise InvalidMessage(_at("empty key", where))
    return text


# ------------------------------------------------------------------ value conversion


def _convert(value: Any, level: int, where: list[str]) -> tuple[Any, int]:
    """``(stored, height)`` of a Python value sitting at nesting ``level``.

    ``where`` is the key path of the value (mutated and restored while descending).
    Leaves have height 0; a container holding only leaves has height 1.
    """
    cls = value.__class__
    if cls is str:
        if not value.isascii() and utf8_len(value) < 0:
            raise InvalidMessage(_at("value is not valid UTF-8", where))
        return value, 0
    if cls is int or cls is bool or cls is float or cls is bytes or value is None:
        return value, 0
    if cls is Message:
        height = value._height
        if level + height - 1 > MAX_DEPTH:
            height = _exact_height(value)
            if level + height - 1 > MAX_DEPTH:
                raise _too_deep(where)
        return value, height
    if cls is list or cls is tuple or isinstance(value, (list, tuple)):
        if level > MAX_DEPTH:
            raise _too_deep(where)
        out = []
        height = 0
        for i, item in enumerate(value, 1):
            where.append(str(i))
            stored, h = _convert(item, level + 1, where)
            where.pop()
            out.append(stored)
            if h > height:
                height = h
        return tuple(out), height + 1
    if cls is _Pairs or isinstance(value, Mapping):
        if level > MAX_DEPTH:
            raise _too_deep(where)
        found: dict[str, Any] = {}
        height = 0
        for k, v in value.items():
            if k.__class__ is str and k and k.isascii() and len(k) <= MAX_KEY_BYTES:
                text = k
            else:
                text = _key(k, where)
            vcls = v.__class__
            if vcls is int or vcls is float or vcls is bool or vcls is bytes or v is None:
                found[text] = v
            elif vcls is str and v.isascii():
                found[text] = v
            else:
                where.append(text)
                stored, h = _convert(v, level + 1, where)
                where.pop()
                found[text] = stored
                if h > height:
                    height = h
        keys = sorted(found)
        vals = list(map(found.__getitem__, keys))
        # the height is an upper bound: a key that lost a collision may have been taller
        return _new(PMap.from_sorted(keys, vals), height + 1), height + 1
    if isinstance(value, str):
        return _convert(str.__str__(value), level, where)
    if isinstance(value, int):
        return int.__int__(value), 0
    if isinstance(value, float):
        return float.__float__(value), 0
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value), 0
        except (TypeError, ValueError, BufferError):
            pass
    raise InvalidMessage(_at(f"unsupported value type {type(value).__name__}", where))


class _Pairs:
    """Normalised ``(key, value)`` pairs standing for a map under construction."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs

    def items(self) -> list[tuple[str, Any]]:
        return self.pairs


def _exact_height(value: Any) -> int:
    """The exact nesting height of a stored value (caches it on Messages)."""
    cls = value.__class__
    if cls is Message:
        height = 1 + max((_exact_height(v) for v in value._map.values()), default=0)
        value._height = height
        return height
    if cls is tuple:
        return 1 + max((_exact_height(v) for v in value), default=0)
    return 0


def _stored_height(value: Any) -> int:
    cls = value.__class__
    if cls is Message:
        height: int = value._height
        return height
    if cls is tuple:
        return _exact_height(value)
    return 0


def _out(value: Any) -> Any:
    """A stored value as handed to callers: frozen lists become fresh lists."""
    if value.__class__ is tuple:
        return [_out(v) if v.__class__ is tuple else v for v in value]
    return value


def _new(pm: PMap, height: int) -> Message:
    msg = object.__new__(Message)
    msg._map = pm
    msg._height = height
    msg._id = None
    return msg


def _numbered(items: tuple[Any, ...]) -> Message:
    """A stored list as the Message ``{"1": …, "2": …}``."""
    found = {str(i): v for i, v in enumerate(items, 1)}
    return _new(PMap.from_dict(found), _exact_height(items))


def _as_level(value: Any) -> Message | None:
    """An existing value as a Message level to descend into (lists numbered), or None."""
    if value.__class__ is Message:
        msg: Message = value
        return msg
    if value.__class__ is tuple:
        return _numbered(value)
    return None


def to_stored(value: Any) -> Any:
    """``value`` converted and validated as a top-level stored value."""
    return _convert(value, 1, [])[0]


# ---------------------------------------------------------------------- case folding

_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _next_variant(prefix: str, upper: str, lower: str) -> str | None:
    """The smallest case variant greater than every string starting with ``prefix``
    (a variant prefix): flip the last upper-case letter to lower case, rest upper."""
    for j in range(len(prefix) - 1, -1, -1):
        if prefix[j] == upper[j] and upper[j] != lower[j]:
            return prefix[:j] + lower[j] + upper[j + 1 :]
    return None


def fold_find(pm: PMap, key: str) -> str | None:
    """The first key of ``pm`` (sorted order) equal to ``key`` under ASCII case folding.

    Every case variant of ``key`` lies between its all-upper and all-lower forms, so
    this skips through that range with ``ceiling`` lookups: O(log n) a probe, and a
    probe only when a present key sits between two variants.
    """
    upper = key.translate(_UPPER)
    lower = key.translate(_LOWER)
    if upper == lower:
        return None
    n = len(key)
    lo: str | None = upper
    while lo is not None:
        c = pm.ceiling(lo)
        if c is None or c > lower:
            return None
        m = min(len(c), n)
        i = 0
        while i < m and (c[i] == upper[i] or c[i] == lower[i]):
            i += 1
        if i == m:
            if len(c) == n:
                return c
            if len(c) > n:
                lo = _next_variant(c[:n], upper, lower)
            else:
                lo = c + upper[len(c) :]
        elif c[i] < upper[i]:
            lo = c[:i] + upper[i:]
        elif c[i] < lower[i]:
            lo = c[:i] + lower[i] + upper[i + 1 :]
        else:
            lo = _next_variant(c[:i], upper, lower)
    return None


def _list_index(part: str, size: int) -> int:
    """0-based index named by ``"1"…"N"``, or -1."""
    if not part or len(part) > 18 or part[0] == "0" or not (part.isascii() and part.isdigit()):
        return -1
    i = int(part)
    return i - 1 if i <= size else -1


# --------------------------------------------------------------- set, remove, merge


def _set_in(msg: Message, ps: list[str], i: int, stored: Any, height: int) -> Message:
    key = ps[i]
    if i == len(ps) - 1:
        pm = msg._map.set(key, stored)
        return msg if pm is msg._map else _new(pm, max(msg._height, height + 1))
    sub = _as_level(msg._map.get(key, _ABSENT)) or _EMPTY
    child = _set_in(sub, ps, i + 1, stored, height)
    return _new(msg._map.set(key, child), max(msg._height, child._height + 1))


def _remove_in(msg: Message, ps: list[str], i: int) -> Message:
    """``msg`` without the key at ``ps[i:]``; ``msg`` itself when there is none."""
    key = ps[i]
    if i == len(ps) - 1:
        pm = msg._map.delete(key)
        return msg if pm is msg._map else _new(pm, msg._height)
    sub = _as_level(msg._map.get(key, _ABSENT))
    if sub is None:
        return msg
    child = _remove_in(sub, ps, i + 1)
    if child is sub:
        return msg
    return _new(msg._map.set(key, child), msg._height)


def _merge_path(
    msg: Message, ps: list[str], i: int, value: Any, level: int, where: list[str]
) -> Message:
    """``msg`` (at ``level``) with ``value`` merged at ``ps[i:]``, creating levels."""
    if level > MAX_DEPTH:
        raise _too_deep(where)
    key = ps[i]
    where.append(key)
    existing = msg._map.get(key, _ABSENT)
    if i < len(ps) - 1:
        stored = _merge_path(_as_level(existing) or _EMPTY, ps, i + 1, value, level + 1, where)
        height = stored._height
    elif isinstance(value, Mapping):
        if level + 1 > MAX_DEPTH:
            raise _too_deep(where)
        base = existing if existing.__class__ is Message else _EMPTY
        stored = _merge(base, value, level + 1, where)
        height = stored._height
    else:
        stored, height = _convert(value, level + 1, where)
    where.pop()
    return _new(msg._map.set(key, stored), max(msg._height, height + 1))


def _merge(msg: Message, updates: Mapping[Any, Any], level: int, where: list[str]) -> Message:
    """HyperBEAM's deep merge of ``updates`` into ``msg`` (which sits at ``level``).

    For each ``(key, value)`` in order: ``UNDEFINED`` is skipped; a key holding ``/`` is
    a path; ``UNSET`` deletes; a Mapping merges into an existing Message (else into an
    empty one); anything else replaces.  One recursion frame per nesting level.
    """
    draft = msg._map.transient()
    height = msg._height
    for k, v in updates.items():
        text = _key(k, where)
        if v is UNDEFINED:
            continue
        if "/" in text:
            ps = parts(text)
            if not ps:
                raise InvalidPath("empty path")
        else:
            ps = [text]
        first = ps[0]
        existing = draft.get(first, _ABSENT)
        if v is UNSET:
            if len(ps) == 1:
                draft.delete(first)
                continue
            sub = _as_level(existing)
            if sub is None:
                continue
            stored = _remove_in(sub, ps, 1)
            if stored is not sub:
                draft.set(first, stored)
            continue
        where.append(first)
        if len(ps) > 1:
            if level + 1 > MAX_DEPTH:
                raise _too_deep(where)
            stored = _merge_path(_as_level(existing) or _EMPTY, ps, 1, v, level + 1, where)
            h = stored._height
        elif isinstance(v, Mapping):
            if level + 1 > MAX_DEPTH:
                raise _too_deep(where)
            base = existing if existing.__class__ is Message else _EMPTY
            stored = _merge(base, v, level + 1, where)
            h = stored._height
        else:
            stored, h = _convert(v, level + 1, where)
        where.pop()
        draft.set(first, stored)
        if h + 1 > height:
            height = h + 1
    pm = draft.persistent()
    if pm._root is msg._map._root:
        return msg
    return _new(pm, height)


# ------------------------------------------------------------- equality, repr, dicts


def _public(key: str) -> bool:
    return not ((key[:1] == "p" or key[:1] == "P") and is_private(key))


def _eq(mine: Any, other: Any) -> bool:
    """Typed equality of a stored value with any value, on public content.

    ``bool``, ``int``, ``float``, ``str``, ``bytes`` and ``None`` are distinct types;
    lists compare element-wise (with lists or tuples), maps key by key (with any
    Mapping, its keys normalised; private keys ignored on both sides).
    """
    cls = mine.__class__
    if cls is Message:
        if not isinstance(other, Mapping):
            return False
        if other.__class__ is Message:
            ours = [(k, v) for k, v in mine._map.items() if _public(k)]
            theirs_items = [(k, v) for k, v in other._map.items() if _public(k)]
            if len(ours) != len(theirs_items):
                return False
            for (k1, v1), (k2, v2) in zip(ours, theirs_items, strict=True):
                if k1 != k2:
                    return False
                cls = v1.__class__
                if cls is v2.__class__ and cls is not Message and cls is not tuple:
                    if v1 != v2:
                        return False
                elif not _eq(v1, v2):
                    return False
            return True
        theirs: dict[str, Any] = {}
        try:
            for k, v in other.items():
                text = k if _plain_key(k) else normalize_key(k)
                if _public(text):
                    theirs[text] = v
        except InvalidMessage:
            return False
        count = 0
        for k, v in mine._map.items():
            if _public(k):
                w = theirs.get(k, _ABSENT)
                if w is _ABSENT:
                    return False
                cls = v.__class__
                if cls is w.__class__ and cls is not Message and cls is not tuple:
                    if v != w:
                        return False
                elif not _eq(v, w):
                    return False
                count += 1
        return count == len(theirs)
    if cls is tuple:
        if not isinstance(other, (list, tuple)) or len(mine) != len(other):
            return False
        for a, b in zip(mine, other, strict=True):
            if not _eq(a, b):
                return False
        return True
    if cls is str:
        return isinstance(other, str) and mine == other
    if cls is bytes:
        return isinstance(other, (bytes, bytearray, memoryview)) and mine == other
    if cls is bool:
        return isinstance(other, bool) and mine == other
    if cls is int:
        return isinstance(other, int) and not isinstance(other, bool) and mine == other
    if cls is float:
        return isinstance(other, float) and mine == other
    return other is None


def _repr(value: Any) -> str:
    cls = value.__class__
    shown: list[str] = []
    if cls is Message:
        for k, v in value._map.items():
            shown.append(f"{k!r}: {_repr(v)}")
        return "{" + ", ".join(shown) + "}"
    if cls is tuple:
        for v in value:
            shown.append(_repr(v))
        return "[" + ", ".join(shown) + "]"
    if cls is int:
        return int_text(value)
    return repr(value)


def _plain(value: Any) -> Any:
    cls = value.__class__
    if cls is Message:
        result: dict[str, Any] = {}
        for k, v in value._map.items():
            result[k] = _plain(v) if v.__class__ is Message or v.__class__ is tuple else v
        return result
    if cls is tuple:
        items: list[Any] = []
        for v in value:
            items.append(_plain(v) if v.__class__ is Message or v.__class__ is tuple else v)
        return items
    return value


class _Values(ValuesView[Any]):
    __slots__ = ()
    _mapping: Message

    def __iter__(self) -> Iterator[Any]:
        for v in self._mapping._map.values():
            yield _out(v)


class _Items(ItemsView[str, Any]):
    __slots__ = ()
    _mapping: Message

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for k, v in self._mapping._map.items():
            yield k, _out(v)


# ------------------------------------------------------------------------ Message


class Message(Mapping[str, Any]):
    """An immutable AO-Core message: a sorted ``Mapping[str, Value]`` over a persistent map.

    Updating k keys of an n-key message (``set``/``merge``/``remove``) costs O(k log n)
    and shares structure with the original.  ``==`` is typed equality on public content
    against any Mapping; ``hash`` derives from the message ID.

    >>> m = Message({"a": {"b": 1}}).set("a/c", [1, "x"])
    >>> m
    Message({'a': {'b': 1, 'c': [1, 'x']}})
    >>> m.get_path("A/c/2")
    'x'
    """

    __slots__ = ("_height", "_id", "_map")

    _map: PMap
    _height: int
    _id: str | None

    def __new__(cls, mapping: Any = None, /, **kw: Any) -> Message:
        source: Any
        if mapping.__class__ is Message and not kw:
            same: Message = mapping  # immutable: no copy needed
            return same
        if isinstance(mapping, Mapping) and not kw:
            source = mapping
        else:
            pairs: list[tuple[Any, Any]] = []
            if isinstance(mapping, Mapping):
                pairs.extend(mapping.items())
            elif mapping is not None:
                try:
                    items = iter(mapping)
                except TypeError:
                    raise InvalidMessage(
                        f"cannot build a Message from {type(mapping).__name__}: {describe(mapping)}"
                    ) from None
                for i, pair in enumerate(items, 1):
                    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                        raise InvalidMessage(
                            f"element {i} of the Message argument is not a (key, value) pair"
                        )
                    pairs.append((pair[0], pair[1]))
            pairs.extend(kw.items())
            source = _Pairs(pairs)
        msg: Message = _convert(source, 1, [])[0]
        return msg

    # -- Mapping -------------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        text = key if _plain_key(key) else normalize_key(key)
        value = self._map.get(text, _ABSENT)
        if value is _ABSENT:
            raise NotFound(f"key '{_clip(text)}' not found")
        return _out(value)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key`` (normalised, exact match), or ``default``."""
        text = key if _plain_key(key) else normalize_key(key)
        value = self._map.get(text, _ABSENT)
        return default if value is _ABSENT else _out(value)

    def __contains__(self, key: object) -> bool:
        text = key if _plain_key(key) else normalize_key(key)
        return text in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def values(self) -> ValuesView[Any]:
        """The values in key order (lists as fresh lists)."""
        return _Values(self)

    def items(self) -> ItemsView[str, Any]:
        """``(key, value)`` pairs in key order (lists as fresh lists)."""
        return _Items(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return _eq(self, other)

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return not _eq(self, other)

    def __hash__(self) -> int:
        from hbeam._pure.hashpath import id as message_id

        return hash(message_id(self))

    def __repr__(self) -> str:
        shown = []
        for n, (k, v) in enumerate(self._map.items()):
            if n == _REPR_KEYS:
                shown.append("...")
                break
            shown.append(f"{k!r}: {_repr(v)}")
        return "Message({" + ", ".join(shown) + "})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Message, (self.to_dict(),))

    # -- AO-Core operations --------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain nested ``dict``s (keys sorted) and ``list``s, private keys included."""
        result: dict[str, Any] = _plain(self)
        return result

    def public_keys(self) -> list[str]:
        """The sorted top-level keys that are not private."""
        return [k for k in self._map if _public(k)]

    def get_path(self, path: Any, default: Any = NOT_FOUND) -> Any:
        """The value at ``path``, or ``default``: each part an exact key, else the first
        key equal under ASCII case folding; lists are indexed ``"1"…"N"``. Raw: private
        keys are reachable. ``[]``/``"/"`` → this message.

        Raises:
            InvalidPath: ``path`` is not a path.
        """
        current: Any = self
        for part in parts(path):
            cls = current.__class__
            if cls is Message:
                pm = current._map
                value = pm.get(part, _ABSENT)
                if value is _ABSENT:
                    folded = fold_find(pm, part)
                    if folded is None:
                        return default
                    value = pm.get(folded)
                current = value
            elif cls is tuple:
                i = _list_index(part, len(current))
                if i < 0:
                    return default
                current = current[i]
            else:
                return default
        return _out(current)

    def set(self, path: Any, value: Any) -> Message:
        """A message with ``value`` at ``path`` (levels created; the last key replaced).

        ``UNSET`` removes the key at ``path``; ``UNDEFINED`` changes nothing.

        Raises:
            InvalidPath: ``path`` is empty or not a path.
            InvalidMessage: ``value`` is unsupported or nests too deep.
        """
        ps = parts(path)
        if not ps:
            raise InvalidPath("empty path")
        if value is UNSET:
            return _remove_in(self, ps, 0)
        if value is UNDEFINED:
            return self
        if len(ps) > MAX_DEPTH:
            raise _too_deep(ps[:MAX_DEPTH])
        stored, height = _convert(value, len(ps) + 1, list(ps))
        return _set_in(self, ps, 0, stored, height)

    def merge(self, updates: Mapping[Any, Any]) -> Message:
        """HyperBEAM's deep merge: ``/`` keys are paths, maps merge into maps key by key,
        other values replace, ``UNSET`` deletes, ``UNDEFINED`` is skipped.

        Raises:
            InvalidMessage: ``updates`` is not a Mapping or holds a bad key or value.
            InvalidPath: a key is a path with no parts (``"/"``).
        """
        if not isinstance(updates, Mapping):
            raise InvalidMessage(f"merge expects a Mapping, got {type(updates).__name__}")
        return _merge(self, updates, 1, [])

    def remove(self, key_or_keys: Any) -> Message:
        """A message without the given key(s); ``"a/b"`` removes a nested key; missing
        keys are ignored. A list/tuple names several keys.

        Raises:
            InvalidMessage: a key of an unsupported type.
        """
        keys = key_or_keys if isinstance(key_or_keys, (list, tuple)) else (key_or_keys,)
        result = self
        draft = None
        for key in keys:
            text = normalize_key(key)
            ps = parts(text) if "/" in text else [text]
            if not ps:
                continue
            if draft is None:
                draft = result._map.transient()
            if len(ps) == 1:
                draft.delete(ps[0])
                continue
            sub = _as_level(draft.get(ps[0], _ABSENT))
            if sub is None:
                continue
            child = _remove_in(sub, ps, 1)
            if child is not sub:
                draft.set(ps[0], child)
        if draft is None:
            return self
        pm = draft.persistent()
        return self if pm._root is self._map._root else _new(pm, self._height)


_EMPTY = Message()
