"""The FastAGI wire format: quoting, the environment, the route and the replies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agi.protocol import (
    FIELD_SEPARATOR,
    MAX_VALUE_BYTES,
    AgiProtocolError,
    get_full_variables,
    is_token,
    mset,
    parse_env,
    parse_reply,
    quote,
    route_of,
    set_variable,
    single_line,
    split_fields,
    unquote,
)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        pytest.param("allow", '"allow"', id="plain"),
        pytest.param("", '""', id="empty"),
        pytest.param("two words", '"two words"', id="spaces"),
        pytest.param('say "hi"', '"say \\"hi\\""', id="quotes"),
        pytest.param("C:\\calls\\", '"C:\\\\calls\\\\"', id="backslashes"),
        pytest.param("a\nb", '"a\\\\nb"', id="newline-becomes-backslash-n"),
        pytest.param("a\r\nb", '"a\\\\nb"', id="crlf-is-one-line-break"),
        pytest.param("a\tb\x00c", '"a b c"', id="tab-and-controls-become-spaces"),
        pytest.param("号码在免打扰名单", '"号码在免打扰名单"', id="chinese"),
        pytest.param("${EVIL}", '"${EVIL}"', id="no-expansion-needed"),
    ],
)
def test_quote(value: str, quoted: str) -> None:
    assert quote(value) == quoted


def test_quote_never_emits_a_line_break() -> None:
    assert "\n" not in quote("one\ntwo\rthree\r\n")


def test_quote_caps_long_values_without_cutting_a_character() -> None:
    quoted = quote("中" * 1000)  # 3,000 bytes of UTF-8
    body = unquote(quoted)
    assert len(body.encode("utf-8")) <= MAX_VALUE_BYTES
    assert set(body) == {"中"}


@given(st.text(max_size=200))
def test_what_asterisk_reads_back_is_the_single_line_value(value: str) -> None:
    assert unquote(quote(value)) == single_line(value)


def test_set_variable_line() -> None:
    assert set_variable("OUTGUARD_MESSAGE", 'he said "no"') == \
        'SET VARIABLE OUTGUARD_MESSAGE "he said \\"no\\""'


@pytest.mark.parametrize("name", ["", "1X", "A B", 'X"', "X\nY"])
def test_set_variable_refuses_names_that_would_break_the_command(name: str) -> None:
    with pytest.raises(ValueError):
        set_variable(name, "v")


def test_get_full_variables_joins_with_the_separator() -> None:
    line = get_full_variables(("A", "B"))
    assert line == f'GET FULL VARIABLE "${{A}}{FIELD_SEPARATOR}${{B}}"'


@pytest.mark.parametrize(
    ("value", "count", "expected"),
    [
        pytest.param(f"a1{FIELD_SEPARATOR}t1{FIELD_SEPARATOR}{FIELD_SEPARATOR}", 4,
                     ["a1", "t1", "", ""], id="some-empty"),
        pytest.param(None, 2, ["", ""], id="unset"),
        pytest.param(f"a{FIELD_SEPARATOR}b{FIELD_SEPARATOR}c", 2, None,
                     id="separator-inside-a-value-asks-again"),
    ],
)
def test_split_fields(value: str | None, count: int, expected: list[str] | None) -> None:
    assert split_fields(value, count) == expected


ENV = (
    b"agi_network: yes\n"
    b"agi_network_script: screen?mode=fast\n"
    b"agi_request: agi://127.0.0.1:4573/screen?mode=fast\n"
    b"agi_channel: PJSIP/agent-agi-00000001\n"
    b"agi_uniqueid: 1795400932.0\n"
    b"agi_callerid: 01088886666\n"
    b"agi_calleridname: \xe5\xbc\xa0\xe4\xb8\x89\n"
    b"agi_extension: 13800138000\n"
    b"agi_accountcode: \n"
    b"agi_arg_1: 13800138000\n"
    b"agi_arg_2: bridge\n"
    b"\n"
)


def test_parse_env_reads_the_request() -> None:
    req = parse_env(ENV)
    assert req.route == "screen"
    assert req.query == {"mode": "fast"}
    assert req.channel == "PJSIP/agent-agi-00000001"
    assert req.uniqueid == "1795400932.0"
    assert req.caller_id == "01088886666"
    assert req.env["agi_calleridname"] == "张三"
    assert req.env["agi_accountcode"] == ""
    assert req.args == ["13800138000", "bridge"]
    assert req.dialed == "13800138000"


def test_dialed_falls_back_to_the_extension_and_unknown_caller_id_is_empty() -> None:
    req = parse_env(b"agi_network_script: screen\nagi_extension: 10086\n"
                    b"agi_callerid: unknown\n\n")
    assert req.dialed == "10086"
    assert req.caller_id == ""


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b"GET / HTTP/1.1\nHost: x\n\n", id="http"),
        pytest.param(b"agi_network: yes\n\n", id="no-script"),
        pytest.param(b"agi_network_script screen\n\n", id="no-colon"),
    ],
)
def test_parse_env_rejects_what_is_not_agi(block: bytes) -> None:
    with pytest.raises(AgiProtocolError):
        parse_env(block)


@pytest.mark.parametrize(
    ("script", "route", "query"),
    [
        ("screen", "screen", {}),
        ("/screen/", "screen", {}),
        ("screen?mode=fast&x=1", "screen", {"mode": "fast", "x": "1"}),
        ("screen?", "screen", {}),
        ("screem", "screem", {}),
        ("", "", {}),
    ],
)
def test_route_of(script: str, route: str, query: dict[str, str]) -> None:
    assert route_of(script) == (route, query)


@pytest.mark.parametrize(
    ("line", "code", "result", "value", "ok"),
    [
        ("200 result=1", 200, "1", "", True),
        ("200 result=0", 200, "0", None, True),
        ("200 result=1 (acc 1)", 200, "1", "acc 1", True),
        ("200 result=1 (hangup)", 200, "1", "hangup", True),  # a value, not a hangup
        ("200 result=1 (a (b) = c)", 200, "1", "a (b) = c", True),
        ("200 result=1 (中文 \"x\")\n", 200, "1", '中文 "x"', True),
        ("200 result=-1", 200, "-1", None, False),
        ("200 result=0 endpos=1234", 200, "0", None, True),
        ("510 Invalid or unknown command", 510, "", None, False),
        ("511 Command Not Permitted on a dead channel or intercepted", 511, "", None, False),
    ],
)
def test_parse_reply(
    line: str, code: int, result: str, value: str | None, ok: bool
) -> None:
    reply = parse_reply(line)
    assert (reply.code, reply.result, reply.value, reply.ok) == (code, result, value, ok)


def test_parse_reply_rejects_garbage() -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply("HELLO")


def test_mset_sets_tokens_in_one_command_in_order() -> None:
    assert mset({"OUTGUARD_REASON": "ok", "OUTGUARD_RULE": "", "OUTGUARD_VERDICT": "allow"}) \
        == 'EXEC MSet "OUTGUARD_REASON=ok,OUTGUARD_RULE=,OUTGUARD_VERDICT=allow"'


@pytest.mark.parametrize("value", ["a,b", 'a"b', "a b", "a\\b", "a|b", "中"])
def test_mset_refuses_what_is_not_a_token(value: str) -> None:
    assert not is_token(value)
    with pytest.raises(ValueError):
        mset({"OUTGUARD_RULE": value})
