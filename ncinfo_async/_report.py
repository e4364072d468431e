"""CI report formats: JUnit XML (``--format junit``) and a Markdown summary (``--format markdown``).

Both are pure renderers like those of ``_render``; both hold something back until the end,
because what a CI server reads first (the suite's counts, the summary table) is known only
then.  JUnit holds the rendered testcases (one short string per job, bounded by the run);
Markdown holds the counts and at most ``MARKDOWN_ROWS`` table rows.

Everything that comes from the server is escaped for where it lands: XML text and
attributes (including the control characters XML 1.0 forbids, which no escape can carry,
so they are shown as ``\\xNN``), or a Markdown table cell (pipes, newlines, backticks,
emphasis and link characters, HTML).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Collection, Sequence
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from ._exceptions import NotFoundError
from ._protocol import JobResult, JsonValue
from ._render import Renderer, Summary, _text, _value

__all__ = [
    "MARKDOWN_CELL",
    "MARKDOWN_ROWS",
    "JunitRenderer",
    "MarkdownRenderer",
    "markdown_cell",
    "xml_attr",
    "xml_text",
]

#: Rows of the Markdown table of problem jobs; the rest are counted in one line below it.
#: GitHub caps a step summary at 1 MiB, and a merge-request comment is read, not searched.
MARKDOWN_ROWS: Final = 50
#: Characters of server text kept per Markdown cell (a job's command can be kilobytes).
MARKDOWN_CELL: Final = 120
#: The columns of the problem table when ``--fields`` does not name them.
MARKDOWN_FIELDS: Final = ("STATUSNC", "USER", "JOBNAME", "HOST", "DURATIONPP")

# XML 1.0 allows tab, newline, carriage return and U+0020 upward, except surrogates and
# U+FFFE/U+FFFF (XML 1.0 section 2.2, production [2] Char).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# C0 and C1 controls and DEL: invisible or harmful in a rendered table.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# Characters with an inline meaning in a GitHub/GitLab table cell (code, emphasis, links,
# strike-through, math, the cell's end); a backslash makes each literal (CommonMark: any
# ASCII punctuation may be backslash-escaped).  Block syntax (#, -, 1.) cannot start a cell.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")
_DURATION_PP = re.compile(r"(\d+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xml_text(text: str) -> str:
    """``text`` as XML character data: forbidden characters made visible, markup escaped.

    Non-ASCII characters become character references, so the document is ASCII and reads
    the same whatever the encoding of the stream it is written to.
    """
    cleaned = escape(_XML_FORBIDDEN.sub(_visible, text))
    return cleaned.encode("ascii", "xmlcharrefreplace").decode("ascii")


def xml_attr(text: str) -> str:
    """``text`` as a quoted XML attribute value (newlines and tabs kept as references)."""
    cleaned = quoteattr(
        _XML_FORBIDDEN.sub(_visible, text), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
    )
    return cleaned.encode("ascii", "xmlcharrefreplace").decode("ascii")


def markdown_cell(value: JsonValue, limit: int = MARKDOWN_CELL) -> str:
    """A value as one Markdown table cell: cut to ``limit`` characters, then escaped.

    Newlines become ``<br>`` (a cell is one line), HTML is shown as text, and every
    character that would start emphasis, code, a link or end the cell is backslashed.
    """
    text = _text(value).replace("\r\n", "\n").replace("\t", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _CONTROL.sub(_visible, text)  # newlines are not in it: they become <br> below
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))
    return text.replace("\n", "<br>")


def _seconds(fields: dict[str, JsonValue]) -> float | None:
    """A job's duration in seconds: ``DURATION``, else parsed from ``DURATIONPP``."""
    duration = fields.get("DURATION")
    if (
        isinstance(duration, int | float)
        and not isinstance(duration, bool)
        and math.isfinite(duration)
        and duration >= 0
    ):
        return float(duration)
    pretty = fields.get("DURATIONPP")
    if isinstance(pretty, str) and pretty:
        parts = _DURATION_PP.findall(pretty)
        if parts and "".join(n + u for n, u in parts) == pretty:
            return float(sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))
    return None


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.3f}"


def _status(fields: dict[str, JsonValue]) -> str:
    return str(fields.get("STATUSNC", fields.get("STATUS", "")))


class JunitRenderer(Renderer):
    """JUnit XML: one ``<testsuite>`` per run, one ``<testcase>`` per job.

    A job in a ``--fail-on`` status, or not found, is a ``<failure>``; a job that could
    not be inspected (timeout, HTTP error, deadline...) is an ``<error>``.  The job's
    fields go in ``<system-out>``, one ``%-16s`` line each as in the text format.  The
    counts are attributes of ``<testsuite>`` (and of the ``<testsuites>`` root), which come
    before the testcases, so the testcases are held until ``finish``.
    """

    shows_errors = True

    def __init__(self, fields: Sequence[str] | None, *, fail_on: Collection[str] = ()) -> None:
        super().__init__(fields)
        self._fail_on = {name.lower() for name in fail_on}
        self._fail_on_text = ",".join(fail_on)
        self._cases: list[str] = []
        self.failures = 0
        self.errors = 0
        self.seconds = 0.0

    def result(self, result: JobResult) -> str:
        self._cases.append(self._case(result))
        return ""

    def _case(self, result: JobResult) -> str:
        name = f"job {result.job_id}"
        if result.error is not None:
            error = result.error
            element = "failure" if isinstance(error, NotFoundError) else "error"
            if element == "failure":
                self.failures += 1
            else:
                self.errors += 1
            message, kind = xml_attr(error.message), xml_attr(error.kind)
            return (
                f'    <testcase name={xml_attr(name)} classname="ncinfo">\n'
                f"      <{element} message={message} type={kind}/>\n"
                "    </testcase>\n"
            )
        data = result.fields or {}
        user, jobname = _text(data.get("USER")), _text(data.get("JOBNAME"))
        classname = ".".join(part for part in (user, jobname) if part) or "ncinfo"
        attrs = f"name={xml_attr(name)} classname={xml_attr(classname)}"
        seconds = _seconds(data)
        if seconds is not None:
            self.seconds += seconds
            attrs += f' time="{_number(seconds)}"'
        body = ""
        status = _status(data)
        if status.lower() in self._fail_on:
            self.failures += 1
            message = f"job {result.job_id} is {status} (--fail-on {self._fail_on_text})"
            body += f'      <failure message={xml_attr(message)} type="fail-on"/>\n'
        body += f"      <system-out>{xml_text(self._fields_text(data))}</system-out>\n"
        return f"    <testcase {attrs}>\n{body}    </testcase>\n"

    def _fields_text(self, data: dict[str, JsonValue]) -> str:
        if self.fields is None or self.fields == ["*"]:
            items = [(name, _text(value)) for name, value in data.items()]
        else:
            items = [(name, _text(_value(data, name))) for name in self.fields]
        return "".join("%-16s%s\n" % item for item in items)  # noqa: UP031 (the text layout)

    def finish(self, summary: Summary | None) -> str:
        counts = (
            f'tests="{len(self._cases)}" failures="{self.failures}" errors="{self.errors}" '
            f'skipped="0" time="{_number(self.seconds)}"'
        )
        properties = ""
        if summary is not None:
            # --summary: the counts per NC status and per error kind, as suite properties.
            pairs = [("requested", summary.requested), ("found", summary.found)]
            pairs += [(f"status.{k or '?'}", v) for k, v in sorted(summary.by_status.items())]
            pairs += [(f"error.{k}", v) for k, v in sorted(summary.failed.items())]
            pairs += [("duplicates", summary.duplicates), ("malformed_lines", summary.malformed)]
            properties = (
                "    <properties>\n"
                + "".join(f'      <property name={xml_attr(k)} value="{v}"/>\n' for k, v in pairs)
                + "    </properties>\n"
            )
        cases, self._cases = "".join(self._cases), []
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites name="ncinfo" {counts}>\n'
            f'  <testsuite name="ncinfo" {counts}>\n'
            f"{properties}{cases}"
            "  </testsuite>\n"
            "</testsuites>\n"
        )


class MarkdownRenderer(Renderer):
    """A Markdown report for ``$GITHUB_STEP_SUMMARY`` or a merge-request comment.

    A table of counts per NC status, one per error kind, and a table of the jobs in a
    ``--fail-on`` status or with an error (of any kind, not found included), at most
    ``MARKDOWN_ROWS`` rows in input order.  The counts are always part of it, so
    ``--summary`` adds nothing.
    """

    shows_errors = True

    def __init__(self, fields: Sequence[str] | None, *, fail_on: Collection[str] = ()) -> None:
        super().__init__(fields)
        self.columns = list(self.fields or MARKDOWN_FIELDS)
        self._fail_on = {name.lower() for name in fail_on}
        self._fail_on_text = ",".join(fail_on)
        self._counts = Summary()
        self._rows: list[str] = []
        self.problems = 0

    def result(self, result: JobResult) -> str:
        self._counts.add(result)
        data = result.fields or {}
        if result.error is not None:
            problem = f"{result.error.kind}: {result.error.message}"
        elif _status(data).lower() in self._fail_on:
            problem = f"--fail-on {self._fail_on_text}"
        else:
            return ""
        self.problems += 1
        if len(self._rows) < MARKDOWN_ROWS:
            cells = [str(result.job_id)]
            cells += [markdown_cell(_value(data, name)) for name in self.columns]
            cells.append(markdown_cell(problem))
            self._rows.append("| " + " | ".join(cells) + " |\n")
        return ""

    def finish(self, summary: Summary | None) -> str:
        counts = self._counts
        errors = sum(counts.failed.values())
        fail_on = sum(
            n for status, n in counts.by_status.items() if status.lower() in self._fail_on
        )
        text = (
            f"## ncinfo: {counts.requested} jobs, {counts.found} found, "
            f"{errors} with an error, {fail_on} in a --fail-on status\n\n"
        )
        if counts.by_status:
            text += "| NC status | jobs |\n|:--|--:|\n"
            text += "".join(
                f"| {markdown_cell(status or '?')} | {n} |\n"
                for status, n in sorted(counts.by_status.items())
            )
            text += "\n"
        if counts.failed:
            text += "| error | jobs |\n|:--|--:|\n"
            text += "".join(f"| {kind} | {n} |\n" for kind, n in sorted(counts.failed.items()))
            text += "\n"
        if not self.problems:
            return text + "No job in a --fail-on status or with an error.\n"
        header = ["job", *(markdown_cell(name) for name in self.columns), "problem"]
        text += f"### Jobs in a --fail-on status or with an error ({self.problems})\n\n"
        text += "| " + " | ".join(header) + " |\n"
        text += "|--:|" + ":--|" * (len(header) - 1) + "\n"
        text += "".join(self._rows)
        if self.problems > len(self._rows):
            hidden = self.problems - len(self._rows)
            text += f"\n{hidden} more not shown (at most {MARKDOWN_ROWS} rows).\n"
        return text
