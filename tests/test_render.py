"""Tier 1: every output format, golden-tested against exact strings and read back."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ncinfo_async._exceptions import NotFoundError
from ncinfo_async._fanout import JobResult
from ncinfo_async._render import FORMATS, Summary, make_renderer

JOB = JobResult(
    1138,
    fields={
        "ID": "000001138",
        "IDINT": 1138,
        "USER": "user99",
        "GROUP": "/time/users.user99",
        "COMMAND": "vw sleep 123 > vnc_logs/20211012/132628.122875",
        "STATUSNC": "Running",
        "HOST": "myhost",
        "DURATIONPP": "31s",
        "PRIORITY": 4,
    },
)
MISSING = JobResult(9, error=NotFoundError("not found (no job with id 9)", job_id=9, status=404))


def render(
    fmt: str, results: list[JobResult], fields: list[str] | None = None, *, summary: bool = False
) -> str:
    renderer = make_renderer(fmt, fields)  # type: ignore[arg-type]
    total = Summary()
    parts = [renderer.start()]
    for result in results:
        total.add(result)
        parts.append(renderer.result(result))
    parts.append(renderer.finish(total if summary else None))
    return "".join(parts)


def test_text_is_the_seed_layout() -> None:
    """The text format is what the documented nc_info.py prints, byte for byte."""
    assert render("text", [JOB, MISSING]) == (
        "Job             000001138\n"
        "User,Group      user99,/time/users.user99\n"
        "Command         vw sleep 123 > vnc_logs/20211012/132628.122875\n"
        "Status          Running\n"
        " Host           myhost\n"
        " Duration       31s\n"
        "\n"
    )


def test_text_with_fields_and_summary() -> None:
    """--fields lists the chosen fields with the same 16-column labels; --summary follows."""
    assert render("text", [JOB, MISSING], ["id", "priority", "nosuch"], summary=True) == (
        "ID              000001138\n"
        "PRIORITY        4\n"
        "NOSUCH          \n"
        "\n"
        "Summary: 2 jobs, 1 found, 1 failed\n"
        " Status         Running 1\n"
        " Errors         not_found 1\n"
    )


def test_ndjson_one_object_per_result() -> None:
    """ndjson has one line per result, errors included, readable by json."""
    out = render("ndjson", [JOB, MISSING], ["ID", "STATUSNC"])
    assert out == (
        '{"id":1138,"ok":true,"fields":{"ID":"000001138","STATUSNC":"Running"}}\n'
        '{"id":9,"ok":false,"error":{"kind":"not_found","message":"not found (no job with id 9)",'
        '"status":404}}\n'
    )
    assert [json.loads(line)["ok"] for line in out.splitlines()] == [True, False]


def test_json_document_with_summary() -> None:
    """json is one document with every result and, on request, the summary."""
    doc = json.loads(render("json", [JOB, MISSING], summary=True))
    assert [item["id"] for item in doc["results"]] == [1138, 9]
    assert doc["results"][0]["fields"]["PRIORITY"] == 4  # all fields by default
    assert doc["summary"]["by_status"] == {"Running": 1}
    assert doc["summary"]["failed_by_kind"] == {"not_found": 1}


def test_json_with_no_results_is_still_a_document() -> None:
    """An empty run still prints valid JSON."""
    assert json.loads(render("json", [])) == {"results": []}


def test_csv_reads_back() -> None:
    """CSV has a header of the seed's fields and quotes what needs quoting."""
    tricky = JobResult(5, fields={"ID": "000000005", "COMMAND": 'echo "a,b"\nnext'})
    out = render("csv", [JOB, MISSING, tricky])
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == "ID,USER,GROUP,COMMAND,STATUSNC,HOST,DURATIONPP"
    assert [row["ID"] for row in rows] == ["000001138", "000000005"]
    assert rows[1]["COMMAND"] == 'echo "a,b"\nnext'


def test_table_aligns_columns() -> None:
    """The table format pads columns to the widest value seen in its sample."""
    out = render("table", [JOB, MISSING], ["ID", "STATUSNC", "HOST"])
    assert out == ("ID         STATUSNC  HOST\n000001138  Running   myhost\n")


ERROR_ONLY = {
    "text": "",
    "ndjson": '{"id":9,"ok":false,"error":{"kind":"not_found",'
    '"message":"not found (no job with id 9)","status":404}}\n',
    "json": '{"results": [\n{"id":9,"ok":false,"error":{"kind":"not_found",'
    '"message":"not found (no job with id 9)","status":404}}\n]}\n',
    "csv": "ID,USER,GROUP,COMMAND,STATUSNC,HOST,DURATIONPP\n",
    "table": "ID  USER  GROUP  COMMAND  STATUSNC  HOST  DURATIONPP\n",
    "junit": '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<testsuites name="ncinfo" tests="1" failures="1" errors="0" skipped="0" time="0">\n'
    '  <testsuite name="ncinfo" tests="1" failures="1" errors="0" skipped="0" time="0">\n'
    '    <testcase name="job 9" classname="ncinfo">\n'
    '      <failure message="not found (no job with id 9)" type="not_found"/>\n'
    "    </testcase>\n  </testsuite>\n</testsuites>\n",
    "markdown": "## ncinfo: 1 jobs, 0 found, 1 with an error, 0 in a --fail-on status\n\n"
    "| error | jobs |\n|:--|--:|\n| not_found | 1 |\n\n"
    "### Jobs in a --fail-on status or with an error (1)\n\n"
    "| job | STATUSNC | USER | JOBNAME | HOST | DURATIONPP | problem |\n"
    "|--:|:--|:--|:--|:--|:--|:--|\n"
    "| 9 |  |  |  |  |  | not\\_found: not found (no job with id 9) |\n",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_an_error_only_run(fmt: str) -> None:
    """When every job failed: the error where the format carries errors, else only a header."""
    assert render(fmt, [MISSING]) == ERROR_ONLY[fmt]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("fields", [None, ["id", "statusnc", "priority"], ["*"]])
def test_a_batch_renders_as_its_results_one_by_one(fmt: str, fields: list[str] | None) -> None:
    """`results(batch)` writes exactly what `result` writes for each, in every format."""
    quoted = JobResult(7, fields={**(JOB.fields or {}), "COMMAND": 'say "a,b"\nbye', "IDINT": 7})
    batch = [JOB, MISSING, quoted, JOB]
    one_by_one = make_renderer(fmt, fields)  # type: ignore[arg-type]
    batched = make_renderer(fmt, fields)  # type: ignore[arg-type]
    expected = one_by_one.start() + "".join(one_by_one.result(r) for r in batch)
    assert batched.start() + batched.results(batch) == expected
    assert batched.finish(None) == one_by_one.finish(None)


def test_summary_counts_a_batch_as_its_results() -> None:
    """Summary.add_all counts found, failed by kind and status exactly as add does."""
    batch = [JOB, MISSING, JOB]
    total = Summary()
    total.add_all(batch)
    assert (total.requested, total.found) == (3, 2)
    assert dict(total.failed) == {"not_found": 1}
    assert dict(total.by_status) == {"Running": 2}
