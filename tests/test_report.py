"""Tier 1: the CI report formats (junit, markdown) and their escaping of server text."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, TestSuite

from ncinfo_async._exceptions import NotFoundError, TimeoutError
from ncinfo_async._fanout import JobResult
from ncinfo_async._render import Summary, make_renderer
from ncinfo_async._report import MARKDOWN_ROWS, markdown_cell, xml_attr, xml_text


def job(job_id: int, status: str, **extra: object) -> JobResult:
    fields: dict[str, object] = {
        "ID": f"{job_id:09d}",
        "IDINT": job_id,
        "USER": "user07",
        "JOBNAME": "sim",
        "STATUSNC": status,
        "HOST": "lnx01a",
        "DURATION": 125,
        "DURATIONPP": "2m05s",
    }
    fields.update(extra)
    return JobResult(job_id, fields=fields)  # type: ignore[arg-type]


DONE = job(1, "Done")
FAILED = job(3, "Failed")
MISSING = JobResult(999999, error=NotFoundError("not found (no job with id 999999)", job_id=999999))
SLOW = JobResult(5, error=TimeoutError("no answer within the 120 s job budget", job_id=5))
# Everything a hostile or broken server could put in a field.
NASTY = "a|b\nc`d`<script>&amp;\x00\x1b[31m\x7f*_[x](y)~$ü\ud800\ufffe\"'"


def render(
    fmt: str,
    results: list[JobResult],
    fields: list[str] | None = None,
    *,
    fail_on: tuple[str, ...] = ("Failed",),
    summary: bool = False,
) -> str:
    renderer = make_renderer(fmt, fields, fail_on=fail_on)  # type: ignore[arg-type]
    total = Summary()
    parts = [renderer.start()]
    for result in results:
        total.add(result)
        parts.append(renderer.result(result))
    parts.append(renderer.finish(total if summary else None))
    return "".join(parts)


def test_junit_four_jobs_two_failures(tmp_path: Path) -> None:
    """A Done, a Queued, a Failed (--fail-on) and an unknown job: four testcases, two failures."""
    text = render("junit", [DONE, job(2, "Queued", DURATION=0), FAILED, MISSING])
    path = tmp_path / "report.xml"
    path.write_text(text)
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert isinstance(suite, TestSuite)
    assert (suite.tests, suite.failures, suite.errors) == (4, 2, 0)
    cases = list(suite)
    assert [case.name for case in cases] == ["job 1", "job 2", "job 3", "job 999999"]
    assert [case.classname for case in cases] == ["user07.sim"] * 3 + ["ncinfo"]
    assert [case.time for case in cases] == [125.0, 0.0, 125.0, None]
    outcomes = [[type(r).__name__ for r in case.result] for case in cases]
    assert outcomes == [[], [], ["Failure"], ["Failure"]]
    failed = cases[2].result[0]
    assert isinstance(failed, Failure)
    assert failed.message == "job 3 is Failed (--fail-on Failed)"
    assert failed.type == "fail-on"
    assert cases[3].result[0].type == "not_found"
    assert "STATUSNC        Failed\n" in (cases[2].system_out or "")
    assert suite.time == 250.0


def test_junit_counts_errors_apart_from_failures() -> None:
    """A job that could not be inspected is an <error> with its kind, not a <failure>."""
    root = ET.fromstring(render("junit", [DONE, SLOW]))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "1")
    error = root.find("testsuite/testcase[@name='job 5']/error")
    assert error is not None
    assert error.get("type") == "timeout"
    assert error.get("message") == "no answer within the 120 s job budget"


def test_junit_without_fail_on_a_failed_job_passes() -> None:
    """As with the exit status, a Failed job is a failure only when --fail-on names Failed."""
    root = ET.fromstring(render("junit", [FAILED], fail_on=()))
    assert root.find("testsuite/testcase/failure") is None
    assert root.get("failures") == "0"


def test_junit_escapes_everything_from_the_server(tmp_path: Path) -> None:
    """Markup, quotes, newlines and XML-forbidden characters keep the document well-formed."""
    hostile = job(7, NASTY, USER=NASTY, JOBNAME="j<1>", COMMAND=NASTY)
    error = JobResult(8, error=NotFoundError(NASTY, job_id=8))
    text = render("junit", [hostile, error], fail_on=(NASTY,))
    assert text.isascii()
    root = ET.fromstring(text)  # raises on any ill-formed byte
    case = root.find("testsuite/testcase[@name='job 7']")
    assert case is not None
    visible = NASTY.replace("\x00", "\\x00").replace("\x1b", "\\x1b")
    visible = visible.replace("\ud800", "\\ud800").replace("\ufffe", "\\ufffe")
    assert case.get("classname") == f"{visible}.j<1>"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == f"job 7 is {visible} (--fail-on {visible})"
    assert f"COMMAND         {visible}\n" in (case.findtext("system-out") or "")
    path = tmp_path / "hostile.xml"
    path.write_text(text)
    suite = next(iter(JUnitXml.fromfile(str(path))))
    assert [case.name for case in suite] == ["job 7", "job 8"]


def test_junit_fields_and_summary_properties() -> None:
    """--fields picks the system-out lines; --summary adds the counts as suite properties."""
    root = ET.fromstring(render("junit", [DONE, MISSING], ["id", "host"], summary=True))
    assert root.findtext("testsuite/testcase/system-out") == (
        "ID              000000001\nHOST            lnx01a\n"
    )
    properties = {
        p.get("name"): p.get("value") for p in root.iterfind("testsuite/properties/property")
    }
    assert properties["requested"] == "2"
    assert properties["status.Done"] == "1"
    assert properties["error.not_found"] == "1"


def test_junit_time_from_durationpp_or_none() -> None:
    """Without DURATION the time comes from DURATIONPP; without either there is no time."""
    pretty = JobResult(4, fields={"ID": "000000004", "STATUSNC": "Done", "DURATIONPP": "1h02m"})
    bare = JobResult(6, fields={"ID": "000000006", "STATUSNC": "Done"})
    root = ET.fromstring(render("junit", [pretty, bare]))
    times = [case.get("time") for case in root.iterfind("testsuite/testcase")]
    assert times == ["3720", None]


def test_junit_empty_run_is_a_valid_empty_suite() -> None:
    """No results still make one well-formed suite with zero tests."""
    root = ET.fromstring(render("junit", []))
    assert root.find("testsuite") is not None
    assert root.get("tests") == "0"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a|b", "a\\|b"),
        ("two\nlines", "two<br>lines"),
        ("cr\r\nlf", "cr<br>lf"),
        ("`code`", "\\`code\\`"),
        ("<img src=x>", "&lt;img src=x&gt;"),
        ("a&b", "a&amp;b"),
        ("*em* _em_ ~~s~~", "\\*em\\* \\_em\\_ \\~\\~s\\~\\~"),
        ("[link](http://x)", "\\[link\\](http://x)"),
        ("$x$", "\\$x\\$"),
        ("back\\slash", "back\\\\slash"),
        ("esc\x1b[0m", "esc\\\\x1b\\[0m"),
        ("tab\there", "tab here"),
        (None, ""),
        (42, "42"),
    ],
)
def test_markdown_cell_escaping(raw: object, escaped: str) -> None:
    """Server text in a table cell cannot end the cell, break the row, or become markup."""
    assert markdown_cell(raw) == escaped  # type: ignore[arg-type]


def test_markdown_cell_is_cut_to_its_limit() -> None:
    """A long value is cut to the documented number of characters, with an ellipsis."""
    assert markdown_cell("x" * 500, limit=10) == "x" * 9 + "…"


def test_xml_helpers() -> None:
    """Forbidden characters become visible escapes; attributes keep newlines as references."""
    assert xml_text("a<b>&\x01é") == "a&lt;b&gt;&amp;\\x01&#233;"
    assert xml_attr('say "hi"\nnow\t') == "'say \"hi\"&#10;now&#9;'"
    both = "'\"<&"
    assert ET.fromstring(f"<a b={xml_attr(both)}/>").get("b") == both


def test_markdown_report() -> None:
    """The Markdown report: counts per status and error kind, then the problem jobs."""
    assert render("markdown", [DONE, job(2, "Queued"), FAILED, MISSING, SLOW]) == (
        "## ncinfo: 5 jobs, 3 found, 2 with an error, 1 in a --fail-on status\n"
        "\n"
        "| NC status | jobs |\n"
        "|:--|--:|\n"
        "| Done | 1 |\n"
        "| Failed | 1 |\n"
        "| Queued | 1 |\n"
        "\n"
        "| error | jobs |\n"
        "|:--|--:|\n"
        "| not_found | 1 |\n"
        "| timeout | 1 |\n"
        "\n"
        "### Jobs in a --fail-on status or with an error (3)\n"
        "\n"
        "| job | STATUSNC | USER | JOBNAME | HOST | DURATIONPP | problem |\n"
        "|--:|:--|:--|:--|:--|:--|:--|\n"
        "| 3 | Failed | user07 | sim | lnx01a | 2m05s | --fail-on Failed |\n"
        "| 999999 |  |  |  |  |  | not\\_found: not found (no job with id 999999) |\n"
        "| 5 |  |  |  |  |  | timeout: no answer within the 120 s job budget |\n"
    )


def test_markdown_all_good_and_fields() -> None:
    """With no problem job the report says so; --fields picks the problem table's columns."""
    assert render("markdown", [DONE]).endswith(
        "| Done | 1 |\n\nNo job in a --fail-on status or with an error.\n"
    )
    text = render("markdown", [FAILED], ["id", "exit"])
    assert "| job | ID | EXIT | problem |\n" in text
    assert "| 3 | 000000003 |  | --fail-on Failed |\n" in text


def test_markdown_rows_are_capped() -> None:
    """Past the documented number of rows, the rest are counted in one line."""
    many = [JobResult(n, error=NotFoundError("gone", job_id=n)) for n in range(1, 81)]
    text = render("markdown", many)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "gone" in line]
    assert len(rows) == MARKDOWN_ROWS
    assert rows[-1].startswith(f"| {MARKDOWN_ROWS} |")
    assert text.endswith(f"\n{80 - MARKDOWN_ROWS} more not shown (at most {MARKDOWN_ROWS} rows).\n")


def test_markdown_hostile_text_stays_in_its_cell() -> None:
    """Server text with pipes and newlines leaves every row with the header's cell count."""
    text = render("markdown", [job(7, "Failed", USER=NASTY, HOST="a|b|c")])
    table = [line for line in text.splitlines() if line.startswith(("| job", "| 7"))]
    header, row = table
    # Unescaped pipes only: `\|` is part of a cell.
    assert row.replace("\\|", "").count("|") == header.count("|")
    assert "<script>" not in text
    assert "\x1b" not in text
    assert "\x00" not in text
