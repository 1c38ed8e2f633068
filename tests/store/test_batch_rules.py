"""The store's batch fast paths refuse exactly what the general tree rules refuse.

``plan`` resolves each parent once per batch, answers "what is at this key" with one
probe (``View.lookup``: one LMDB seek instead of a get and a prefix scan), forgets cached
parents only when a link makes that necessary, and ``split_path`` / ``write_many`` take
the common path shape in one pass.  A reference model below keeps the rules the slow,
obvious way (a node lookup and a children scan per operation, every path split in full);
random batches of writes, links and groups — with invalid paths, odd siblings ("a-",
"a.b"), long keys and links through parents — must give the same errors, word for word,
and the same tree, on every store kind.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from hbeam.errors import InvalidPath, StoreError
from hbeam.store import Group, Link, Store, Write
from hbeam.store.base import GROUP, LINK, MAX_LINK_HOPS, MAX_SEGMENT_BYTES, VALUE, Node, split_path
from hbeam.store.base import _lookup as generic_lookup

# -- the reference model: the tree rules, one node lookup and one scan at a time ---------------


def _ref_split(path: object, *, allow_root: bool = False) -> tuple[str, ...]:
    if isinstance(path, str):
        segs: tuple[str, ...] = tuple(path.split("/")) if path else ()
    elif isinstance(path, (list, tuple)):
        for i, seg in enumerate(path, 1):
            if not isinstance(seg, str):
                raise InvalidPath(
                    f"store path {path!r}: segment {i} is {type(seg).__name__}, expected str"
                )
            if "/" in seg:
                raise InvalidPath(f"store path {path!r}: segment {i} contains '/'")
        segs = tuple(path)
    else:
        raise InvalidPath(
            f"store path must be a str or a list of str, not {type(path).__name__}: {path!r}"
        )
    if not segs and not allow_root:
        raise InvalidPath(f"store path {path!r} is empty")
    for i, seg in enumerate(segs, 1):
        if not seg:
            raise InvalidPath(f"store path {path!r}: empty segment at {i}")
        try:
            size = len(seg.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidPath(f"store path {path!r}: segment {i} is not valid text") from exc
        if size > MAX_SEGMENT_BYTES:
            raise InvalidPath(
                f"store path: segment {i} is {size} bytes (limit {MAX_SEGMENT_BYTES})"
            )
    return segs


class _RefTree:
    """Committed nodes, and pending puts over them (the reference overlay)."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self.base = nodes
        self.puts: dict[str, Node] = {}

    def node(self, key: str) -> Node | None:
        return self.puts.get(key) or self.base.get(key)

    def has_children(self, key: str) -> bool:
        prefix = key + "/" if key else ""
        return any(k.startswith(prefix) for k in (*self.base, *self.puts))

    def children(self, key: str) -> set[str]:
        prefix = key + "/" if key else ""
        return {
            k[len(prefix) :].split("/")[0] for k in (*self.base, *self.puts) if k.startswith(prefix)
        }


def _ref_resolve(
    view: _RefTree, segs: tuple[str, ...], original: object, where: str, *, write: bool = False
) -> tuple[tuple[str, ...], Node | None]:
    hops = 0
    while True:
        node = view.node("/".join(segs)) if segs else Node(GROUP, b"")
        if node is not None and node.kind != LINK:
            return segs, node
        if node is not None:
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise StoreError(
                    f"resolving {original!r} in {where}: more than {MAX_LINK_HOPS} links "
                    "(a link loop)"
                )
            segs = _ref_split(node.data.decode("utf-8"))
            continue
        for i in range(1, len(segs)):
            prefix = view.node("/".join(segs[:i]))
            if prefix is None or prefix.kind == GROUP:
                continue
            if prefix.kind == LINK:
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise StoreError(
                        f"resolving {original!r} in {where}: more than {MAX_LINK_HOPS} links "
                        "(a link loop)"
                    )
                segs = _ref_split(prefix.data.decode("utf-8")) + segs[i:]
                break
            if write:
                raise StoreError(
                    f"cannot write {original!r} in {where}: {'/'.join(segs[:i])!r} is a "
                    "value, not a group"
                )
            return segs, None
        else:
            return segs, None


def _ref_validate(ops: Iterable[Any]) -> list[tuple[str, tuple[str, ...], bytes]]:
    out = []
    for op in ops:
        if isinstance(op, Write):
            if not isinstance(op.data, (bytes, bytearray, memoryview)):
                raise StoreError(
                    f"store write of {op.path!r}: data must be bytes, not {type(op.data).__name__}"
                )
            out.append((VALUE, _ref_split(op.path), bytes(op.data)))
        elif isinstance(op, Link):
            target = "/".join(_ref_split(op.existing))
            out.append((LINK, _ref_split(op.new), target.encode("utf-8")))
        elif isinstance(op, Group):
            out.append((GROUP, _ref_split(op.path), b""))
        else:
            raise StoreError(f"unknown store operation {op!r}: expected Write, Link or Group")
    return out


def _ref_plan(
    view: _RefTree, ops: Sequence[tuple[str, tuple[str, ...], bytes]], where: str
) -> None:
    for kind, segs, payload in ops:
        original = "/".join(segs)
        parent, parent_node = _ref_resolve(view, segs[:-1], original, where, write=True)
        if parent_node is not None and parent_node.kind != GROUP:
            raise StoreError(
                f"cannot write {original!r} in {where}: {'/'.join(parent)!r} is a value, "
                "not a group"
            )
        key = "/".join((*parent, segs[-1]))
        existing = view.node(key)
        if kind == GROUP:
            if existing is None:
                if not view.has_children(key):
                    view.puts[key] = Node(GROUP, b"")
                continue
            if existing.kind == GROUP:
                continue
            if existing.kind == LINK:
                target, target_node = _ref_resolve(view, (*parent, segs[-1]), original, where)
                if (target_node is not None and target_node.kind == GROUP) or (
                    target_node is None and view.has_children("/".join(target))
                ):
                    continue
            raise StoreError(
                f"cannot make group {original!r} in {where}: a "
                f"{'value' if existing.kind == VALUE else 'link'} is there"
            )
        if (existing is not None and existing.kind == GROUP) or (
            existing is None and view.has_children(key)
        ):
            what = "write" if kind == VALUE else "link"
            raise StoreError(f"cannot {what} {original!r} in {where}: it is a group")
        view.puts[key] = Node(kind, payload)


class _RefStore:
    """The reference: a dict of nodes, every commit planned the slow way."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.nodes: dict[str, Node] = {}

    def commit(self, ops: Iterable[Any]) -> None:
        planned = _ref_validate(ops)
        tree = _RefTree(self.nodes)
        _ref_plan(tree, planned, self.where)
        self.nodes.update(tree.puts)

    def write_many(self, items: Iterable[Any]) -> None:
        ops = []
        for item in items:
            if isinstance(item, (Write, Link, Group)):
                ops.append(item)
            else:
                path, data = item
                ops.append(Write(path, data))
        self.commit(ops)

    def _resolved(self, path: object, allow_root: bool = False) -> tuple[str, Node | None]:
        segs, node = _ref_resolve(
            _RefTree(self.nodes), _ref_split(path, allow_root=allow_root), path, self.where
        )
        return "/".join(segs), node

    def read(self, path: str) -> bytes | None:
        _, node = self._resolved(path)
        return node.data if node is not None and node.kind == VALUE else None

    def type(self, path: str) -> str | None:
        key, node = self._resolved(path, allow_root=True)
        if node is None:
            return "composite" if _RefTree(self.nodes).has_children(key) else None
        return "simple" if node.kind == VALUE else "composite"

    def list(self, path: str) -> list[str]:
        key, node = self._resolved(path, allow_root=True)
        if node is not None and node.kind != GROUP:
            return []
        return sorted(_RefTree(self.nodes).children(key))


# -- random batches ------------------------------------------------------------------------------

_LONG = "k" * 237  # two of them and a short name straddle LMDB's 478/511-byte key limits
_SEGMENTS = ["a", "b", "a-", "a.b", "ab", "abc", "1", "10", "é", _LONG]
_BAD_PATHS: list[Any] = ["a//b", "/a", "a/", "", ["a", "b/c"], "a/\ud800", ["a", 3], 7]


def _path(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return "/".join([_LONG, _LONG, rng.choice(_SEGMENTS)][: rng.randint(2, 3)])
    return "/".join(rng.choice(_SEGMENTS) for _ in range(rng.randint(1, 3)))


def _op(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.04:
        return Write(rng.choice(_BAD_PATHS), b"x")
    if roll < 0.06:
        return Write(_path(rng), "not bytes")  # type: ignore[arg-type]
    if roll < 0.65:
        data: list[bytes | bytearray] = [b"", b"v", bytearray(b"ba")]
        return Write(_path(rng), rng.choice(data))
    if roll < 0.85:
        return Link(_path(rng), _path(rng))
    return Group(_path(rng))


def _outcome(action: Callable[..., object], *args: Any, **kwargs: Any) -> tuple[str, str] | None:
    """None when ``action(*args, **kwargs)`` succeeds, else its error's class and text."""
    try:
        action(*args, **kwargs)
    except (StoreError, InvalidPath) as exc:
        return type(exc).__name__, str(exc)
    return None


def _every_path() -> Iterator[str]:
    yield ""
    for a in _SEGMENTS:
        yield a
        for b in _SEGMENTS:
            yield f"{a}/{b}"
            for c in _SEGMENTS:
                yield f"{a}/{b}/{c}"


def _assert_same_tree(store: Store, ref: _RefStore) -> None:
    for path in _every_path():
        if path:
            assert _outcome(store.read, path) == _outcome(ref.read, path), path
            if _outcome(ref.read, path) is None:
                assert store.read(path) == ref.read(path), path
        assert store.type(path) == ref.type(path), path
        assert store.list(path) == ref.list(path), path


@contextmanager
def _view(store: Store) -> Iterator[Any]:
    with store._reading() as view:
        yield view


def _assert_lookups_agree(store: Store, keys: Iterable[str]) -> None:
    """``View.lookup`` (the one-probe path) against node + a full children listing."""
    with _view(store) as view:
        for key in keys:
            node = view.node(key)
            below = bool(list(view.children(key)))
            assert view.has_children(key) == below, key
            want = node if node is not None else (Node(GROUP, b"") if below else None)
            assert view.lookup(key) == want, key
            assert generic_lookup(view, key) == want, key


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_batches_match_the_reference_rules(
    make_store: Callable[..., Store], seed: int
) -> None:
    store = make_store(durable=False)
    ref = _RefStore(store.where)
    rng = random.Random(seed)
    for _ in range(60):
        ops = [_op(rng) for _ in range(rng.randint(1, 8))]
        how = rng.random()
        if how < 0.5:
            got = _outcome(store.commit, ops)
            want = _outcome(ref.commit, ops)
        elif how < 0.8:  # write_many: plain pairs beside operations
            items = [(op.path, op.data) if isinstance(op, Write) else op for op in ops]
            got = _outcome(store.write_many, items)
            want = _outcome(ref.write_many, items)
        else:  # several requests planned in one group commit, each refused on its own
            batches = [ops, [_op(rng) for _ in range(rng.randint(1, 4))]]
            got = want = None
            accepted = []
            for batch in batches:
                if _outcome(_ref_validate, batch) is None:
                    # memory plans at once (and raises); the others plan in the background
                    _outcome(store.commit, batch, wait=False)
                    accepted.append(batch)
            store.flush()
            for batch in accepted:
                _outcome(ref.commit, batch)
        assert got == want, ops
    _assert_same_tree(store, ref)
    _assert_lookups_agree(store, [p for p in _every_path() if p])


def test_a_value_replacing_a_link_on_the_way_to_a_parent_is_seen_in_the_same_batch(
    store: Store,
) -> None:
    store.write("t/old", b"1")
    store.make_link("t", "L")
    with pytest.raises(StoreError, match=r"cannot write 'L/y'.*'L' is a value"):
        store.commit([Write("L/x", b"2"), Write("L", b"v"), Write("L/y", b"3")])
    store.commit([Write("L/x", b"2"), Write("L", b"v")])
    assert store.read("t/x") == b"2" and store.read("L") == b"v"
    with pytest.raises(StoreError, match=r"'L' is a value"):
        store.write("L/y", b"3")


def test_a_link_replaced_in_the_batch_redirects_later_writes(store: Store) -> None:
    store.commit([Write("t/old", b"1"), Write("u/old", b"2"), Link("t", "L")])
    store.commit([Write("L/x", b"3"), Link("u", "L"), Write("L/y", b"4")])
    assert store.read("t/x") == b"3" and store.read("u/y") == b"4"
    assert store.read("t/y") is None and store.list("u") == ["old", "y"]


def test_a_value_cannot_land_on_a_parent_the_batch_filled(store: Store) -> None:
    with pytest.raises(StoreError, match=r"cannot write 'a/b' .*: it is a group"):
        store.commit([Write("a/b/c", b"1"), Write("a/b/d", b"2"), Write("a/b", b"3")])
    with pytest.raises(StoreError, match=r"cannot write 'a' .*: it is a group"):
        store.commit([Write("a/b/c", b"1"), Write("a", b"3")])
    with pytest.raises(StoreError, match=r"cannot link 'a/b' .*: it is a group"):
        store.commit([Write("a/b/c", b"1"), Link("x", "a/b")])
    assert store.list("") == []
    store.commit([Write("a/b/c", b"1"), Group("a/b"), Group("a")])
    assert store.list("a/b") == ["c"]


def test_siblings_that_sort_between_a_key_and_its_children(store: Store) -> None:
    # "a-", "a.b" sort between "a" and "a/..." in LMDB: the one-seek probe must look again
    store.commit([Write("p/a-", b"1"), Write("p/a.b/c", b"2"), Write("p/a!", b"3")])
    store.commit([Write("p/a", b"4")])  # no children: a value may go there
    assert store.read("p/a") == b"4"
    store.commit([Write("q/a-", b"1"), Write("q/a/c", b"2")])
    with pytest.raises(StoreError, match="it is a group"):
        store.write("q/a", b"x")
    store.make_group("q/a")  # already a group
    _assert_lookups_agree(store, ["p/a", "p/a-", "p/a.b", "q/a", "q/a-", "q/", "p", "x"])


def test_keys_at_the_lmdb_key_limits(store: Store) -> None:
    two = f"{_LONG}/{_LONG}"  # 475 bytes
    keys = [f"{two}/{name}" for name in ("a", "ab", "abc", "abcd", "a-")]
    keys += [f"{two}/{'z' * n}" for n in (33, 34, 35, 36)]  # 509..512 bytes
    for key in keys:
        store.write(f"{key}/child", b"c")
    store.write(f"{two}/ab-", b"v")
    for key in keys:
        with pytest.raises(StoreError, match="it is a group"):
            store.write(key, b"x")
    for key in keys:
        store.write(f"{key}x", b"sibling")  # one byte longer: no children
        assert store.read(f"{key}x") == b"sibling"
    probes = [*keys, *(k + "x" for k in keys), *(k + "/child" for k in keys), two, f"{two}/a"]
    _assert_lookups_agree(store, probes)


@pytest.mark.parametrize(
    "path",
    [
        "a/b",
        "a",
        "é/ü/x",
        "a//b",
        "/a",
        "a/",
        "",
        "a/\ud800/b",
        "\udfff",
        "x" * MAX_SEGMENT_BYTES,
        "x" * (MAX_SEGMENT_BYTES + 1),
        "a/" + "x" * (MAX_SEGMENT_BYTES + 1),
        "a/" + "é" * (MAX_SEGMENT_BYTES // 2),
        "a/" + "é" * (MAX_SEGMENT_BYTES // 2 + 1),
        "a/" + "x" * (MAX_SEGMENT_BYTES - 1),
    ],
)
def test_split_path_matches_the_reference(path: str) -> None:
    for allow_root in (False, True):
        got = _outcome(split_path, path, allow_root=allow_root)
        want = _outcome(_ref_split, path, allow_root=allow_root)
        assert got == want
        if want is None:
            assert split_path(path, allow_root=allow_root) == _ref_split(
                path, allow_root=allow_root
            )


@pytest.mark.parametrize(
    "bad",
    ["/a", "/", "a/", "a//b", "", "a/b/", "/a/b", "x/\ud800", "x/" + "y" * (MAX_SEGMENT_BYTES + 1)],
)
@pytest.mark.parametrize("before", [[], ["a"], ["x/b"], ["a", "x/b"], ["/".join("abc")]])
def test_a_bad_path_is_refused_whatever_came_before_it(
    store: Store, bad: str, before: list[str]
) -> None:
    ref = _RefStore(store.where)
    for action in ("write_many", "commit"):
        if action == "write_many":
            items: list[Any] = [(path, b"1") for path in (*before, bad)]
        else:
            items = [Write(path, b"1") for path in (*before, bad)]
        got = _outcome(getattr(store, action), items)
        assert got is not None and got == _outcome(getattr(ref, action), items)
    assert store.list("") == []


def test_write_many_validates_pairs_like_writes(store: Store) -> None:
    class Raw(bytes):
        pass

    store.write_many([("a", Raw(b"sub")), ("b", memoryview(b"mv")), Write("c", bytearray(b"ba"))])
    assert [store.read(k) for k in "abc"] == [b"sub", b"mv", b"ba"]
    assert type(store.read("a")) is bytes
    with pytest.raises(StoreError, match=r"store write of 'd': data must be bytes, not str"):
        store.write_many([("d", "text")])  # type: ignore[list-item]
    with pytest.raises(InvalidPath, match=r"empty segment at 2"):
        store.write_many([("e", b"1"), ("e//f", b"2")])
    with pytest.raises(StoreError, match="unknown store operation"):
        store.commit([("plain", b"pair")])  # type: ignore[list-item]
    assert store.read("d") is None and store.read("e") is None
