"""Tier 1: boundaries of the pure core that the golden tests do not reach.

Each test pins a limit or a count a mutation of the code would move: the renew instant of a
token, the 4 KiB line limit, the 100-row table sample, summary counts above one.
"""

from __future__ import annotations

import asyncio

import pytest

from ncinfo_async._auth import TokenManager
from ncinfo_async._exceptions import InputError, NotFoundError, TimeoutError
from ncinfo_async._ids import MAX_LINE_BYTES, LineParser, Malformed, parse_job_id
from ncinfo_async._protocol import JobResult, Token
from ncinfo_async._render import TABLE_SAMPLE, Summary, make_renderer

# Coroutines, but no socket or process: part of the fast tier (and of the mutation run).
pytestmark = pytest.mark.pure

# -- token renewal -------------------------------------------------------------------------


class Clock:
    """Epoch seconds moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def issuing(clock: Clock, lifetime: float | None) -> tuple[list[int], TokenManager]:
    """A manager whose token source issues tokens living `lifetime` seconds; and its call log."""
    calls: list[int] = []

    async def fetch() -> Token:
        calls.append(1)
        expires = None if lifetime is None else clock.now + lifetime
        return Token("Bearer", f"t{len(calls)}", expires)

    return calls, TokenManager(fetch, margin=10.0, clock=clock)


@pytest.mark.asyncio
async def test_renewal_happens_exactly_at_exp_minus_margin() -> None:
    """The token is reused until exp - margin and renewed at that very instant."""
    clock = Clock()
    calls, manager = issuing(clock, 100.0)
    assert manager.requests == 0
    token, generation = await manager.current()
    assert (token.access_token, generation, manager.requests) == ("t1", 1, 1)
    clock.now = 1000.0 + 100 - 10 - 0.001
    assert (await manager.current())[0].access_token == "t1"
    clock.now = 1000.0 + 100 - 10
    token, generation = await manager.current()
    assert (token.access_token, generation, manager.requests, len(calls)) == ("t2", 2, 2, 2)


@pytest.mark.asyncio
async def test_renew_counts_each_token_request_once() -> None:
    """`requests` counts token requests: one per real renewal, none for a stale generation."""
    clock = Clock()
    _, manager = issuing(clock, None)
    _, first = await manager.current()
    await manager.renew(first)
    await manager.renew(first)  # already replaced: no request
    assert manager.requests == 2
    _, third = await manager.renew(first + 1)
    assert (manager.requests, third) == (3, 3)


@pytest.mark.asyncio
@pytest.mark.parametrize("lifetime", [0.0, -5.0])
async def test_an_already_expired_token_is_used_until_refused(lifetime: float) -> None:
    """A token whose exp is now or past (clock skew) is not renewed on every request."""
    clock = Clock()
    calls, manager = issuing(clock, lifetime)
    await manager.current()
    await manager.current()
    assert len(calls) == 1


@pytest.mark.asyncio
async def test_a_one_second_token_is_renewed_in_its_last_quarter() -> None:
    """A 1 s token is renewed 0.25 s before exp (a quarter of its life), not used to the end."""
    clock = Clock()
    calls, manager = issuing(clock, 1.0)
    await manager.current()
    clock.now += 0.74
    await manager.current()
    assert len(calls) == 1
    clock.now += 0.02
    await manager.current()
    assert len(calls) == 2


@pytest.mark.asyncio
async def test_concurrent_first_requests_share_one_token() -> None:
    """Many tasks asking for the first token at once cause one token request."""
    clock = Clock()
    calls, manager = issuing(clock, 100.0)
    tokens = await asyncio.gather(*(manager.current() for _ in range(20)))
    assert len(calls) == 1
    assert {token.access_token for token, _ in tokens} == {"t1"}


# -- job IDs -------------------------------------------------------------------------------


def test_bad_tokens_are_quoted_whole_up_to_40_characters() -> None:
    """A bad token of 40 characters is shown whole; a longer one is cut to 37 and '...'."""
    forty = "x" * 40
    with pytest.raises(InputError) as info:
        parse_job_id(forty)
    assert info.value.message == f"not a job ID (expected digits): {forty!r}"
    with pytest.raises(InputError) as info:
        parse_job_id("y" * 41)
    assert info.value.message == f"not a job ID (expected digits): {'y' * 37 + '...'!r}"


def test_a_line_of_exactly_4_kib_is_parsed() -> None:
    """The line limit is inclusive: 4096 bytes are read, 4097 are malformed."""
    parser = LineParser()
    assert parser.feed(b"7" + b" " * (MAX_LINE_BYTES - 1)) == 7
    assert parser.feed(b"8" + b" " * MAX_LINE_BYTES) == Malformed(
        2, f"line longer than {MAX_LINE_BYTES} bytes"
    )


@pytest.mark.parametrize(
    ("first_line", "skipped"),
    [
        (b"ID STATUS COMMAND", True),
        (b"A b", True),
        (b"abc1 def", False),  # a digit: not a header
        (b"-x y", False),  # starts with a symbol: not a header
        (b"stage2 running", False),
    ],
)
def test_a_header_is_a_first_line_of_words_only(first_line: bytes, skipped: bool) -> None:
    """Only a first line that starts with a letter and has no digit is a header."""
    outcome = LineParser().feed(first_line)
    if skipped:
        assert outcome is None
    else:
        assert isinstance(outcome, Malformed)


# -- renderers -----------------------------------------------------------------------------

RUNNING = JobResult(1, fields={"ID": "000000001", "STATUSNC": "Running", "TAGS": ["a", "b"]})
DONE = JobResult(2, fields={"ID": "000000002", "STATUSNC": "Done", "HOST": None})
OLD = JobResult(3, fields={"ID": "000000003", "STATUS": "VALID"})
BLANK = JobResult(4, fields={"ID": "000000004"})
LOST = JobResult(9, error=NotFoundError("not found", job_id=9))
SLOW = JobResult(10, error=TimeoutError("timed out", job_id=10))


def summary_of(*results: JobResult) -> Summary:
    """A summary fed with the results."""
    summary = Summary(duplicates=2, malformed=3)
    for result in results:
        summary.add(result)
    return summary


def test_summary_counts_every_result() -> None:
    """Counts above one, the STATUS fallback, an empty status, each error kind; exact keys."""
    summary = summary_of(RUNNING, RUNNING, DONE, OLD, BLANK, LOST, LOST, SLOW)
    assert summary.as_dict() == {
        "requested": 8,
        "found": 5,
        "failed": 3,
        "failed_by_kind": {"not_found": 2, "timeout": 1},
        "by_status": {"": 1, "Done": 1, "Running": 2, "VALID": 1},
        "duplicates": 2,
        "malformed_lines": 3,
    }
    assert summary.lines() == (
        "Summary: 8 jobs, 5 found, 3 failed\n"
        " Status         ? 1, Done 1, Running 2, VALID 1\n"
        " Errors         not_found 2, timeout 1\n"
    )


def test_text_with_every_field() -> None:
    """--fields '*' prints every field the server sent, in its order, one per line."""
    out = make_renderer("text", ["*"]).result(DONE)
    assert out == "ID              000000002\nSTATUSNC        Done\nHOST            None\n\n"


def test_json_with_fields_and_results() -> None:
    """json keeps only the chosen fields and closes the list on its own line after results."""
    renderer = make_renderer("json", ["statusnc"])
    out = renderer.start() + renderer.result(RUNNING) + renderer.result(LOST)
    out += renderer.finish(None)
    assert out == (
        '{"results": [\n'
        '{"id":1,"ok":true,"fields":{"STATUSNC":"Running"}},\n'
        '{"id":9,"ok":false,"error":{"kind":"not_found","message":"not found"}}\n'
        "]}\n"
    )


def test_csv_cells_and_line_ends() -> None:
    """CSV lines end with a bare newline; null is empty and lists are compact JSON."""
    renderer = make_renderer("csv", ["id", "host", "tags"])
    out = renderer.start() + renderer.result(RUNNING) + renderer.result(DONE)
    assert out == 'ID,HOST,TAGS\n000000001,,"[""a"",""b""]"\n000000002,,\n'


def test_table_fixes_widths_at_the_100th_row() -> None:
    """The table holds rows until the 100th, prints them aligned, then one line per row."""
    renderer = make_renderer("table", ["id", "statusnc"])
    rows = [JobResult(n, fields={"ID": str(n), "STATUSNC": "Done"}) for n in range(1, 102)]
    outputs = [renderer.result(row) for row in rows]
    assert outputs[: TABLE_SAMPLE - 1] == [""] * (TABLE_SAMPLE - 1)
    head = outputs[TABLE_SAMPLE - 1].splitlines()
    assert head[0] == "ID   STATUSNC"
    assert head[1:3] == ["1    Done", "2    Done"]
    assert len(head) == TABLE_SAMPLE + 1
    assert outputs[TABLE_SAMPLE] == "101  Done\n"
    summary = summary_of(*rows)
    assert renderer.finish(summary) == summary.lines()
    assert renderer.result(LOST) == ""


def test_table_of_few_rows_prints_them_at_the_end() -> None:
    """Fewer rows than the sample are printed, aligned, by finish."""
    renderer = make_renderer("table", ["id"])
    assert renderer.result(RUNNING) == ""
    assert renderer.finish(None) == "ID\n000000001\n"


def test_json_of_no_results_is_an_empty_list() -> None:
    """With no result at all the document is exactly an empty results list."""
    renderer = make_renderer("json", None)
    assert renderer.start() + renderer.finish(None) == '{"results": []}\n'
