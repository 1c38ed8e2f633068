"""The store interface: a durable tree of values, groups and links addressed by "/"-paths.

A store holds three kinds of node (HyperBEAM's ``hb_store`` model, execution-http.md §7):

* a *value* — bytes (``type(path) == "simple"``);
* a *group* — a directory-like node with children (``"composite"``); writing ``a/b``
  creates the group ``a`` implicitly, ``make_group`` creates an empty one;
* a *link* — ``make_link(existing, new)`` (target first, as HyperBEAM) makes ``new``
  stand for the path ``existing``.  Reads, ``type``, ``list`` and the parent of every
  write follow links segment by segment, so paths can run through them.

Paths are ``"/"``-joined keys (or a list of segments).  Empty segments and segments that
cannot be encoded as UTF-8 are rejected with :class:`~hbeam.errors.InvalidPath`; ``..``
and ``.`` are ordinary keys (each backend escapes its own storage names).

Durability: a write (``write``, ``write_many``, ``commit``, ``make_link``, ``make_group``)
that returned is durable — in an fsync'd commit — unless the store was opened with
``durable=False`` (then it survives a process crash but maybe not a power loss).
``write_many``/``commit`` apply all their operations in one atomic commit: after a crash
either all of them are there or none is.

Backends implement two hooks over a small node-level view (:class:`View`): ``_reading()``
(a consistent read view) and ``_submit(ops)`` (plan with :func:`plan` and commit).  The
rules (link resolution, what may replace what) live here once, so every backend behaves
alike.
"""

from __future__ import annotations

import abc
import atexit
import builtins
import logging
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Literal, NamedTuple, Protocol, TypeAlias, TypeVar, cast

from hbeam.errors import AOError, InvalidPath, StoreError

__all__ = [
    "GROUP",
    "LINK",
    "MAX_LINK_HOPS",
    "MAX_SEGMENT_BYTES",
    "VALUE",
    "Group",
    "GroupCommit",
    "Link",
    "Node",
    "Op",
    "Overlay",
    "Store",
    "View",
    "Write",
    "plan",
    "split_path",
]

_log = logging.getLogger("hbeam.store")

MAX_LINK_HOPS = 1000
"""Links followed while resolving one path before it is declared a loop (HyperBEAM's limit)."""

MAX_SEGMENT_BYTES = 65536
"""Longest path segment, in UTF-8 bytes (the core's ``MAX_KEY_BYTES``)."""

VALUE = "v"
GROUP = "g"
LINK = "l"


class Node(NamedTuple):
    """One stored node: ``kind`` is VALUE (data = the bytes), GROUP (b"") or LINK (target)."""

    kind: str
    data: bytes


_GROUP_NODE = Node(GROUP, b"")
_new_node = tuple.__new__  # Node(kind, data) without the Python-level __new__ (hot loops)


# What a write accepts: bytes, or a bytes-like object stored as its bytes.
BytesLike: TypeAlias = bytes | bytearray | memoryview


class Write(NamedTuple):
    """Operation: store ``data`` at ``path`` (replacing a value or link there)."""

    path: str | Sequence[str]
    data: BytesLike


class Link(NamedTuple):
    """Operation: make ``new`` a link to ``existing`` (target first, as HyperBEAM)."""

    existing: str | Sequence[str]
    new: str | Sequence[str]


class Group(NamedTuple):
    """Operation: make ``path`` an (empty) group unless it already is one."""

    path: str | Sequence[str]


Op: TypeAlias = Write | Link | Group

# A validated operation: (kind, parent segments, name, payload) with payload = data |
# target path | b"".  Consecutive operations under one parent share its tuple.
_Planned: TypeAlias = tuple[str, tuple[str, ...], str, bytes]


def split_path(path: str | Sequence[str], *, allow_root: bool = False) -> tuple[str, ...]:
    """The segments of a store path; ``"a/b"`` and ``["a", "b"]`` both give ``("a", "b")``.

    Raises:
        InvalidPath: an empty segment (``"a//b"``, ``"/a"``), a segment containing ``/``
            in list form, a segment that is not valid Unicode text or longer than
            ``MAX_SEGMENT_BYTES``, or the empty path where the root is not allowed.
    """
    if isinstance(path, str):
        if path:
            # the common case in one pass: a path whose UTF-8 form fits in one segment's
            # limit has no segment over it, and encoding it whole proves every segment is
            # valid text; only empty segments remain to look for
            try:
                fits = (len(path) if path.isascii() else len(path.encode("utf-8"))) <= (
                    MAX_SEGMENT_BYTES
                )
            except UnicodeEncodeError:
                fits = False
            segs = tuple(path.split("/"))
            if fits and "" not in segs:
                return segs
        else:
            segs = ()
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


def _join(segs: Sequence[str]) -> str:
    return "/".join(segs)


class View(Protocol):
    """Node-level access a backend gives the shared rules (one consistent snapshot)."""

    def node(self, key: str) -> Node | None:
        """The node stored at exactly ``key`` (no link following), or None."""
        ...

    def has_children(self, key: str) -> bool:
        """Whether anything is stored below ``key`` (``""`` = the root)."""
        ...

    def children(self, key: str) -> Iterable[str]:
        """The names of the nodes directly below ``key``, any order, no duplicates."""
        ...

    def lookup(self, key: str) -> Node | None:
        """What occupies ``key``: its node, else a group node when something is stored
        below it (an implicit group), else None — ``node`` and ``has_children`` in one."""
        ...


def _lookup(view: View, key: str) -> Node | None:
    """``View.lookup`` from ``node`` and ``has_children`` (for views with nothing faster)."""
    found = view.node(key)
    if found is None and view.has_children(key):
        return _GROUP_NODE
    return found


def _target(link: Node, key: str, where: str) -> tuple[str, ...]:
    """The segments a link node points at; a damaged target is a StoreError."""
    try:
        return split_path(link.data.decode("utf-8"))
    except (UnicodeDecodeError, InvalidPath) as exc:
        raise StoreError(
            f"corrupt link {key!r} in {where}: target {link.data[:80]!r}", path=key
        ) from exc


def _resolve(
    view: View,
    segs: tuple[str, ...],
    original: object,
    where: str,
    *,
    write: bool = False,
    key: str | None = None,
) -> tuple[tuple[str, ...], Node | None]:
    """``segs`` with every link replaced by its target, and the node found there (or None).
    ``key`` is ``segs`` joined, when the caller has it (a path given as text).

    A value in the middle of a path means nothing can be below it: None (or StoreError
    when ``write``).  Nodes only exist below real groups (``plan`` keeps it so), so a
    node found at the literal path needs no prefix walk.
    """
    hops = 0
    while True:
        if key is not None:
            node, key = view.node(key), None
        else:
            node = view.node(_join(segs)) if segs else _GROUP_NODE
        if node is not None and node.kind != LINK:
            return segs, node
        if node is not None:
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise StoreError(
                    f"resolving {original!r} in {where}: more than {MAX_LINK_HOPS} links "
                    "(a link loop)",
                    path=_join(segs),
                )
            segs = _target(node, _join(segs), where)
            continue
        for i in range(1, len(segs)):
            prefix = view.node(_join(segs[:i]))
            if prefix is None or prefix.kind == GROUP:
                continue
            if prefix.kind == LINK:
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise StoreError(
                        f"resolving {original!r} in {where}: more than {MAX_LINK_HOPS} links "
                        "(a link loop)",
                        path=_join(segs),
                    )
                segs = _target(prefix, _join(segs[:i]), where) + segs[i:]
                break
            if write:
                raise StoreError(
                    f"cannot write {original!r} in {where}: {_join(segs[:i])!r} is a value, "
                    "not a group",
                    path=_join(segs),
                )
            return segs, None
        else:
            return segs, None


class Overlay:
    """A view with pending puts on top of another view; ``puts`` is what to commit."""

    __slots__ = ("_base", "dirs", "puts")

    def __init__(self, base: View) -> None:
        self._base = base
        self.puts: dict[str, Node] = {}
        self.dirs: set[str] = set()

    def node(self, key: str) -> Node | None:
        found = self.puts.get(key)
        return found if found is not None else self._base.node(key)

    def has_children(self, key: str) -> bool:
        return key in self.dirs or self._base.has_children(key)

    def lookup(self, key: str) -> Node | None:
        found = self.puts.get(key)
        if found is not None:
            return found
        # a key with puts below it is a group here (no value or link can have children)
        return _GROUP_NODE if key in self.dirs else self._base.lookup(key)

    def children(self, key: str) -> Iterable[str]:
        names = set(self._base.children(key))
        prefix = key + "/" if key else ""
        for put in self.puts:
            if put.startswith(prefix):
                names.add(put[len(prefix) :].split("/", 1)[0])
        return names

    def put(self, key: str, node: Node) -> None:
        self.puts[key] = node
        # ``dirs`` holds every prefix of every put, so a known parent has its prefixes too
        parent = key.rpartition("/")[0]
        if parent and parent not in self.dirs:
            segs = key.split("/")
            self.dirs.update(_join(segs[:i]) for i in range(1, len(segs)))

    def merge(self, other: Overlay) -> None:
        """Adopt ``other``'s puts (``other`` was layered on this overlay)."""
        self.puts.update(other.puts)
        self.dirs |= other.dirs


def _validate_ops(
    ops: Iterable[Op | tuple[str | Sequence[str], BytesLike]], *, pairs: bool = False
) -> list[_Planned]:
    """The operations checked and in planned form.  With ``pairs`` (``write_many``) a plain
    ``(path, data)`` tuple is taken as ``Write(path, data)``."""
    out: list[_Planned] = []
    append = out.append
    head: str | None = None  # the parent of the last short text path, and its segments
    parent: tuple[str, ...] = ()
    for op in ops:
        if (pairs and type(op) is tuple) or isinstance(op, Write):
            path, data = cast("tuple[str | Sequence[str], BytesLike]", op)
            if type(data) is not bytes:
                if not isinstance(data, (bytes, bytearray, memoryview)):
                    raise StoreError(
                        f"store write of {path!r}: data must be bytes, not {type(data).__name__}"
                    )
                data = bytes(data)
            # split_path's common case inline: short ASCII text, parent as the last one's
            if type(path) is str and path.isascii() and len(path) <= MAX_SEGMENT_BYTES:
                up, sep, name = path.rpartition("/")
                if not name:
                    split_path(path)  # raises the error for it
                if not sep:
                    append((VALUE, (), name, data))
                    continue
                if up != head:
                    segs = tuple(up.split("/"))
                    if "" in segs:
                        split_path(path)  # raises the error for it
                    head, parent = up, segs
                append((VALUE, parent, name, data))
                continue
            segs = split_path(path)
            append((VALUE, segs[:-1], segs[-1], data))
        elif isinstance(op, Link):
            target = _join(split_path(op.existing)).encode("utf-8")
            segs = split_path(op.new)
            append((LINK, segs[:-1], segs[-1], target))
        elif isinstance(op, Group):
            segs = split_path(op.path)
            append((GROUP, segs[:-1], segs[-1], b""))
        else:
            raise StoreError(f"unknown store operation {op!r}: expected Write, Link or Group")
    return out


def plan(view: Overlay, ops: Sequence[_Planned], where: str) -> None:
    """Apply validated operations to ``view`` (an overlay), enforcing the tree rules.

    Rules: the parent of the target is resolved through links and must not be a value;
    a value or link may replace a value or link, never a group (explicit or implicit);
    ``make_group`` on an existing group (or a link to one) does nothing, on a value is an
    error.

    Raises:
        StoreError: a rule is broken; names the path and the store.
    """
    # Many writes share a parent (assignments/<pid>/<slot>...): each parent is resolved
    # once, and a cached resolution holds until a link is put, or a value lands on a
    # cached parent (as written or as resolved) or above one.  The last can only happen
    # to a parent resolved through a link: a parent resolved without links has something
    # below it once an operation under it succeeded, so a value there is refused.
    # Runs of operations under one parent share its tuple (see _validate_ops), and the
    # overlay's puts and dirs are used directly: this loop runs once per operation.
    puts, dirs, below = view.puts, view.dirs, view._base.lookup
    parents: dict[tuple[str, ...], tuple[tuple[str, ...], str, str]] = {}
    linked = False  # some cached parent was resolved through a link
    last: tuple[str, ...] | None = None  # the literal parent of the previous operation
    known: tuple[tuple[str, ...], str, str] = ((), "", "")
    for kind, literal, name, payload in ops:
        if literal is not last:
            cached = parents.get(literal)
            if cached is None:
                original = _join((*literal, name))
                parent, parent_node = _resolve(view, literal, original, where, write=True)
                if parent_node is not None and parent_node.kind != GROUP:
                    raise StoreError(
                        f"cannot write {original!r} in {where}: {_join(parent)!r} is a value, "
                        "not a group",
                        path=original,
                    )
                head = _join(parent)
                cached = parents[literal] = (parent, head, head + "/" if parent else "")
                if parent != literal:
                    linked = True
            known, last = cached, literal
        parent, head, prefix = known
        key = prefix + name
        # Overlay.lookup: a key with puts below it is a group (a value or link has none)
        existing = puts.get(key)
        if existing is None:
            existing = _GROUP_NODE if key in dirs else below(key)
        if kind == GROUP:
            if existing is None:
                view.put(key, _GROUP_NODE)
                continue
            if existing.kind == GROUP:
                continue
            if existing.kind == LINK:
                target, target_node = _resolve(
                    view, (*parent, name), _join((*literal, name)), where
                )
                if (target_node is not None and target_node.kind == GROUP) or (
                    target_node is None and view.has_children(_join(target))
                ):
                    continue
            raise StoreError(
                f"cannot make group {_join((*literal, name))!r} in {where}: a "
                f"{'value' if existing.kind == VALUE else 'link'} is there",
                path=key,
            )
        if existing is not None and existing.kind == GROUP:
            what = "write" if kind == VALUE else "link"
            raise StoreError(
                f"cannot {what} {_join((*literal, name))!r} in {where}: it is a group", path=key
            )
        # Overlay.put, knowing the parent: once it is in ``dirs`` so are its prefixes
        puts[key] = _new_node(Node, (kind, payload))
        if head and head not in dirs:
            dirs.add(head)
            dirs.update(iter_prefixes(head))
        if kind != VALUE:
            parents.clear()
            linked, last = False, None
        elif linked:
            written = (*parent, name)
            n = len(written)
            if any(
                (len(p) >= n and p[:n] == written) or (len(r) >= n and r[:n] == written)
                for p, (r, _, _) in parents.items()
            ):
                parents.clear()
                linked, last = False, None


class _Request:
    __slots__ = ("detached", "done", "error", "ops")

    def __init__(self, ops: list[_Planned], detached: bool = False) -> None:
        self.ops = ops
        self.detached = detached
        self.done = False
        self.error: BaseException | None = None


class GroupCommit:
    """Leader/follower group commit: callers that arrive during a commit share the next one.

    ``submit(ops)`` queues the operations; the first caller to find no commit in flight
    becomes the leader, takes the whole queue and runs ``commit(batch)`` for it; the
    others wait.  Each caller returns (or raises its own error) only once the commit that
    holds its operations has finished, so "returned" still means "durable".
    ``commit`` sets ``request.error`` for requests it rejects individually and raises for
    a failure of the whole batch.

    ``submit(ops, wait=False)`` queues without waiting (for caches): a background thread
    commits such requests within ``linger`` seconds, together with anything else queued;
    their failures are logged on the ``hbeam.store`` logger.  ``flush()`` waits for them.
    """

    def __init__(self, commit: _BatchCommit, where: str, *, linger: float = 0.002) -> None:
        self._commit = commit
        self._where = where
        self._linger = linger
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Request] = []
        self._detached = 0
        self._leading = False
        self._closed = False
        self._flusher: threading.Thread | None = None
        _committers.add(self)

    def submit(self, ops: list[_Planned], *, wait: bool = True) -> None:
        """Commit ``ops`` atomically together with whatever else is queued.

        With ``wait`` (the default) block until the commit is durable and raise its error.
        """
        req = _Request(ops, detached=not wait)
        with self._cond:
            if self._closed:
                raise StoreError(f"cannot write to {self._where}: the store is closed")
            self._queue.append(req)
            if not wait:
                self._detached += 1
                if self._flusher is None:
                    self._flusher = threading.Thread(
                        target=self._flush_loop, name=f"hbeam-flush {self._where}", daemon=True
                    )
                    self._flusher.start()
                self._cond.notify_all()
                return
            while not req.done and self._leading:
                self._cond.wait()
            batch = [] if req.done else self._take()
        if batch:
            self._lead(batch)
        if req.error is not None:
            _reraise(req.error, self._where)

    def flush(self) -> None:
        """Wait until everything queued so far (including ``wait=False`` writes) is committed."""
        with self._cond:
            if self._closed or not (self._queue or self._leading):
                return
        self.submit([])

    def _take(self) -> list[_Request]:
        # the caller holds the lock and has seen no leader
        self._leading = True
        batch, self._queue = self._queue, []
        self._detached = 0
        return batch

    def _lead(self, batch: list[_Request]) -> None:
        try:
            self._commit(batch)
        except BaseException as exc:
            for r in batch:
                if r.error is None:
                    r.error = exc
        finally:
            with self._cond:
                for r in batch:
                    r.done = True
                self._leading = False
                self._cond.notify_all()
            for r in batch:
                if r.detached and r.error is not None:
                    _log.error(
                        "a deferred write to %s failed: %s", self._where, r.error, exc_info=r.error
                    )

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not self._detached and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
            time.sleep(self._linger)  # let more writes join this commit
            with self._cond:
                while self._leading and not self._closed:
                    self._cond.wait()
                if self._closed or not self._detached:
                    continue
                batch = self._take()
            self._lead(batch)

    def close(self) -> None:
        """Refuse new writes; commit what is queued and wait for every commit in flight."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while self._leading:
                self._cond.wait()
            batch = self._take() if self._queue else []
            flusher, self._flusher = self._flusher, None
        if batch:
            self._lead(batch)
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()


_committers: weakref.WeakSet[GroupCommit] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Commit deferred (``wait=False``) writes of stores nobody closed before exit."""
    for committer in builtins.list(_committers):
        try:
            committer.flush()
        except Exception:  # pragma: no cover - nothing to report to at exit
            _log.exception("flushing deferred writes at exit failed")


class _BatchCommit(Protocol):
    def __call__(self, batch: list[_Request], /) -> None: ...


def _reraise(error: BaseException, where: str) -> None:
    """Raise ``error`` in this thread: our own errors as a fresh copy, others wrapped."""
    if isinstance(error, AOError):
        fresh = type(error)(error.message, **error.details)
        raise fresh from (error.__cause__ or error)
    if isinstance(error, Exception):
        raise StoreError(f"commit to {where} failed: {error}") from error
    raise error


def plan_batch(view: View, batch: list[_Request], where: str) -> Overlay:
    """Plan each request on top of the ones before it; a request that breaks a rule gets
    its own error and is left out, the rest still commit together."""
    combined = Overlay(view)
    for req in batch:
        req.error = None
        # while nothing is planned yet, layer straight on the store's view (one level less)
        own = Overlay(combined if combined.puts else view)
        try:
            plan(own, req.ops, where)
        except AOError as exc:
            req.error = exc
            continue
        combined.merge(own)
    return combined


_StoreT = TypeVar("_StoreT", bound="Store")


class Store(abc.ABC):
    """A durable tree of values, groups and links (see the module docstring).

    Subclasses provide ``_reading()`` and ``_submit()``; all public methods are here.
    A store is a context manager that closes itself.
    """

    #: where the store lives, for messages (``LMDBStore('/x')``)
    where: str = "store"
    _closed: bool = False

    # -- backend hooks -------------------------------------------------------------------
    @abc.abstractmethod
    def _reading(self) -> AbstractContextManager[View]:
        """A consistent read view for the duration of the ``with`` block."""

    @abc.abstractmethod
    def _submit(self, ops: list[_Planned], wait: bool = True) -> None:
        """Plan ``ops`` (via :func:`plan`) and commit them atomically and durably.

        ``wait=False``: the caller need not wait for the commit (a cache write); it must
        still be committed soon, and before ``flush()`` or ``close()`` return.
        """

    def flush(self) -> None:  # noqa: B027 - optional hook: stores that never defer
        """Wait until every write submitted with ``wait=False`` so far is committed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's resources; later calls raise StoreError.  Idempotent."""

    # -- reading -------------------------------------------------------------------------
    def read(self, path: str | Sequence[str]) -> bytes | None:
        """The bytes at ``path`` (links followed), or None if there is no value there."""
        segs = split_path(path)
        key = path if type(path) is str else None
        with self._reading() as view:
            _, node = _resolve(view, segs, path, self.where, key=key)
        if node is not None and node.kind == VALUE:
            return node.data
        return None

    def read_many(self, paths: Sequence[str]) -> builtins.list[bytes | None]:
        """``[read(p) for p in paths]`` from one consistent view (one read transaction)."""
        out: builtins.list[bytes | None] = []
        with self._reading() as view:
            for path in paths:
                key = path if type(path) is str else None
                _, node = _resolve(view, split_path(path), path, self.where, key=key)
                out.append(node.data if node is not None and node.kind == VALUE else None)
        return out

    def type(self, path: str | Sequence[str]) -> Literal["simple", "composite"] | None:
        """``"simple"`` (a value), ``"composite"`` (a group) or None, after following links."""
        segs = split_path(path, allow_root=True)
        with self._reading() as view:
            resolved, node = _resolve(view, segs, path, self.where)
            if node is None:
                return "composite" if view.has_children(_join(resolved)) else None
        return "simple" if node.kind == VALUE else "composite"

    def list(self, path: str | Sequence[str] = "") -> list[str]:
        """The sorted names of the children of the group at ``path`` ([] if none)."""
        segs = split_path(path, allow_root=True)
        with self._reading() as view:
            resolved, node = _resolve(view, segs, path, self.where)
            if node is not None and node.kind != GROUP:
                return []
            return sorted(view.children(_join(resolved)))

    def resolve(self, path: str | Sequence[str]) -> str:
        """``path`` with every link along it replaced by its target (as far as it exists)."""
        segs = split_path(path)
        with self._reading() as view:
            resolved, _ = _resolve(view, segs, path, self.where)
        return _join(resolved)

    # -- writing -------------------------------------------------------------------------
    def write(self, path: str | Sequence[str], data: BytesLike) -> None:
        """Store ``data`` at ``path``; durable when this returns."""
        self._submit(_validate_ops((Write(path, data),)))

    def write_many(
        self, items: Mapping[str, BytesLike] | Iterable[tuple[str | Sequence[str], BytesLike] | Op]
    ) -> None:
        """Store several values (pairs or operations) in one atomic, durable commit."""
        pairs = items.items() if isinstance(items, Mapping) else items
        ops: list[Op | tuple[str | Sequence[str], BytesLike]] = []
        for item in pairs:
            if type(item) is tuple and len(item) == 2:
                # validated as Write(path, data), without building one
                ops.append(cast("tuple[str | Sequence[str], BytesLike]", item))
            elif isinstance(item, (Write, Link, Group)):
                ops.append(item)
            else:
                path, data = cast("tuple[str | Sequence[str], BytesLike]", item)
                ops.append(Write(path, data))
        planned = _validate_ops(ops, pairs=True)
        if planned:
            self._submit(planned)

    def commit(self, ops: Iterable[Op], *, wait: bool = True) -> None:
        """Apply ``Write``/``Link``/``Group`` operations in one atomic, durable commit.

        ``wait=False`` (for caches) returns at once: the commit happens in the background
        within milliseconds, its failure is only logged, and ``flush()``/``close()`` wait
        for it.  Validation of the paths still happens here.

        Raises:
            InvalidPath: a malformed path (nothing is written).
            StoreError: an operation breaks a tree rule, the store is full or closed, or
                the disk failed (nothing of this commit is written).
        """
        planned = _validate_ops(ops)
        if planned:
            self._submit(planned, wait)

    def make_group(self, path: str | Sequence[str]) -> None:
        """Make ``path`` a group (nothing happens if it already is one)."""
        self._submit(_validate_ops((Group(path),)))

    def make_link(self, existing: str | Sequence[str], new: str | Sequence[str]) -> None:
        """Make ``new`` a link to ``existing`` (target first, as HyperBEAM)."""
        self._submit(_validate_ops((Link(existing, new),)))

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self: _StoreT) -> _StoreT:
        return self

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return self.where

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.where} is closed")


def iter_prefixes(key: str) -> Iterator[str]:
    """``"a/b/c"`` → ``"a"``, ``"a/b"`` (the proper prefixes, shortest first)."""
    segs = key.split("/")
    for i in range(1, len(segs)):
        yield _join(segs[:i])
