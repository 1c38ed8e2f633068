"""A persistent (immutable, structurally shared) sorted map: a B+tree with path copying.

Twin of ``rust/src/pmap.rs`` (the idea of ``imbl::OrdMap``).  Keys are ``str`` and sort
by code point, which is UTF-8 byte order.  Costs: ``get``/``set``/``delete``/``ceiling``
O(log n) (path copying: one node per level, each at most ``MAX_WIDTH`` entries);
``len`` O(1); iteration sorted, O(n); :meth:`PMap.from_sorted` O(n).

Leaves hold sorted ``keys`` and their ``vals``; a branch holds ``kids`` and
``keys[i]`` = a separator with every key of ``kids[i]`` < ``keys[i]`` <= every key of
``kids[i + 1]``.  Every node but the root holds between ``MIN_WIDTH`` and ``MAX_WIDTH``
entries (keys in a leaf, kids in a branch).

Batch updates go through :class:`Transient` (Clojure's transients): nodes carry an
``owner`` token; a transient copies a node once, stamps it with its own token, then
mutates it in place until :meth:`Transient.persistent` freezes the result.  Shared nodes
are never mutated, so a k-key batch costs O(k log n), never a copy of n entries.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["MAX_WIDTH", "MIN_WIDTH", "PMap", "Transient"]

MAX_WIDTH = 64
MIN_WIDTH = MAX_WIDTH // 2


class _Leaf:
    __slots__ = ("keys", "owner", "vals")

    def __init__(self, keys: list[str], vals: list[Any], owner: object | None) -> None:
        self.keys = keys
        self.vals = vals
        self.owner = owner


class _Branch:
    __slots__ = ("keys", "kids", "owner")

    def __init__(self, keys: list[str], kids: list[Any], owner: object | None) -> None:
        self.keys = keys
        self.kids = kids
        self.owner = owner


_Node = Any  # _Leaf | _Branch


def _width(node: _Node) -> int:
    return len(node.keys) if node.__class__ is _Leaf else len(node.kids)


def _editable(node: _Node, edit: object | None) -> tuple[_Node, bool]:
    """``node`` itself when the transient ``edit`` owns it, else a private copy."""
    if edit is not None and node.owner is edit:
        return node, True
    if node.__class__ is _Leaf:
        return _Leaf(node.keys.copy(), node.vals.copy(), edit), False
    return _Branch(node.keys.copy(), node.kids.copy(), edit), False


def _split(node: _Node, edit: object | None) -> tuple[_Node, str, _Node]:
    """Halves of an over-full ``node`` and the separator between them."""
    if node.__class__ is _Leaf:
        mid = len(node.keys) // 2
        leaf = _Leaf(node.keys[mid:], node.vals[mid:], edit)
        del node.keys[mid:]
        del node.vals[mid:]
        return node, leaf.keys[0], leaf
    mid = len(node.kids) // 2
    sep = node.keys[mid - 1]
    right = _Branch(node.keys[mid:], node.kids[mid:], edit)
    del node.keys[mid - 1 :]
    del node.kids[mid:]
    return node, sep, right


def _rebalance(parent: _Branch, i: int, edit: object | None) -> None:
    """Fix the under-full ``parent.kids[i]`` by merging it with a neighbour (then
    re-splitting evenly when the union is over-full). ``parent`` must be editable."""
    a = i if i + 1 < len(parent.kids) else i - 1
    left, right = parent.kids[a], parent.kids[a + 1]
    if left.__class__ is _Leaf:
        merged: _Node = _Leaf(left.keys + right.keys, left.vals + right.vals, edit)
    else:
        merged = _Branch([*left.keys, parent.keys[a], *right.keys], left.kids + right.kids, edit)
    if _width(merged) <= MAX_WIDTH:
        parent.kids[a] = merged
        del parent.kids[a + 1]
        del parent.keys[a]
    else:
        new_left, sep, new_right = _split(merged, edit)
        parent.kids[a] = new_left
        parent.kids[a + 1] = new_right
        parent.keys[a] = sep


def _set(root: _Node, key: str, val: Any, edit: object | None) -> tuple[_Node, bool]:
    """``(new_root, added)`` after mapping ``key`` to ``val``; may mutate ``edit``'s nodes."""
    path: list[tuple[_Branch, int]] = []
    node = root
    while node.__class__ is _Branch:
        i = bisect_right(node.keys, key)
        path.append((node, i))
        node = node.kids[i]
    keys = node.keys
    j = bisect_left(keys, key)
    added = not (j < len(keys) and keys[j] == key)
    if not added and node.vals[j] is val:
        return root, False
    child, in_place = _editable(node, edit)
    if added:
        child.keys.insert(j, key)
        child.vals.insert(j, val)
    else:
        child.vals[j] = val
    right: _Node = None
    sep = ""
    if len(child.keys) > MAX_WIDTH:
        child, sep, right = _split(child, edit)
    elif in_place:
        return root, added
    for parent, i in reversed(path):
        new, in_place = _editable(parent, edit)
        new.kids[i] = child
        if right is not None:
            new.kids.insert(i + 1, right)
            new.keys.insert(i, sep)
            right = None
            if len(new.kids) > MAX_WIDTH:
                new, sep, right = _split(new, edit)
            elif in_place:
                return root, added
        elif in_place:
            return root, added
        child = new
    if right is not None:
        child = _Branch([sep], [child, right], edit)
    return child, added


def _delete(root: _Node, key: str, edit: object | None) -> tuple[_Node, bool]:
    """``(new_root, removed)`` after removing ``key``; ``root`` itself when it is absent."""
    path: list[tuple[_Branch, int]] = []
    node = root
    while node.__class__ is _Branch:
        i = bisect_right(node.keys, key)
        path.append((node, i))
        node = node.kids[i]
    j = bisect_left(node.keys, key)
    if not (j < len(node.keys) and node.keys[j] == key):
        return root, False
    child, in_place = _editable(node, edit)
    del child.keys[j]
    del child.vals[j]
    for parent, i in reversed(path):
        if in_place and _width(child) >= MIN_WIDTH:
            return root, True
        new, in_place = _editable(parent, edit)
        new.kids[i] = child
        if _width(child) < MIN_WIDTH:
            _rebalance(new, i, edit)
        child = new
    if in_place and not path:
        return root, True
    while child.__class__ is _Branch and len(child.kids) == 1:
        child = child.kids[0]
    return child, True


def _lookup(root: _Node, key: str, default: Any) -> Any:
    node = root
    while node.__class__ is _Branch:
        node = node.kids[bisect_right(node.keys, key)]
    keys = node.keys
    j = bisect_left(keys, key)
    if j < len(keys) and keys[j] == key:
        return node.vals[j]
    return default


def _leaves(root: _Node) -> Iterator[_Leaf]:
    if root.__class__ is _Leaf:
        yield root
        return
    stack = [iter(root.kids)]
    while stack:
        for kid in stack[-1]:
            if kid.__class__ is _Leaf:
                yield kid
            else:
                stack.append(iter(kid.kids))
                break
        else:
            stack.pop()


def _build(keys: list[str], vals: list[Any]) -> _Node:
    """A tree over strictly ascending ``keys`` in O(n): even chunks, level by level."""
    n = len(keys)
    if n <= MAX_WIDTH:
        return _Leaf(list(keys), list(vals), None)
    count = -(-n // MAX_WIDTH)
    level: list[_Node] = []
    mins: list[str] = []
    for c in range(count):
        lo, hi = c * n // count, (c + 1) * n // count
        level.append(_Leaf(keys[lo:hi], vals[lo:hi], None))
        mins.append(keys[lo])
    while len(level) > 1:
        n = len(level)
        count = -(-n // MAX_WIDTH)
        upper: list[_Node] = []
        upper_mins: list[str] = []
        for c in range(count):
            lo, hi = c * n // count, (c + 1) * n // count
            upper.append(_Branch(mins[lo + 1 : hi], level[lo:hi], None))
            upper_mins.append(mins[lo])
        level, mins = upper, upper_mins
    return level[0]


class PMap:
    """An immutable sorted ``str`` → value map; updates return new maps sharing structure."""

    __slots__ = ("_len", "_root")

    _root: _Node
    _len: int

    def __init__(self) -> None:
        self._root = _Leaf([], [], None)
        self._len = 0

    @classmethod
    def _make(cls, root: _Node, length: int) -> PMap:
        pm = object.__new__(cls)
        pm._root = root
        pm._len = length
        return pm

    @classmethod
    def from_sorted(cls, keys: list[str], vals: list[Any]) -> PMap:
        """A map of strictly ascending ``keys`` to ``vals``, built in O(n)."""
        return cls._make(_build(keys, vals), len(keys))

    @classmethod
    def from_dict(cls, items: dict[str, Any]) -> PMap:
        """A map holding ``items`` (sorted here: O(n log n), O(n) when already sorted)."""
        keys = sorted(items)
        return cls._make(_build(keys, [items[k] for k in keys]), len(keys))

    def __len__(self) -> int:
        return self._len

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and _lookup(self._root, key, _ABSENT) is not _ABSENT

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``. O(log n)."""
        return _lookup(self._root, key, default)

    def set(self, key: str, val: Any) -> PMap:
        """A map with ``key`` → ``val`` (this one when ``val`` is already there). O(log n)."""
        root, added = _set(self._root, key, val, None)
        if root is self._root:
            return self
        return PMap._make(root, self._len + added)

    def delete(self, key: str) -> PMap:
        """A map without ``key`` (this one when ``key`` is absent). O(log n)."""
        root, removed = _delete(self._root, key, None)
        if not removed:
            return self
        return PMap._make(root, self._len - 1)

    def ceiling(self, key: str) -> str | None:
        """The smallest key >= ``key``, or ``None``. O(log n)."""
        node = self._root
        after: _Node = None  # the subtree just right of the descent path
        while node.__class__ is _Branch:
            i = bisect_right(node.keys, key)
            if i + 1 < len(node.kids):
                after = node.kids[i + 1]
            node = node.kids[i]
        j = bisect_left(node.keys, key)
        if j < len(node.keys):
            found: str = node.keys[j]
            return found
        if after is None:
            return None
        while after.__class__ is _Branch:
            after = after.kids[0]
        first: str = after.keys[0]
        return first

    def __iter__(self) -> Iterator[str]:
        for leaf in _leaves(self._root):
            yield from leaf.keys

    def keys(self) -> Iterator[str]:
        """Keys in ascending order."""
        return iter(self)

    def values(self) -> Iterator[Any]:
        """Values in key order."""
        for leaf in _leaves(self._root):
            yield from leaf.vals

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` pairs in key order."""
        for leaf in _leaves(self._root):
            yield from zip(leaf.keys, leaf.vals, strict=True)

    def update(self, pairs: Iterable[tuple[str, Any]]) -> PMap:
        """A map with every pair set in turn (one transient batch)."""
        t = self.transient()
        for key, val in pairs:
            t.set(key, val)
        return t.persistent()

    def transient(self) -> Transient:
        """A mutable draft of this map for a batch of updates."""
        return Transient(self)

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"


_ABSENT: Any = object()


class Transient:
    """A private, mutable draft of a :class:`PMap`; :meth:`persistent` freezes it."""

    __slots__ = ("_edit", "_len", "_root")

    def __init__(self, source: PMap) -> None:
        self._root: _Node = source._root
        self._len = source._len
        self._edit: object | None = object()

    def _token(self) -> object:
        if self._edit is None:
            raise RuntimeError("transient used after persistent()")
        return self._edit

    def __len__(self) -> int:
        return self._len

    def get(self, key: str, default: Any = None) -> Any:
        """The current value of ``key``, or ``default``."""
        return _lookup(self._root, key, default)

    def set(self, key: str, val: Any) -> None:
        """Map ``key`` to ``val`` in the draft."""
        self._root, added = _set(self._root, key, val, self._token())
        self._len += added

    def delete(self, key: str) -> None:
        """Remove ``key`` from the draft (nothing when absent)."""
        self._root, removed = _delete(self._root, key, self._token())
        self._len -= removed

    def persistent(self) -> PMap:
        """The draft as an immutable map; the transient is unusable afterwards."""
        self._token()
        self._edit = None
        return PMap._make(self._root, self._len)
