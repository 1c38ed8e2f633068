"""The pure backend's persistent B+tree (``hbeam._pure.pmap``) against a dict model.

PMap is an internal of the pure backend (the native twin has its own ``cargo test``s),
so these tests import it directly rather than through the ``backend`` fixture.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hbeam._pure.pmap import MAX_WIDTH, MIN_WIDTH, PMap, _Branch, _Leaf, _leaves
from hypothesis import given, settings
from hypothesis import strategies as st


def check(pm: PMap, model: dict[str, Any]) -> None:
    """``pm`` holds exactly ``model`` and keeps every B+tree invariant."""
    assert len(pm) == len(model)
    expected = sorted(model.items())
    assert list(pm.items()) == expected
    assert list(pm) == [k for k, _ in expected]
    assert list(pm.values()) == [v for _, v in expected]

    def walk(node: Any, lo: str | None, hi: str | None, root: bool) -> int:
        if node.__class__ is _Leaf:
            assert len(node.keys) == len(node.vals)
            assert root or MIN_WIDTH <= len(node.keys) <= MAX_WIDTH
            assert node.keys == sorted(set(node.keys))
            for k in node.keys:
                assert (lo is None or k >= lo) and (hi is None or k < hi)
            return 1
        assert node.__class__ is _Branch
        assert root or MIN_WIDTH <= len(node.kids) <= MAX_WIDTH
        assert len(node.kids) >= 2 and len(node.keys) == len(node.kids) - 1
        assert len(node.kids) <= MAX_WIDTH
        depths = set()
        for i, kid in enumerate(node.kids):
            k_lo = node.keys[i - 1] if i else lo
            k_hi = node.keys[i] if i < len(node.keys) else hi
            depths.add(walk(kid, k_lo, k_hi, False))
        assert len(depths) == 1  # balanced
        return depths.pop() + 1

    walk(pm._root, None, None, True)


keys_st = st.text(alphabet="abAB09é_", min_size=0, max_size=4)
op_st = st.one_of(
    st.tuples(st.just("set"), keys_st, st.integers()),
    st.tuples(st.just("del"), keys_st, st.none()),
    st.tuples(
        st.just("batch"),
        st.lists(st.tuples(keys_st, st.one_of(st.none(), st.integers())), max_size=80),
        st.none(),
    ),
)


@given(
    initial=st.dictionaries(keys_st, st.integers(), max_size=300),
    ops=st.lists(op_st, max_size=60),
)
def test_against_dict_model(initial: dict[str, int], ops: list[Any]) -> None:
    pm = PMap.from_dict(initial)
    model = dict(initial)
    check(pm, model)
    history = [(pm, dict(model))]
    for kind, a, b in ops:
        if kind == "set":
            pm = pm.set(a, b)
            model[a] = b
        elif kind == "del":
            pm = pm.delete(a)
            model.pop(a, None)
        else:
            t = pm.transient()
            for key, value in a:
                if value is None:
                    t.delete(key)
                    model.pop(key, None)
                else:
                    t.set(key, value)
                    model[key] = value
                assert len(t) == len(model)
                assert t.get(key, "absent") == model.get(key, "absent")
            pm = t.persistent()
        history.append((pm, dict(model)))
        for key in a if kind == "batch" else [(a, None)]:
            assert pm.get(key[0], "absent") == model.get(key[0], "absent")
            assert (key[0] in pm) == (key[0] in model)
    check(pm, model)
    for old, old_model in history:  # persistence: no version ever changes
        assert list(old.items()) == sorted(old_model.items())


@settings(max_examples=25)
@given(
    n=st.integers(0, 6000),
    seed=st.integers(0, 2**32),
    probes=st.lists(st.text(alphabet="k0123456789z", max_size=8), max_size=20),
)
def test_big_trees_split_merge_and_ceiling(n: int, seed: int, probes: list[str]) -> None:
    rng = random.Random(seed)
    model = {f"k{rng.randrange(10 * n + 1)}": i for i in range(n)}
    pm = PMap.from_dict(model)
    check(pm, model)
    for probe in [*probes, "", "k", "z", *rng.sample(sorted(model), min(5, len(model)))]:
        expected = min((k for k in model if k >= probe), default=None)
        assert pm.ceiling(probe) == expected
    # delete most keys one by one through a transient, then persistently
    doomed = rng.sample(sorted(model), len(model) * 3 // 4)
    t = pm.transient()
    for key in doomed[: len(doomed) // 2]:
        t.delete(key)
        del model[key]
    pm2 = t.persistent()
    for key in doomed[len(doomed) // 2 :]:
        pm2 = pm2.delete(key)
        del model[key]
    check(pm2, model)
    for probe in [*probes, "", "k5", "z"]:
        assert pm2.ceiling(probe) == min((k for k in model if k >= probe), default=None)


def test_structure_is_shared() -> None:
    keys = [f"k{i:06d}" for i in range(100_000)]
    pm = PMap.from_sorted(keys, list(range(len(keys))))
    updated = pm.set("k050000", "x")
    old = {id(leaf) for leaf in _leaves(pm._root)}
    new = [leaf for leaf in _leaves(updated._root) if id(leaf) not in old]
    assert len(new) == 1
    assert pm.get("k050000") == 50_000
    assert updated.get("k050000") == "x"
    # setting the identical value object changes nothing
    same = pm.get("k000007")
    assert pm.set("k000007", same) is pm
    assert pm.delete("absent") is pm
    # a transient batch copies each touched path once
    t = pm.transient()
    for i in range(0, 100_000, 10_000):
        t.set(f"k{i:06d}", f"v{i}")
    batched = t.persistent()
    changed = [leaf for leaf in _leaves(batched._root) if id(leaf) not in old]
    assert len(changed) == 10
    assert pm.get("k010000") == 10_000 and batched.get("k010000") == "v10000"


def test_from_sorted_is_balanced_at_scale() -> None:
    n = 300_000
    keys = [f"{i:07d}" for i in range(n)]
    pm = PMap.from_sorted(keys, keys)
    assert len(pm) == n
    depth = 0
    node: Any = pm._root
    while node.__class__ is _Branch:
        node = node.kids[0]
        depth += 1
    assert depth == 3  # 3e5 keys at width 64: leaves + 3 branch levels
    assert pm.get("0299999") == "0299999"
    assert pm.ceiling("015") == "0150000"
    assert pm.ceiling("1") is None
    assert pm.set("0150000x", 1).get("0150000x") == 1


def test_transient_is_single_use() -> None:
    t = PMap().transient()
    t.set("a", 1)
    frozen = t.persistent()
    with pytest.raises(RuntimeError):
        t.set("b", 2)
    assert list(frozen.items()) == [("a", 1)]


def test_update_and_repr() -> None:
    pm = PMap().update([("b", 2), ("a", 1), ("b", 3)])
    assert list(pm.items()) == [("a", 1), ("b", 3)]
    assert repr(pm) == "PMap({'a': 1, 'b': 3})"
    assert "a" in pm and 1 not in pm
    assert PMap().ceiling("a") is None
    assert list(PMap()) == []
