"""``parse_request``: HyperBEAM's HTTP path language (core contract), on both backends."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hbeam.errors import AOError, InvalidPath
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PID = "FkJPkIHp_Gc_7KOLbtyzowPcJUc3SG_G25SJp0fbTmE"
TX = "QSBQZsowVRdvsEbdTv-KEF4_Z5bYf11M3X5-8LN0NM4"
ID3 = "vh-NTHVvlKZqRxc8LyyTNok65yQ55a_PJ1zWLb9G2JI"


def parse(backend: ModuleType, path: str, globals: Any = None) -> list[Any]:
    result: list[Any] = backend.parse_request(path, globals)
    return result


def fails(backend: ModuleType, path: Any, globals: Any = None) -> str:
    with pytest.raises(InvalidPath) as info:
        backend.parse_request(path, globals)
    return str(info.value)


# --- the contract's examples --------------------------------------------------------


def test_process_then_keys_then_cast(backend: ModuleType) -> None:
    assert parse(backend, f"/{PID}~process@1.0/now/cache/balances/format~json@1.0") == [
        ("as", "process@1.0", PID),
        {"path": "now"},
        {"path": "cache"},
        {"path": "balances"},
        ("as", "json@1.0", {"path": "format"}),
    ]


def test_lua_cast_then_call_with_module(backend: ModuleType) -> None:
    path = f"/{PID}~process@1.0/now/cache/balances/~lua@5.3a/sum&module={TX}/serialize~json@1.0"
    assert parse(backend, path) == [
        ("as", "process@1.0", PID),
        {"path": "now"},
        {"path": "cache"},
        {"path": "balances"},
        ("as", "lua@5.3a", {}),
        {"path": "sum", "module": TX},
        ("as", "json@1.0", {"path": "serialize"}),
    ]


def test_cast_as_first_segment_is_the_base(backend: ModuleType) -> None:
    assert parse(backend, "/~meta@1.0/info") == [{"device": "meta@1.0"}, {"path": "info"}]


def test_query_keys_are_global_and_typed(backend: ModuleType) -> None:
    assert parse(backend, "/a/b?x=1&n+integer=2") == [
        {"x": "1", "n": 2},
        {"path": "a", "x": "1", "n": 2},
        {"path": "b", "x": "1", "n": 2},
    ]


def test_inline_typed_parameter(backend: ModuleType) -> None:
    assert parse(backend, "/compute&slot+integer=3") == [{}, {"path": "compute", "slot": 3}]


def test_parenthesised_segment_is_a_sub_resolution(backend: ModuleType) -> None:
    assert parse(backend, "/a/(b/c)/d") == [
        {},
        {"path": "a"},
        ("resolve", [{}, {"path": "b"}, {"path": "c"}]),
        {"path": "d"},
    ]


@pytest.mark.parametrize("path", ["", "/", "//", "?", "/?"])
def test_empty_path_is_just_the_globals(backend: ModuleType, path: str) -> None:
    assert parse(backend, path) == [{}]
    assert parse(backend, path, {"host": "h"}) == [{"host": "h"}]


# --- seed 000's URLs ----------------------------------------------------------------


def test_seed_hyperbuddy_balances_url(backend: ModuleType) -> None:
    assert parse(backend, f"/{PID}~process@1.0/now/cache/balances/format~hyperbuddy@1.0") == [
        ("as", "process@1.0", PID),
        {"path": "now"},
        {"path": "cache"},
        {"path": "balances"},
        ("as", "hyperbuddy@1.0", {"path": "format"}),
    ]


def test_seed_dynamic_function_url(backend: ModuleType) -> None:
    url = f"/{PID}~process@1.0/now/cache/balances/~lua@5.3a/sum&module={TX}/format~hyperbuddy@1.0"
    items = parse(backend, url)
    assert items[4:] == [
        ("as", "lua@5.3a", {}),
        {"path": "sum", "module": TX},
        ("as", "hyperbuddy@1.0", {"path": "format"}),
    ]


def test_seed_json_balances_url(backend: ModuleType) -> None:
    items = parse(backend, f"/{PID}~process@1.0/now/cache/balances/format~json@1.0")
    assert items[-1] == ("as", "json@1.0", {"path": "format"})
    assert len(items) == 5


def test_seed_events_url(backend: ModuleType) -> None:
    assert parse(backend, f"/{PID}~process@1.0/events/cache/balances") == [
        ("as", "process@1.0", PID),
        {"path": "events"},
        {"path": "cache"},
        {"path": "balances"},
    ]


def test_seed_url_carries_request_headers_as_globals(backend: ModuleType) -> None:
    headers = {"host": "localhost:8734", "accept": "text/event-stream"}
    items = parse(backend, f"/{PID}~process@1.0/events/cache/balances", headers)
    assert items[0] == ("as", "process@1.0", PID)
    assert items[1:] == [{**headers, "path": p} for p in ("events", "cache", "balances")]


# --- query ----------------------------------------------------------------------------


def test_query_is_form_urlencoded(backend: ModuleType) -> None:
    assert parse(backend, "/a?msg=hello+world%21&sym=%2B%26%3D")[0] == {
        "msg": "hello world!",
        "sym": "+&=",
    }


def test_query_flag_and_empty_items(backend: ModuleType) -> None:
    assert parse(backend, "/a?&flag&&k=&")[0] == {"flag": True, "k": ""}


def test_query_wins_over_globals(backend: ModuleType) -> None:
    items = parse(backend, "/a?k=query", {"k": "global", "other": 1})
    assert items == [{"k": "query", "other": 1}, {"k": "query", "other": 1, "path": "a"}]


def test_only_the_first_question_mark_splits(backend: ModuleType) -> None:
    assert parse(backend, "/a?q=x?y")[0] == {"q": "x?y"}


def test_repeated_query_key_last_wins(backend: ModuleType) -> None:
    assert parse(backend, "/?k=1&k=2") == [{"k": "2"}]


# --- globals ----------------------------------------------------------------------------


def test_globals_go_to_base_plain_segments_and_casts(backend: ModuleType) -> None:
    g = {"host": "h"}
    assert parse(backend, "/~dev@1.0&x=1/a/~other@1.0&y=2", g) == [
        {"host": "h", "device": "dev@1.0", "x": "1"},
        {"host": "h", "path": "a"},
        ("as", "other@1.0", {"host": "h", "y": "2"}),
    ]


def test_globals_skip_ids_keyed_casts_and_sub_paths(backend: ModuleType) -> None:
    g = {"host": "h"}
    assert parse(backend, f"/{PID}/{ID3}/k~dev@1.0/(x)", g) == [
        PID,
        {"path": ID3},
        ("as", "dev@1.0", {"path": "k"}),
        ("resolve", [{}, {"path": "x"}]),
    ]


def test_global_values_are_passed_through_untouched(backend: ModuleType) -> None:
    body = b"\x00binary"
    nested = {"deep": [1, 2]}
    items = parse(backend, "/a", {"body": body, "nested": nested, "n": None})
    assert items[1]["body"] is body
    assert items[1]["nested"] is nested
    assert items[0] == {"body": body, "nested": nested, "n": None}


def test_parameters_win_over_globals(backend: ModuleType) -> None:
    assert parse(backend, "/a&k=param", {"k": "global"})[1] == {"k": "param", "path": "a"}


def test_globals_may_be_any_mapping(backend: ModuleType) -> None:
    from types import MappingProxyType

    assert parse(backend, "/a", MappingProxyType({"k": "v"})) == [
        {"k": "v"},
        {"k": "v", "path": "a"},
    ]


# --- scoped keys ------------------------------------------------------------------------


def test_scoped_keys_apply_to_one_item(backend: ModuleType) -> None:
    assert parse(backend, "/a/b?0.z=base&1.x=one&2.y+integer=2&g=all") == [
        {"g": "all", "z": "base"},
        {"g": "all", "path": "a", "x": "one"},
        {"g": "all", "path": "b", "y": 2},
    ]


def test_scoped_keys_from_globals_and_onto_cast_dicts(backend: ModuleType) -> None:
    items = parse(backend, f"/{PID}~process@1.0/k~json@1.0", {"1.mode": "m"})
    assert items == [("as", "process@1.0", PID), ("as", "json@1.0", {"path": "k", "mode": "m"})]


def test_scoped_key_out_of_range(backend: ModuleType) -> None:
    message = fails(backend, "/a?5.x=1")
    assert message.endswith("scoped key '5.x' names no path segment")


@pytest.mark.parametrize(
    ("path", "key"),
    [(f"/{PID}/a?0.x=1", "0.x"), ("/(a)?1.x=1", "1.x"), ("/a?99999999999999999999999.x=1", None)],
)
def test_scoped_key_on_an_id_or_sub_path(backend: ModuleType, path: str, key: str | None) -> None:
    message = fails(backend, path)
    assert "names no path segment" in message
    if key:
        assert f"'{key}'" in message


def test_not_scoped_without_a_name(backend: ModuleType) -> None:
    assert parse(backend, "/?5.=x&a.b=y") == [{"5.": "x", "a.b": "y"}]


# --- casts and IDs --------------------------------------------------------------------


def test_id_first_is_the_base_and_later_a_key(backend: ModuleType) -> None:
    assert parse(backend, f"/{PID}/{ID3}&k=v") == [PID, {"path": ID3, "k": "v"}]


def test_id_cast_later_is_a_keyed_cast(backend: ModuleType) -> None:
    assert parse(backend, f"/a/{PID}~process@1.0") == [
        {},
        {"path": "a"},
        ("as", "process@1.0", {"path": PID}),
    ]


def test_keyed_cast_first_is_a_step_on_the_implicit_base(backend: ModuleType) -> None:
    assert parse(backend, "/info~meta@1.0&x=1", {"g": 1}) == [
        {"g": 1},
        ("as", "meta@1.0", {"path": "info", "x": "1"}),
    ]


def test_id_like_but_not_43_chars_is_a_key(backend: ModuleType) -> None:
    assert parse(backend, f"/{PID[:42]}") == [{}, {"path": PID[:42]}]
    assert parse(backend, f"/{PID[:42]}!") == [{}, {"path": PID[:42] + "!"}]


@pytest.mark.parametrize("path", [f"/{PID}&k=v", f"/{PID}~process@1.0&k=v"])
def test_parameters_on_an_id_segment(backend: ModuleType, path: str) -> None:
    assert fails(backend, path).endswith("parameters on an ID segment")


# --- sub-paths -------------------------------------------------------------------------


def test_nested_sub_paths(backend: ModuleType) -> None:
    assert parse(backend, "/((a/b)/c)") == [
        {},
        ("resolve", [{}, ("resolve", [{}, {"path": "a"}, {"path": "b"}]), {"path": "c"}]),
    ]


def test_sub_paths_get_no_globals(backend: ModuleType) -> None:
    assert parse(backend, "/(a)?g=1") == [{"g": "1"}, ("resolve", [{}, {"path": "a"}])]


def test_parentheses_not_wrapping_the_segment_are_part_of_the_key(backend: ModuleType) -> None:
    assert parse(backend, "/(a)(b)") == [{}, {"path": "(a)(b)"}]
    assert parse(backend, "/(a)&k=v") == [{}, {"path": "(a)", "k": "v"}]


def test_ampersand_inside_parentheses_does_not_split(backend: ModuleType) -> None:
    assert parse(backend, "/x&k+resolve=(a&q=1/b)") == [
        {},
        {
            "path": "x",
            "k": ("resolve", [{}, ("resolve", [{}, {"path": "a", "q": "1"}, {"path": "b"}])]),
        },
    ]


def test_empty_sub_path(backend: ModuleType) -> None:
    assert parse(backend, "/()") == [{}, ("resolve", [{}])]


# --- parameters ------------------------------------------------------------------------


def test_parameters_and_flags(backend: ModuleType) -> None:
    assert parse(backend, "/a&k=v&flag&&e=&k2=x=y") == [
        {},
        {"path": "a", "k": "v", "flag": True, "e": "", "k2": "x=y"},
    ]


def test_repeated_parameter_last_wins(backend: ModuleType) -> None:
    assert parse(backend, "/a&k=1&k=2")[1] == {"path": "a", "k": "2"}


# --- typed keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n+integer=42", 42),
        ("n+integer=-7", -7),
        ("n+integer=007", 7),
        ("n+integer=123456789012345678901234567890", 123456789012345678901234567890),
        ("n+float=1.5", 1.5),
        ("n+float=-2", -2.0),
        ("n+float=1e3", 1000.0),
        ("n+float=.25", 0.25),
        ("n+binary=1", "1"),
        ("n+binary=", ""),
        ("n+atom=true", True),
        ("n+atom=false", False),
        ("n+atom=ok", "ok"),
        ("n+list=", []),
        ("n+list=1", [1]),
        (
            'n+list=1, -2.5, "a,b", %3F1, %3F0, tok:en%2Fx, *star',
            [1, -2.5, "a,b", True, False, "tok:en/x", "*star"],
        ),
        ('n+list="say \\"hi\\" \\\\ bye"', ['say "hi" \\ bye']),
        ('n+list=""', [""]),
        ("n+map=", {}),
        (
            'n+map=a=1, b="x", c, d=%3F0, e=1.5, f=tok',
            {"a": 1, "b": "x", "c": True, "d": False, "e": 1.5, "f": "tok"},
        ),
        ("n+map=a=1,a=2", {"a": 2}),
    ],
)
def test_typed_parameter(backend: ModuleType, param: str, value: Any) -> None:
    got = parse(backend, f"/a&{param}")[1]["n"]
    assert got == value
    assert type(got) is type(value)


def test_typed_resolve_value(backend: ModuleType) -> None:
    assert parse(backend, "/a&r+resolve=x%2Fy~json@1.0")[1] == {
        "path": "a",
        "r": ("resolve", [{}, {"path": "x"}, ("as", "json@1.0", {"path": "y"})]),
    }


def test_typed_resolve_value_in_query(backend: ModuleType) -> None:
    assert parse(backend, f"/?r+resolve=%2F{PID}%2Fbalances")[0] == {
        "r": ("resolve", [PID, {"path": "balances"}])
    }


@pytest.mark.parametrize("param", ["n%20integer=5", "n integer=5"])
def test_a_space_stands_for_plus_in_parameters(backend: ModuleType, param: str) -> None:
    assert parse(backend, f"/a&{param}")[1] == {"path": "a", "n": 5}


@pytest.mark.parametrize("query", ["n+integer=5", "n%20integer=5", "n%2Binteger=5"])
def test_a_space_stands_for_plus_in_the_query(backend: ModuleType, query: str) -> None:
    assert parse(backend, f"/?{query}") == [{"n": 5}]


def test_typed_key_splits_at_the_first_plus(backend: ModuleType) -> None:
    assert fails(backend, "/a&x+y+integer=1").endswith(
        "unknown type 'y+integer' in key 'x+y+integer' in segment 1"
    )


# --- percent-decoding ----------------------------------------------------------------


def test_percent_decoding_of_heads_and_parameters(backend: ModuleType) -> None:
    assert parse(backend, "/caf%C3%A9/a+b&k%3D=v%26w%2Fz&%E2%82%AC") == [
        {},
        {"path": "café"},
        {"path": "a+b", "k=": "v&w/z", "€": True},
    ]


def test_encoded_slash_stays_in_the_segment(backend: ModuleType) -> None:
    assert parse(backend, "/a%2Fb") == [{}, {"path": "a/b"}]


def test_percent_encoded_tilde_is_a_cast(backend: ModuleType) -> None:
    assert parse(backend, "/k%7Edev@1.0") == [{}, ("as", "dev@1.0", {"path": "k"})]


def test_unicode_path(backend: ModuleType) -> None:
    assert parse(backend, "/ключ/值~dév@1.0") == [
        {},
        {"path": "ключ"},
        ("as", "dév@1.0", {"path": "值"}),
    ]


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/a/(b", "at 3"),
        ("/a/(b/(c)", "at 3"),
        ("/a)/b", "at 2"),
        ("/a/b)(", "at 4"),
        ("(", "at 0"),
        ("/é/(", "at 3"),
    ],
)
def test_unbalanced_parentheses(backend: ModuleType, path: str, where: str) -> None:
    assert fails(backend, path) == f"bad request path '{path}': unbalanced parenthesis {where}"


def test_unbalanced_offset_is_within_the_path_part(backend: ModuleType) -> None:
    assert fails(backend, "/a(?x=)").endswith("unbalanced parenthesis at 2")


def test_unknown_type(backend: ModuleType) -> None:
    assert fails(backend, "/a/b&x+foo=1") == (
        "bad request path '/a/b&x+foo=1': unknown type 'foo' in key 'x+foo' in segment 2"
    )
    assert fails(backend, "/?x+foo=1").endswith("unknown type 'foo' in key 'x foo' in the query")


@pytest.mark.parametrize("value", ["x", "1.5", "", "-", "+1", "1_000", "٣", " 1"])
def test_bad_integer(backend: ModuleType, value: str) -> None:
    path = f"/a&n+integer={value}"
    assert fails(backend, path) == (
        f"bad request path '{path}': bad integer value '{value}' for key 'n' in segment 1"
    )


def test_integer_too_long(backend: ModuleType) -> None:
    assert "bad integer value" in fails(backend, "/?n+integer=" + "9" * 601)
    assert parse(backend, "/?n+integer=" + "9" * 600)[0]["n"] == int("9" * 600)


@pytest.mark.parametrize("value", ["x", "inf", "nan", "1e999", "-1e400", "1_0", "", "."])
def test_bad_float(backend: ModuleType, value: str) -> None:
    assert fails(backend, f"/a&n+float={value}").endswith(
        f"bad float value '{value}' for key 'n' in segment 1"
    )


@pytest.mark.parametrize(
    ("value", "pos"),
    [
        ("1,,2", 2),
        ("1,", 2),
        ('"open', 5),
        ('"bad\\escape"', 4),
        ("1 2", 2),
        ("1234567890123456", 0),
        ("1.2345", 0),
        ("1.", 0),
        ("-x", 0),
        ("%3F2", 0),
        ("%28a%29", 0),
        ("é", 0),
    ],
)
def test_bad_list(backend: ModuleType, value: str, pos: int) -> None:
    assert fails(backend, f"/a&n+list={value}").endswith(f"for key 'n' in segment 1 (at {pos})")


@pytest.mark.parametrize(("value", "pos"), [("=1", 0), ("a=", 2), ("a=1;b", 3), ("a b", 2)])
def test_bad_map(backend: ModuleType, value: str, pos: int) -> None:
    assert fails(backend, f"/a&n+map={value}").endswith(
        f"bad map value '{value}' for key 'n' in segment 1 (at {pos})"
    )


@pytest.mark.parametrize("path", ["/a~", "/~", "/a/~&k=v"])
def test_empty_device_name(backend: ModuleType, path: str) -> None:
    segment = 2 if path.startswith("/a/") else 1
    assert fails(backend, path).endswith(f"empty device name in segment {segment}")


def test_device_name_with_a_tilde(backend: ModuleType) -> None:
    assert fails(backend, "/a~b~c").endswith("device name 'b~c' contains '~' in segment 1")


def test_segment_too_long(backend: ModuleType) -> None:
    message = fails(backend, "/a/" + "x" * 600)
    assert message.endswith("segment 2 is 600 bytes (limit 512)")
    assert len(message) < 200  # the path is shortened in the message
    assert fails(backend, "/" + "é" * 257).endswith("segment 1 is 514 bytes (limit 512)")
    assert parse(backend, "/" + "é" * 256) == [{}, {"path": "é" * 256}]
    assert backend.MAX_SEGMENT_BYTES == 512


def test_typed_flag_without_value(backend: ModuleType) -> None:
    assert fails(backend, "/a&n+integer").endswith(
        "typed key 'n+integer' has no value in segment 1"
    )
    assert fails(backend, "/?n+integer").endswith("typed key 'n integer' has no value in the query")


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/a&=v", "empty key in '=v' in segment 1"),
        ("/?=v", "empty key in '=v' in the query"),
        ("/a&+integer=1", "empty key name in typed key '+integer' in segment 1"),
        ("/%zz", "bad percent-escape '%zz' in segment 1"),
        ("/a%4", "bad percent-escape '%4' in segment 1"),
        ("/a%", "bad percent-escape '%' in segment 1"),
        ("/a&k=%%41", "bad percent-escape '%' in segment 1"),
        ("/?k=%g1", "bad percent-escape '%g1' in the query"),
        ("/a%FF", "percent-decoded text is not UTF-8 in segment 1"),
        ("/a%ED%A0%80", "percent-decoded text is not UTF-8 in segment 1"),
    ],
)
def test_malformed_keys_and_escapes(backend: ModuleType, path: str, detail: str) -> None:
    assert fails(backend, path) == f"bad request path '{path}': {detail}"


def test_errors_inside_sub_paths_name_the_outer_segment(backend: ModuleType) -> None:
    assert fails(backend, "/a/(b&n+integer=x)").endswith(
        "bad integer value 'x' for key 'n' in segment 1 (in the sub-path of segment 2)"
    )
    assert fails(backend, "/a&r+resolve=b~").endswith(
        "empty device name in segment 1 (in the value of 'r+resolve' in segment 1)"
    )


def test_nesting_is_bounded(backend: ModuleType) -> None:
    assert parse(backend, "/" + "(" * 32 + ")" * 32)[1][0] == "resolve"
    message = fails(backend, "/" + "(" * 40 + "a" + ")" * 40)
    assert message.endswith("sub-paths nested deeper than 32 levels (in the sub-path of segment 1)")
    # a query nests +resolve values cheaply: still bounded, no RecursionError
    deep = "/?k+resolve=x" + "?k+resolve=x" * 5000
    assert "nested deeper than 32 levels" in fails(backend, deep)


@pytest.mark.parametrize(
    ("path", "globals", "message"),
    [
        (b"/a", None, "request path must be a str, not bytes"),
        (None, None, "request path must be a str, not NoneType"),
        ("/a\ud800", None, "request path is not valid Unicode: it contains a lone surrogate"),
        ("/a", ["k"], "globals must be a mapping, not list"),
        ("/a", {1: "v"}, "globals key 1 must be a str, not int"),
        ("/a", {"k\udc80": "v"}, "globals key 'k\\udc80' is not valid Unicode"),
    ],
)
def test_bad_arguments(backend: ModuleType, path: Any, globals: Any, message: str) -> None:
    assert fails(backend, path, globals) == message


def test_invalid_path_is_a_value_error(backend: ModuleType) -> None:
    with pytest.raises(ValueError):
        backend.parse_request("/a)")
    with pytest.raises(AOError):
        backend.parse_request("/a)")


# --- parity ---------------------------------------------------------------------------

_WORDS = (
    "a B k x1 / / ~ ~dev@1.0 & & = + ( ) ? %41 %2F %7E %2B %2 %zz %C3%A9 %FF é - 1 0. 1. 2. "
    '. , " \\ integer float list map atom binary resolve foo true %3F1'
)
_PIECES = st.sampled_from([*_WORDS.split(), " ", PID, ID3])
_PATHS = st.lists(_PIECES, max_size=24).map("".join)
_GLOBALS = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["host", "k", "path", "device", "0.g", "1.g", "2.g", "7.g", "x+integer"]),
        st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.none()),
        max_size=4,
    ),
)


def _outcome(backend: ModuleType, path: str, globals: Any) -> tuple[str, str]:
    try:
        return "ok", repr(backend.parse_request(path, globals))
    except InvalidPath as exc:
        return "InvalidPath", str(exc)


# both_backends only hands out the two modules: nothing to reset between examples
_STATELESS_FIXTURE = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@_STATELESS_FIXTURE
@given(path=_PATHS, globals=_GLOBALS)
def test_parity_pure_native(
    both_backends: tuple[ModuleType, ModuleType], path: str, globals: Any
) -> None:
    pure, native = both_backends
    assert _outcome(pure, path, globals) == _outcome(native, path, globals)


@_STATELESS_FIXTURE
@given(path=st.text(alphabet='ab~&=+ ()?%/19.,"é', max_size=40))
def test_parity_on_arbitrary_text(both_backends: tuple[ModuleType, ModuleType], path: str) -> None:
    pure, native = both_backends
    assert _outcome(pure, path, None) == _outcome(native, path, None)
