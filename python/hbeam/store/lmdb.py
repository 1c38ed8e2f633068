"""LMDBStore: the default store — one LMDB environment per directory, with group commit.

Layout: one key per node, the path's UTF-8 bytes; the value is a kind byte (``v`` value,
``g`` group, ``l`` link) then the payload (data / nothing / target path).  LMDB keys are at
most 511 bytes, so a longer path is stored under its first 478 bytes + ``0xFF`` + a 32-byte
BLAKE2b of the whole path (``0xFF`` never occurs in UTF-8, so the two forms cannot clash);
its value then starts with the upper-case kind byte and carries the full path.  Children
are found by a prefix scan of ``"<path>/"`` (and, for a path past the cut, of the long keys
under its first 478 bytes); what occupies a key — a node, an implicit group or nothing — is
usually one cursor seek (``lookup``), so a commit costs one seek per written key.

Durability: every commit is synced (``sync=True, metasync=True``) unless ``durable=False``.
Concurrent writers share commits (:class:`~hbeam.store.base.GroupCommit`): one fsync
acknowledges everyone who arrived while the previous commit was in flight.

The map grows: on ``MapFullError`` the commit is aborted, the map doubled (``set_mapsize``,
after the readers of this process have left their transactions) and the commit retried,
up to ``max_map_size``; past that the write fails with ``StoreError`` and everything
acknowledged before is intact.

Integrity at open: a damaged header (LMDB's own check), a data file shorter than its
last committed page, or an empty/missing data file in a directory hbeam has used before
→ ``StoreError`` naming the file.  ``verify=True`` also runs py-lmdb's offline structural
verifier over every page first (about 130 MB/s here), which catches damaged pages that
would otherwise only show up — or crash LMDB — when read.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import lmdb

from hbeam.errors import StoreError
from hbeam.store.base import (
    _GROUP_NODE,
    GroupCommit,
    Node,
    Store,
    View,
    _lookup,
    _Planned,
    _Request,
    plan_batch,
)

__all__ = ["DEFAULT_MAP_SIZE", "DEFAULT_MAX_MAP_SIZE", "LMDBStore"]

DEFAULT_MAP_SIZE = 64 << 20
"""Initial map size (64 MiB); it doubles whenever a commit does not fit."""
DEFAULT_MAX_MAP_SIZE = 1 << 40
"""The map never grows past this (1 TiB of address space; the file only holds what is used)."""

_KEY_LIMIT = 511  # LMDB's compiled-in maximum key size
_DIGEST = 32
_CUT = _KEY_LIMIT - 1 - _DIGEST
_LONG = 0xFF
_KINDS = {ord("v"): "v", ord("g"): "g", ord("l"): "l"}
_LONG_KINDS = {ord("V"): "v", ord("G"): "g", ord("L"): "l"}
_KIND_BYTES = {"v": b"v", "g": b"g", "l": b"l"}
_SLASH = ord("/")
_MARKER = "hbeam-store"
_MARKER_TEXT = b"hbeam LMDB store, format 1\n"


def _db_key(path: bytes) -> bytes:
    if len(path) <= _KEY_LIMIT:
        return path
    return path[:_CUT] + b"\xff" + hashlib.blake2b(path, digest_size=_DIGEST).digest()


def _is_long(key: bytes) -> bool:
    return len(key) == _KEY_LIMIT and key[_CUT] == _LONG


def _db_value(path: bytes, node: Node) -> bytes:
    if len(path) <= _KEY_LIMIT:
        return node.kind.encode() + node.data
    return node.kind.upper().encode() + len(path).to_bytes(4, "big") + path + node.data


def _stored_node(raw: bytes, key: str, where: str) -> Node:
    """The node an entry's value holds (its first byte is the kind)."""
    kind = _KINDS.get(raw[0]) if raw else None
    if kind is None:
        raise StoreError(
            f"corrupt entry {key!r} in {where}: unknown kind byte {raw[:1]!r}", path=key
        )
    return Node(kind, raw[1:])


def _long_path(raw: bytes, where: str) -> bytes:
    if len(raw) < 5 or raw[0] not in _LONG_KINDS:
        raise StoreError(f"corrupt entry in {where}: bad long-key record {raw[:16]!r}")
    size = int.from_bytes(raw[1:5], "big")
    return raw[5 : 5 + size]


class _Gate:
    """Many readers or one map resize: ``set_mapsize`` needs every read transaction gone."""

    __slots__ = ("_cond", "_readers", "_resizing")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._resizing = False

    def enter(self) -> None:
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._readers += 1

    def leave(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._resizing and not self._readers:
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._resizing = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._resizing = False
                self._cond.notify_all()


class _TxnView:
    """The node-level view of one LMDB transaction."""

    __slots__ = ("_cur", "_txn", "_where")

    def __init__(self, txn: Any, where: str) -> None:
        self._txn = txn
        self._where = where
        self._cur: Any = None  # one cursor for the point probes, made on first use

    def _cursor(self) -> Any:
        cur = self._cur
        if cur is None:
            cur = self._cur = self._txn.cursor()
        return cur

    def node(self, key: str) -> Node | None:
        path = key.encode("utf-8")
        raw = self._txn.get(_db_key(path))
        if raw is None:
            return None
        if len(path) <= _KEY_LIMIT:
            return _stored_node(raw, key, self._where)
        stored = _long_path(raw, self._where)
        if stored != path:
            return None
        return Node(_LONG_KINDS[raw[0]], raw[5 + len(stored) :])

    def _scan(self, key: str, first_only: bool) -> set[str]:
        base = key.encode("utf-8")
        prefix = base + b"/" if base else b""
        names: set[bytes] = set()
        cur = self._txn.cursor()
        try:
            # children stored under their own path (every one, up to _KEY_LIMIT bytes);
            # with a prefix within the cut, long keys (which keep the path's first _CUT
            # bytes) are in this range too
            found = cur.set_range(prefix) if len(prefix) < _KEY_LIMIT else False
            while found:
                k = cur.key()
                if not k.startswith(prefix):
                    break
                if _is_long(k):
                    full = _long_path(cur.value(), self._where)
                    names.add(full[len(prefix) :].split(b"/", 1)[0])
                    if first_only:
                        break
                    found = cur.next()
                    continue
                name, sep, _ = k[len(prefix) :].partition(b"/")
                names.add(name)
                if first_only:
                    break
                # below `name`: jump past every "<prefix><name>/…" key ('0' follows '/')
                found = cur.set_range(prefix + name + b"0") if sep else cur.next()
            if len(prefix) > _CUT and not (first_only and names):
                # long children: under the cut prefix, each naming its full path
                head = prefix[:_CUT] + b"\xff"
                found = cur.set_range(head)
                while found and cur.key().startswith(head):
                    full = _long_path(cur.value(), self._where)
                    if full.startswith(prefix):
                        names.add(full[len(prefix) :].split(b"/", 1)[0])
                        if first_only:
                            break
                    found = cur.next()
        finally:
            cur.close()
        return {n.decode("utf-8") for n in names}

    def has_children(self, key: str) -> bool:
        prefix = key.encode("utf-8") + b"/" if key else b""
        if len(prefix) > _CUT:
            return bool(self._scan(key, True))
        # a long key keeps its path's first _CUT bytes, so it starts with the prefix too
        cur = self._cursor()
        return bool(cur.set_range(prefix)) and cur.key().startswith(prefix)

    def lookup(self, key: str) -> Node | None:
        path = key.encode("utf-8")
        if len(path) >= _CUT:
            return _lookup(self, key)
        # one seek: the first key at or after ``path`` is ``path`` itself (a node), or
        # "<path>/…" (an implicit group), or a key that leaves no room for "<path>/…"
        # before it — unless it is "<path>" + a byte below "/", which needs a second look
        cur = self._cursor()
        if not cur.set_range(path):
            return None
        found = cur.key()
        if found == path:
            raw = cur.value()
            return _stored_node(raw, key, self._where)
        if found.startswith(path):
            after = found[len(path)]
            if after == _SLASH:
                return _GROUP_NODE
            if after < _SLASH and self.has_children(key):
                return _GROUP_NODE
        return None

    def children(self, key: str) -> Iterable[str]:
        return self._scan(key, False)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Env:
    """One open LMDB environment, shared by every LMDBStore on the same directory."""

    def __init__(
        self,
        directory: str,
        *,
        durable: bool,
        map_size: int,
        max_map_size: int,
        max_readers: int,
        verify: bool,
    ) -> None:
        self.directory = directory
        self.file = os.path.join(directory, "data.mdb")
        self.where = f"LMDBStore({directory!r})"
        self.durable = durable
        self.max_map_size = max(max_map_size, map_size)
        self.refs = 0
        self.gate = _Gate()
        self.env = self._open(map_size, max_readers, verify)
        self.committer = GroupCommit(self._commit, self.where)

    def _open(self, map_size: int, max_readers: int, verify: bool) -> Any:
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the LMDB store directory {self.directory!r}: {exc}"
            ) from exc
        if not os.path.isdir(self.directory):
            raise StoreError(f"LMDB store path {self.directory!r} is not a directory")
        marker = os.path.join(self.directory, _MARKER)
        used_before = os.path.exists(marker)
        try:
            size = os.path.getsize(self.file)
        except FileNotFoundError:
            size = -1
        except OSError as exc:
            raise StoreError(f"cannot stat LMDB data file {self.file!r}: {exc}") from exc
        if used_before and size <= 0:
            raise StoreError(
                f"LMDB data file {self.file!r} is {'missing' if size < 0 else 'empty'} but "
                f"{marker!r} says this store held data: refusing to start an empty store "
                "over it (restore the file, or delete the directory to start afresh)",
                file=self.file,
            )
        if verify and size > 0:
            from lmdb import verify as lmdb_verify

            try:
                problems = lmdb_verify.verify(self.directory)  # type: ignore[no-untyped-call]
            except (lmdb_verify.VerifyError, OSError) as exc:
                raise StoreError(
                    f"LMDB data file {self.file!r} failed verification: {exc}"
                ) from exc
            if problems:
                shown = "; ".join(problems[:3])
                raise StoreError(
                    f"LMDB data file {self.file!r} is corrupt ({len(problems)} problems): {shown}",
                    file=self.file,
                )
        if size > 0:  # room to grow from what is there, so a reopen does not resize at once
            map_size = max(map_size, min(self.max_map_size, 2 * size))
        try:
            env = lmdb.open(
                self.directory,
                map_size=map_size,
                subdir=True,
                sync=self.durable,
                metasync=self.durable,
                max_readers=max_readers,
                max_spare_txns=16,
                lock=True,
            )
        except lmdb.Error as exc:
            raise StoreError(
                f"cannot open LMDB data file {self.file!r} (corrupt, truncated or not an "
                f"LMDB file?): {exc}",
                file=self.file,
            ) from exc
        try:
            env.reader_check()  # free reader slots left by killed processes
            info, psize = env.info(), env.stat()["psize"]
            needed = (info["last_pgno"] + 1) * psize
            actual = os.path.getsize(self.file)
            if actual < needed:
                raise StoreError(
                    f"LMDB data file {self.file!r} is truncated: {actual} bytes, but its "
                    f"last committed page needs {needed}",
                    file=self.file,
                )
            if not used_before:
                env.sync(True)
                tmp = marker + ".tmp"
                with open(tmp, "wb") as fh:
                    fh.write(_MARKER_TEXT)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, marker)
                _fsync_dir(self.directory)
        except BaseException as exc:
            env.close()
            if isinstance(exc, (lmdb.Error, OSError)):
                raise StoreError(f"cannot open LMDB store {self.file!r}: {exc}") from exc
            raise
        return env

    # -- reading -------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[View]:
        txn = self._begin_read()
        try:
            try:
                yield _TxnView(txn, self.where)
            finally:
                txn.abort()
        except lmdb.Error as exc:
            raise StoreError(f"reading {self.file!r} failed: {exc}", file=self.file) from exc
        finally:
            self.gate.leave()

    def _begin_read(self) -> Any:
        """A read transaction, with the gate entered (the caller leaves it)."""
        for attempt in range(2):
            self.gate.enter()
            try:
                return self.env.begin(buffers=False)
            except lmdb.MapResizedError as exc:
                self.gate.leave()
                if attempt:
                    raise StoreError(f"cannot read {self.file!r}: the map keeps changing") from exc
            except lmdb.Error as exc:
                self.gate.leave()
                raise StoreError(f"cannot read {self.file!r}: {exc}", file=self.file) from exc
            self._adopt_size()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- writing -------------------------------------------------------------------------
    def _commit(self, batch: list[_Request]) -> None:
        """Commit every request of ``batch`` in one synced LMDB transaction (the leader runs it)."""
        while True:
            try:
                txn = self.env.begin(write=True)
            except lmdb.MapResizedError:
                self._adopt_size()
                continue
            except lmdb.Error as exc:
                raise StoreError(f"cannot begin a write on {self.file!r}: {exc}") from exc
            puts = 0
            try:
                combined = plan_batch(_TxnView(txn, self.where), batch, self.where)
                puts = len(combined.puts)
                paths = [key.encode("utf-8") for key in combined.puts]
                if paths and max(map(len, paths)) <= _KEY_LIMIT:
                    # every key short: stored as itself, all in one call
                    kinds = _KIND_BYTES
                    txn.cursor().putmulti(
                        zip(
                            paths,
                            [kinds[kind] + data for kind, data in combined.puts.values()],
                            strict=True,
                        )
                    )
                else:
                    for path, node in zip(paths, combined.puts.values(), strict=True):
                        txn.put(_db_key(path), _db_value(path, node))
                txn.commit()
                return
            except lmdb.MapFullError as exc:
                # readers are kept out while aborting: py-lmdb's abort of a write
                # transaction can starve for seconds behind busy reader threads
                with self.gate.exclusive():
                    _abort(txn)
                    self._grow(exc, puts)
            except lmdb.MapResizedError:
                with self.gate.exclusive():
                    _abort(txn)
                    self._set_mapsize(0)
            except lmdb.Error as exc:
                with self.gate.exclusive():
                    _abort(txn)
                raise StoreError(
                    f"committing {puts} writes to {self.file!r} failed: {exc}", file=self.file
                ) from exc
            except BaseException:
                with self.gate.exclusive():
                    _abort(txn)
                raise

    def _grow(self, exc: lmdb.Error, puts: int) -> None:
        """Double the map (the caller holds the gate exclusively), or fail at the maximum."""
        current = self.env.info()["map_size"]
        if current >= self.max_map_size:
            raise StoreError(
                f"{self.file!r} is full: committing {puts} writes needs more than the "
                f"maximum map size of {self.max_map_size} bytes (raise max_map_size); "
                "nothing of this commit was written",
                file=self.file,
            ) from exc
        self._set_mapsize(min(self.max_map_size, max(current * 2, current + (1 << 20))))

    def _set_mapsize(self, size: int) -> None:
        try:
            self.env.set_mapsize(size)
        except lmdb.Error as err:
            raise StoreError(f"cannot resize the map of {self.file!r} to {size}: {err}") from err

    def _adopt_size(self) -> None:
        """Take up a map another process has grown (MapResizedError)."""
        with self.gate.exclusive():
            self._set_mapsize(0)

    def close(self) -> None:
        self.committer.close()
        with self.gate.exclusive():
            try:
                if not self.durable:
                    self.env.sync(True)
            finally:
                self.env.close()


def _abort(txn: Any) -> None:
    try:
        txn.abort()
    except lmdb.Error:  # pragma: no cover - a failed commit already freed it
        pass


_registry: dict[str, _Env] = {}
_registry_lock = threading.Lock()


class LMDBStore(Store):
    """The default store: an LMDB environment in ``path`` (a directory, created if missing).

    Args:
        path: the directory (``data.mdb`` and ``lock.mdb`` live in it).  Stores opened on
            the same directory in one process share one environment (LMDB forbids
            opening it twice); they must agree on ``durable``.
        durable: ``True`` (default): a write returns only after an fsync'd commit.
            ``False``: no fsync — a write survives a crash of this process but maybe not
            of the machine (for benchmarks and caches only).
        map_size: the initial map size in bytes; the map doubles whenever a commit does
            not fit.
        max_map_size: the map never grows past this; a commit that still does not fit
            raises ``StoreError`` and writes nothing.
        max_readers: concurrent read transactions (threads reading at once).
        verify: run the full offline structural check of the data file before opening.

    Raises:
        StoreError: the directory cannot be used, or the data file is corrupt, truncated
            or missing (naming it).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = True,
        map_size: int = DEFAULT_MAP_SIZE,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
        max_readers: int = 1024,
        verify: bool = False,
    ) -> None:
        directory = os.path.realpath(os.fspath(path))
        with _registry_lock:
            env = _registry.get(directory)
            if env is None:
                env = _Env(
                    directory,
                    durable=durable,
                    map_size=map_size,
                    max_map_size=max_map_size,
                    max_readers=max_readers,
                    verify=verify,
                )
                _registry[directory] = env
            elif env.durable != durable:
                raise StoreError(
                    f"{env.where} is already open in this process with durable={env.durable}"
                )
            env.refs += 1
        self._env: _Env | None = env
        self.where = env.where
        self.path = directory
        self.file = env.file
        self.durable = durable

    def _live(self) -> _Env:
        env = self._env
        if env is None:
            raise StoreError(f"{self.where} is closed")
        return env

    def _reading(self) -> Any:
        return self._live().reading()

    def _submit(self, ops: list[_Planned], wait: bool = True) -> None:
        self._live().committer.submit(ops, wait=wait)

    def flush(self) -> None:
        """Wait until every write submitted with ``wait=False`` so far is committed."""
        self._live().committer.flush()

    def sync(self) -> None:
        """Flush to disk now (only useful with ``durable=False``)."""
        env = self._live()
        try:
            env.env.sync(True)
        except lmdb.Error as exc:
            raise StoreError(f"syncing {self.file!r} failed: {exc}") from exc

    def stats(self) -> dict[str, int]:
        """``entries``, ``map_size`` (current) and ``max_map_size`` of the environment."""
        env = self._live()
        try:
            return {
                "entries": env.env.stat()["entries"],
                "map_size": env.env.info()["map_size"],
                "max_map_size": env.max_map_size,
            }
        except lmdb.Error as exc:
            raise StoreError(f"reading the stats of {self.file!r} failed: {exc}") from exc

    def close(self) -> None:
        """Close this handle; the environment closes with its last handle."""
        with _registry_lock:
            env, self._env = self._env, None
            if env is None:
                return
            self._closed = True
            env.refs -= 1
            if env.refs:
                return
            del _registry[env.directory]
            try:
                env.close()
            except lmdb.Error as exc:
                raise StoreError(f"closing {self.file!r} failed: {exc}") from exc
