"""Differential test of the legacy-EH translation: random programs, a reference interpreter.

Random nests of block / try-catch / catch_all / catch-less try / try-delegate / rethrow /
br / br_if / throw / calls are written out as legacy-EH WAT and also run by a small
Python interpreter of the legacy semantics (delegate rethrows at the target label, which
only a try still in its body can catch; rethrow re-raises the exception its catch
received).  The translated module, run by wasmtime, must leave the same accumulator
(an order-sensitive trace) or fail with an uncaught exception exactly when the
interpreter does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from hbeam import _core
from hbeam.errors import WasmError
from hbeam.wasm import WasmEngine

MASK = 0xFFFFFFFF

# -- programs -------------------------------------------------------------------------
# Statements are tuples:
#   ("add", k) | ("throw", tag, v) | ("block", body) | ("br", d) | ("br_if", d)
#   ("rethrow", d) | ("call", f)
#   ("try", body, catches, delegate)  catches: [(tag | None, handler)], delegate: int | None


@dataclass
class Gen:
    rng: random.Random
    n_funcs: int
    budget: int = 40

    def body(self, frames: list[str], fidx: int, depth: int) -> list[Any]:
        out: list[Any] = []
        for _ in range(self.rng.randint(0, 4)):
            if self.budget <= 0:
                break
            self.budget -= 1
            out.append(self.stmt(frames, fidx, depth))
        return out

    def stmt(self, frames: list[str], fidx: int, depth: int) -> Any:
        r = self.rng.random()
        handlers = [i for i, f in enumerate(reversed(frames)) if f == "handler"]
        if depth < 5 and handlers and r < 0.15:
            return self.nested_rethrow(frames)
        if depth < 5 and (r < 0.35 or (r < 0.6 and frames[-1] == "handler")):
            return self.try_(frames, fidx, depth)
        if depth < 5 and r < 0.45:
            return ("block", self.body([*frames, "block"], fidx, depth + 1))
        if r < 0.60:
            return ("add", self.rng.randint(1, 9))
        if r < 0.70:
            return ("throw", self.rng.choice([0, 1, 1]), self.rng.randint(1, 99))
        if r < 0.78 and handlers:
            # favour the outermost caught exception: telling it from the innermost
            # one is what checks the rethrow depth
            return ("rethrow", handlers[-1] if self.rng.random() < 0.5 else handlers[0])
        if r < 0.84:
            return ("br_if", self.rng.randrange(len(frames)))
        if r < 0.88:
            return ("br", self.rng.randrange(len(frames)))
        if fidx + 1 < self.n_funcs:
            return ("call", self.rng.randrange(fidx + 1, self.n_funcs))
        return ("add", self.rng.randint(1, 9))

    def nested_rethrow(self, frames: list[str]) -> Any:
        """Inside a handler: catch a new exception, then rethrow the outermost caught one."""
        tag = self.rng.choice([0, 1])
        inner = [*frames, "handler"]
        outermost = [i for i, f in enumerate(reversed(inner)) if f == "handler"][-1]
        # The inner try is a rethrow target too (its own exnref must not clobber the
        # outer one's): rethrow it when the accumulator is odd, else the outer one.
        handler = [
            ("add", self.rng.randint(1, 9)),
            ("block", [("br_if", 0), ("rethrow", 1)]),
            ("rethrow", outermost),
        ]
        clause = self.rng.choice([None, tag])
        return ("try", [("throw", tag, self.rng.randint(1, 99))], [(clause, handler)], None)

    def try_(self, frames: list[str], fidx: int, depth: int) -> Any:
        body = self.body([*frames, "try"], fidx, depth + 1)
        if self.rng.random() < 0.6:  # make the handlers run often
            body.append(("throw", self.rng.choice([0, 1, 1]), self.rng.randint(1, 99)))
        kind = self.rng.random()
        if kind < 0.25:
            return ("try", body, [], self.rng.randrange(len(frames)))
        if kind < 0.35:
            return ("try", body, [], None)
        tags = self.rng.sample([0, 1], self.rng.randint(0, 2))
        clauses: list[Any] = [(t, None) for t in tags]
        if not clauses or self.rng.random() < 0.5:
            clauses.append((None, None))
        catches = [(t, self.body([*frames, "handler"], fidx, depth + 1)) for t, _ in clauses]
        return ("try", body, catches, None)


# -- WAT ------------------------------------------------------------------------------


def wat_body(stmts: list[Any], out: list[str]) -> None:
    for s in stmts:
        op = s[0]
        if op == "add":
            out.append(f"global.get $acc i32.const 3 i32.mul i32.const {s[1]} i32.add")
            out.append("global.set $acc")
        elif op == "throw":
            out.append("throw $e0" if s[1] == 0 else f"i32.const {s[2]} throw $e1")
        elif op == "block":
            out.append("block")
            wat_body(s[1], out)
            out.append("end")
        elif op == "br":
            out.append(f"br {s[1]}")
        elif op == "br_if":
            out.append(f"global.get $acc i32.const 1 i32.and br_if {s[1]}")
        elif op == "rethrow":
            out.append(f"rethrow {s[1]}")
        elif op == "call":
            out.append(f"call $f{s[1]}")
        elif op == "try":
            _, body, catches, delegate = s
            out.append("try")
            wat_body(body, out)
            if delegate is not None:
                out.append(f"delegate {delegate}")
                continue
            for tag, handler in catches:
                if tag is None:
                    out.append("catch_all")
                elif tag == 0:
                    out.append("catch $e0")
                else:
                    out.append("catch $e1")
                    out.append("global.set $tmp global.get $acc i32.const 3 i32.mul")
                    out.append("global.get $tmp i32.add global.set $acc")
                wat_body(handler, out)
            out.append("end")


def module_wat(programs: list[list[list[Any]]]) -> str:
    lines = [
        "(module",
        "(tag $e0) (tag $e1 (param i32))",
        "(global $acc (mut i32) (i32.const 0)) (global $tmp (mut i32) (i32.const 0))",
    ]
    for p, funcs in enumerate(programs):
        for i, body in enumerate(funcs):
            name = f"$f{i}" if p == 0 else f"$p{p}f{i}"
            out: list[str] = []
            wat_body(body, out)
            text = "\n".join(out).replace("call $f", f"call $p{p}f" if p else "call $f")
            lines.append(f"(func {name}\n{text})")
        first = "$f0" if p == 0 else f"$p{p}f0"
        lines.append(
            f'(func (export "run{p}") (result i32) i32.const 0 global.set $acc '
            f"call {first} global.get $acc)"
        )
    lines.append(")")
    return "\n".join(lines)


# -- reference interpreter ------------------------------------------------------------


class Thrown(Exception):
    def __init__(self, tag: int, value: int) -> None:
        super().__init__(tag, value)
        self.tag, self.value = tag, value


class Br(Exception):
    def __init__(self, depth: int) -> None:
        self.depth = depth


class Delegated(Exception):
    def __init__(self, exc: Thrown, depth: int) -> None:
        self.exc, self.depth = exc, depth


@dataclass
class Interp:
    funcs: list[list[Any]]
    acc: int = 0
    frames: list[Any] = field(default_factory=list)

    def add(self, k: int) -> None:
        self.acc = (self.acc * 3 + k) & MASK

    def call(self, f: int) -> None:
        saved, self.frames = self.frames, [None]
        try:
            self.run(self.funcs[f])
        except Br as b:
            assert b.depth == 0
        except Delegated as d:
            assert d.depth == 0
            raise d.exc from None
        finally:
            self.frames = saved

    def run(self, stmts: list[Any]) -> None:
        for s in stmts:
            self.stmt(s)

    def label(self, body: list[Any], caught: Thrown | None = None) -> None:
        """Run ``body`` under one label; Br/Delegated aimed here stop here."""
        self.frames.append(caught)
        try:
            self.run(body)
        except Br as b:
            if b.depth:
                raise Br(b.depth - 1) from None
        except Delegated as d:
            if d.depth:
                raise Delegated(d.exc, d.depth - 1) from None
            raise d.exc from None  # rethrown at this label, where nothing here catches
        finally:
            self.frames.pop()

    def stmt(self, s: Any) -> None:
        op = s[0]
        if op == "add":
            self.add(s[1])
        elif op == "throw":
            raise Thrown(s[1], s[2] if s[1] else 0)
        elif op == "block":
            self.label(s[1])
        elif op == "br":
            raise Br(s[1])
        elif op == "br_if":
            if self.acc & 1:
                raise Br(s[1])
        elif op == "rethrow":
            caught = self.frames[-1 - s[1]]
            assert isinstance(caught, Thrown)
            raise caught
        elif op == "call":
            self.call(s[1])
        else:
            self.try_(s)

    def try_(self, s: Any) -> None:
        _, body, catches, delegate = s
        self.frames.append(None)
        exc: Thrown | None = None
        try:
            self.run(body)
        except Br as b:
            if b.depth:
                raise Br(b.depth - 1) from None
            return
        except Delegated as d:
            if d.depth:
                raise Delegated(d.exc, d.depth - 1) from None
            exc = d.exc  # delegated into this try's body
        except Thrown as t:
            exc = t
        finally:
            self.frames.pop()
        if exc is None:
            return
        if delegate is not None:
            raise Delegated(exc, delegate)
        for tag, handler in catches:
            if tag is None or tag == exc.tag:
                if tag == 1:
                    self.add(exc.value)
                self.label(handler, caught=exc)
                return
        raise exc


def expected(funcs: list[list[Any]]) -> int | None:
    interp = Interp(funcs)
    try:
        interp.call(0)
    except Thrown:
        return None
    return interp.acc


# -- the test -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_legacy_programs_match_the_reference(backend: ModuleType, seed: int) -> None:
    rng = random.Random(seed)
    programs = []
    for _ in range(40):
        n = rng.randint(1, 3)
        gen = Gen(rng, n)
        programs.append([gen.body(["func"], i, 0) for i in range(n)])
    engine = WasmEngine()
    source = module_wat(programs).encode()
    if _core.name == "pure":
        with pytest.raises(WasmError, match="needs the native core"):
            engine.instantiate(source)
        return
    inst = engine.instantiate(source, module_id=f"random-{seed}")
    for p, funcs in enumerate(programs):
        want = expected(funcs)
        if want is None:
            with pytest.raises(WasmError, match="thrown Wasm exception"):
                inst.call(f"run{p}")
        else:
            got = inst.call(f"run{p}")[0] & MASK
            assert got == want, f"program {p} of seed {seed}: {funcs!r}"
