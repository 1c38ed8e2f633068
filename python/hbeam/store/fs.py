"""FSStore: the store as a directory tree — groups are directories, values files, links symlinks.

Names: each path segment becomes one file name that cannot leave its directory.  Its
UTF-8 bytes are percent-escaped except ``A-Z a-z 0-9 - _ .``; a leading ``.`` is escaped
too (so ``.``, ``..`` and hidden names never occur), and ``~`` always is.  A name that
would be longer than 200 characters is stored as ``~`` + a BLAKE2b hex digest, with the
real segment in ``.names/<digest>`` next to it.  Names starting with ``.`` are ours
(temporary files, the journal, ``.names``) and never listed.  The escaping assumes a
case-sensitive file system.

Links are symlinks whose target text is ``hbeam:`` + the escaped store path: they point
at nothing the OS can follow, so even a program that follows them cannot leave the
tree; the store resolves them itself and opens files with ``O_NOFOLLOW``.

Durability: a value is written to a temporary file, fsync'd and renamed over its name,
then the directory is fsync'd.  A commit of several operations is first written to a
journal (``.journal``, fsync'd, checksummed), then applied, then the journal is removed;
opening the store replays a journal left by a crash, so a commit is all-or-nothing
across crashes (concurrent readers may see part of it while it is applied).
``durable=False`` skips the fsyncs.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import re
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote_to_bytes

from hbeam.errors import StoreError
from hbeam.store.base import (
    GROUP,
    LINK,
    VALUE,
    GroupCommit,
    Node,
    Store,
    View,
    _Planned,
    _Request,
    plan_batch,
)

__all__ = ["FSStore"]

_PLAIN = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*\Z")
_NAME_LIMIT = 200
_LINK_PREFIX = "hbeam:"
_LINK_LIMIT = 4000
_JOURNAL = ".journal"
_MAGIC = b"HBJ1"
_NAMES = ".names"
_tmp_counter = itertools.count()


def _quote(seg: str) -> str:
    if _PLAIN.match(seg):
        return seg
    text = quote(seg, safe="", errors="strict").replace("~", "%7E")
    if text.startswith("."):
        text = "%2E" + text[1:]
    return text


def _escape(seg: str) -> str:
    """The file name for one path segment (see the module docstring)."""
    name = _quote(seg)
    if len(name) > _NAME_LIMIT:
        return "~" + hashlib.blake2b(seg.encode("utf-8"), digest_size=20).hexdigest()
    return name


def _unquote(name: str) -> str | None:
    try:
        seg = unquote_to_bytes(name).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return seg if seg and _quote(seg) == name else None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_file(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class _FSView:
    """Node-level access to the tree (no snapshot isolation: files are replaced atomically)."""

    __slots__ = ("_root", "_where")

    def __init__(self, root: str, where: str) -> None:
        self._root = root
        self._where = where

    def phys(self, key: str) -> str:
        if not key:
            return self._root
        return os.path.join(self._root, *[_escape(s) for s in key.split("/")])

    def node(self, key: str) -> Node | None:
        path = self.phys(key)
        for _ in range(3):
            try:
                st = os.lstat(path)
                if stat.S_ISDIR(st.st_mode):
                    return Node(GROUP, b"")
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(path)
                    if not target.startswith(_LINK_PREFIX):
                        raise StoreError(
                            f"{path!r} in {self._where} is a symlink hbeam did not make "
                            f"(to {target!r}); refusing to follow it",
                            file=path,
                        )
                    segs = target[len(_LINK_PREFIX) :].split("/")
                    decoded = [_unquote(s) for s in segs]
                    if any(s is None for s in decoded):
                        raise StoreError(f"corrupt link {path!r} in {self._where}: {target!r}")
                    return Node(LINK, "/".join(s for s in decoded if s).encode("utf-8"))
                if stat.S_ISREG(st.st_mode):
                    return Node(VALUE, _read_file(path))
                raise StoreError(
                    f"{path!r} in {self._where} is neither a file, a directory nor a link",
                    file=path,
                )
            except (FileNotFoundError, NotADirectoryError):
                # gone, or replaced between lstat and open (a concurrent rename): look again
                if not os.path.lexists(path):
                    return None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    continue  # became a symlink between lstat and open
                raise StoreError(f"reading {path!r} in {self._where} failed: {exc}") from exc
        raise StoreError(f"{path!r} in {self._where} keeps changing under the reader")

    def _names(self, key: str) -> Iterator[str]:
        directory = self.phys(key)
        try:
            entries = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StoreError(f"listing {directory!r} in {self._where} failed: {exc}") from exc
        for name in entries:
            if name.startswith("."):
                continue
            if name.startswith("~"):
                try:
                    with open(os.path.join(directory, _NAMES, name[1:]), "rb") as fh:
                        seg: str | None = fh.read().decode("utf-8")
                except (OSError, UnicodeDecodeError):
                    seg = None
                if seg is None or _escape(seg) != name:
                    continue
                yield seg
            else:
                plain = _unquote(name)
                if plain is not None:
                    yield plain

    def has_children(self, key: str) -> bool:
        return next(self._names(key), None) is not None

    def lookup(self, key: str) -> Node | None:
        # a group is a directory, so what has children is a node here already
        return self.node(key)

    def children(self, key: str) -> Iterable[str]:
        return set(self._names(key))


class FSStore(Store):
    """A store in a directory tree at ``path`` (created if missing).

    Args:
        path: the root directory.
        durable: ``True`` (default): a write returns after its files and directories are
            fsync'd; ``False`` skips the fsyncs.

    Raises:
        StoreError: the directory cannot be used, or a journal left by a crash is corrupt.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.path = os.path.realpath(os.fspath(path))
        self.where = f"FSStore({self.path!r})"
        self.durable = durable
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store directory {self.path!r}: {exc}") from exc
        if not os.path.isdir(self.path):
            raise StoreError(f"FSStore path {self.path!r} is not a directory")
        self._view = _FSView(self.path, self.where)
        self._recover()
        self._committer = GroupCommit(self._commit, self.where)

    # -- hooks ---------------------------------------------------------------------------
    @contextmanager
    def _reading(self) -> Iterator[View]:
        self._check_open()
        yield self._view

    def _submit(self, ops: list[_Planned], wait: bool = True) -> None:
        self._check_open()
        for kind, parent, name, payload in ops:
            if kind == LINK and len(payload) * 3 + len(_LINK_PREFIX) > _LINK_LIMIT:
                raise StoreError(
                    f"cannot link {'/'.join((*parent, name))!r} in {self.where}: the target "
                    "path is "
                    f"{len(payload)} bytes (FSStore links hold at most about "
                    f"{_LINK_LIMIT // 3})"
                )
        self._committer.submit(ops, wait=wait)

    def flush(self) -> None:
        """Wait until every write submitted with ``wait=False`` so far is on disk."""
        self._committer.flush()

    def close(self) -> None:
        """Wait for commits in flight; later calls raise StoreError."""
        if not self._closed:
            self._committer.close()
            self._closed = True

    # -- commit --------------------------------------------------------------------------
    def _commit(self, batch: list[_Request]) -> None:
        puts = list(plan_batch(self._view, batch, self.where).puts.items())
        if not puts:
            return
        try:
            if len(puts) == 1:
                self._apply(puts)
            else:
                self._write_journal(puts)
                self._apply(puts)
                self._drop_journal()
        except OSError as exc:
            raise StoreError(
                f"writing {len(puts)} entries to {self.where} failed: {exc}",
                file=getattr(exc, "filename", None),
            ) from exc

    def _apply(self, puts: list[tuple[str, Node]]) -> None:
        touched: set[str] = set()
        known: set[str] = set()
        for key, node in puts:
            segs = key.split("/")
            parent = self._ensure_dirs(segs[:-1], touched, known)
            path = os.path.join(parent, self._entry(parent, segs[-1], touched))
            if node.kind == GROUP:
                try:
                    os.mkdir(path)
                    touched.add(parent)
                except FileExistsError:
                    pass
                continue
            tmp = os.path.join(parent, f".tmp.{os.getpid()}.{next(_tmp_counter)}")
            try:
                if node.kind == VALUE:
                    self._write_file(tmp, node.data)
                else:
                    target = "/".join(_quote(s) for s in node.data.decode("utf-8").split("/"))
                    os.symlink(_LINK_PREFIX + target, tmp)
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            touched.add(parent)
        if self.durable:
            for directory in sorted(touched, key=len, reverse=True):
                _fsync_dir(directory)

    def _ensure_dirs(self, segs: list[str], touched: set[str], known: set[str]) -> str:
        current = self.path
        for seg in segs:
            nxt = os.path.join(current, self._entry(current, seg, touched))
            if nxt not in known:
                try:
                    os.mkdir(nxt)
                    touched.add(current)
                except FileExistsError:
                    pass
                known.add(nxt)
            current = nxt
        return current

    def _entry(self, directory: str, seg: str, touched: set[str]) -> str:
        name = _escape(seg)
        if name.startswith("~"):
            names = os.path.join(directory, _NAMES)
            record = os.path.join(names, name[1:])
            if not os.path.exists(record):
                try:
                    os.mkdir(names)
                    touched.add(directory)
                except FileExistsError:
                    pass
                tmp = os.path.join(names, f".tmp.{os.getpid()}.{next(_tmp_counter)}")
                self._write_file(tmp, seg.encode("utf-8"))
                os.replace(tmp, record)
                touched.add(names)
        return name

    def _write_file(self, path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    # -- journal -------------------------------------------------------------------------
    def _write_journal(self, puts: list[tuple[str, Node]]) -> None:
        parts = [_MAGIC, len(puts).to_bytes(4, "big")]
        for key, node in puts:
            raw = key.encode("utf-8")
            parts += [
                len(raw).to_bytes(4, "big"),
                raw,
                node.kind.encode(),
                len(node.data).to_bytes(8, "big"),
                node.data,
            ]
        body = b"".join(parts)
        tmp = os.path.join(self.path, _JOURNAL + ".tmp")
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        self._write_file(tmp, body + hashlib.blake2b(body, digest_size=32).digest())
        os.replace(tmp, os.path.join(self.path, _JOURNAL))
        if self.durable:
            _fsync_dir(self.path)

    def _drop_journal(self) -> None:
        os.unlink(os.path.join(self.path, _JOURNAL))
        if self.durable:
            _fsync_dir(self.path)

    def _recover(self) -> None:
        """Finish a multi-operation commit interrupted by a crash (replay its journal)."""
        journal = os.path.join(self.path, _JOURNAL)
        try:
            os.unlink(journal + ".tmp")  # never completed, so never acknowledged
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot clean up {journal + '.tmp'!r}: {exc}") from exc
        try:
            with open(journal, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"cannot read the journal {journal!r}: {exc}") from exc
        puts = _parse_journal(raw, journal)
        try:
            self._apply(puts)
            self._drop_journal()
        except OSError as exc:
            raise StoreError(f"replaying the journal {journal!r} failed: {exc}") from exc


def _parse_journal(raw: bytes, name: str) -> list[tuple[str, Node]]:
    body, digest = raw[:-32], raw[-32:]
    if (
        len(raw) < 40
        or body[:4] != _MAGIC
        or hashlib.blake2b(body, digest_size=32).digest() != digest
    ):
        raise StoreError(
            f"the journal {name!r} is corrupt (bad magic or checksum): an interrupted commit "
            "cannot be finished; inspect or remove the file",
            file=name,
        )
    count = int.from_bytes(body[4:8], "big")
    pos = 8
    puts: list[tuple[str, Node]] = []
    try:
        for _ in range(count):
            size = int.from_bytes(body[pos : pos + 4], "big")
            key = body[pos + 4 : pos + 4 + size].decode("utf-8")
            pos += 4 + size
            kind = body[pos : pos + 1].decode()
            length = int.from_bytes(body[pos + 1 : pos + 9], "big")
            data = body[pos + 9 : pos + 9 + length]
            pos += 9 + length
            if kind not in (VALUE, GROUP, LINK) or len(data) != length:
                raise ValueError(f"bad entry {key!r}")
            puts.append((key, Node(kind, data)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"the journal {name!r} is corrupt: {exc}", file=name) from exc
    if pos != len(body):
        raise StoreError(f"the journal {name!r} is corrupt: trailing bytes", file=name)
    return puts
