"""Output formats, as pure streaming renderers: each turns results into text as they arrive.

A renderer has three steps: ``start()`` before the first result, ``result(r)`` for each, and
``finish(summary)`` at the end; each returns the text to write (possibly empty).  None of them
does I/O, so each format is golden-tested against exact strings.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import orjson

from ._escape import escape_text
from ._protocol import SEED_FIELDS, JobResult, JsonValue

__all__ = ["FORMATS", "Renderer", "Summary", "make_renderer"]

Format = Literal["text", "json", "ndjson", "csv", "table", "junit", "markdown"]
FORMATS: Final[tuple[Format, ...]] = (
    "text",
    "json",
    "ndjson",
    "csv",
    "table",
    "junit",
    "markdown",
)

#: Rows the table format reads before fixing its column widths.
TABLE_SAMPLE: Final = 100


def _compact(value: object) -> str:
    """Compact JSON (no spaces), as text.  orjson encodes a job row about eight times
    faster than the json module, which dominated --batch runs' per-row cost."""
    return orjson.dumps(value).decode()


@dataclass(slots=True)
class Summary:
    """Counts of a run: what was asked, found, failed, and in which job status.

    Attributes:
        requested: distinct IDs that got a result.
        found: jobs answered with data.
        failed: per-job errors by kind (``not_found``, ``timeout``...).
        by_status: found jobs by their ``STATUSNC`` (the NC status name).
        duplicates: repeated IDs that were fetched once.
        malformed: input lines that held no job ID.
    """

    requested: int = 0
    found: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    malformed: int = 0

    def add(self, result: JobResult) -> None:
        """Count one result."""
        self.add_all((result,))

    def add_all(self, results: Sequence[JobResult]) -> None:
        """Count a batch of results."""
        self.requested += len(results)
        by_status = self.by_status
        for result in results:
            if result.error is not None:
                self.failed[result.error.kind] += 1
            else:
                self.found += 1
                fields = result.fields or {}
                by_status[str(fields.get("STATUSNC", fields.get("STATUS", "")))] += 1

    def as_dict(self) -> dict[str, JsonValue]:
        """A JSON-ready view, keys sorted for stable output."""
        return {
            "requested": self.requested,
            "found": self.found,
            "failed": sum(self.failed.values()),
            "failed_by_kind": dict(sorted(self.failed.items())),
            "by_status": dict(sorted(self.by_status.items())),
            "duplicates": self.duplicates,
            "malformed_lines": self.malformed,
        }

    def lines(self) -> str:
        """A short human-readable block (status names are the server's: controls escaped)."""
        statuses = ", ".join(
            f"{escape_text(name) or '?'} {count}" for name, count in sorted(self.by_status.items())
        )
        failed = ", ".join(f"{kind} {count}" for kind, count in sorted(self.failed.items()))
        failures = sum(self.failed.values())
        text = f"Summary: {self.requested} jobs, {self.found} found, {failures} failed\n"
        if statuses:
            text += f" Status         {statuses}\n"
        if failed:
            text += f" Errors         {failed}\n"
        return text


def _value(fields: dict[str, JsonValue], name: str) -> JsonValue:
    """A field by (upper-case) name; a field the server did not send renders as empty,
    as vovselect renders a field that does not apply (REST ref §4.2)."""
    return fields.get(name.upper(), "")


def _text(value: JsonValue) -> str:
    """A value as a CSV/table cell."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return _compact(value)
    return str(value)


def _safe(value: object) -> str:
    """A value as ``%s`` shows it, with terminal controls escaped (text and table formats)."""
    return escape_text("%s" % (value,))


def result_object(result: JobResult, fields: Sequence[str] | None) -> dict[str, JsonValue]:
    """The JSON object for one result, shared by the json and ndjson formats."""
    if result.error is not None:
        error: dict[str, JsonValue] = {"kind": result.error.kind, "message": result.error.message}
        if result.error.status is not None:
            error["status"] = result.error.status
        return {"id": result.job_id, "ok": False, "error": error}
    data = result.fields or {}
    chosen = data if fields is None else {name.upper(): _value(data, name) for name in fields}
    return {"id": result.job_id, "ok": True, "fields": chosen}


class Renderer:
    """Base renderer: formats emit nothing at start and finish unless they override it.

    Args:
        fields: the fields to show, or None for the format's default (the seed's fields;
            all fields the server sent for json/ndjson).
    """

    #: Whether per-job errors are part of this format's output (else only on stderr).
    shows_errors = False

    def __init__(self, fields: Sequence[str] | None) -> None:
        self.fields = None if fields is None else [name.upper() for name in fields]

    def start(self) -> str:
        """Text before the first result."""
        return ""

    def result(self, result: JobResult) -> str:
        """Text for one result."""
        raise NotImplementedError

    def results(self, batch: Sequence[JobResult]) -> str:
        """Text for a batch of results: the same as ``result`` for each, joined."""
        return "".join([self.result(result) for result in batch])

    def finish(self, summary: Summary | None) -> str:
        """Text after the last result; ``summary`` when a summary was asked for."""
        return summary.lines() if summary is not None else ""


class TextRenderer(Renderer):
    """The seed ``nc_info.py`` layout: ``%-16s`` labels and a blank line after each job.

    Names and values are the server's text, shown on a terminal: controls are escaped.
    """

    def result(self, result: JobResult) -> str:
        if result.fields is None:
            return ""
        data = result.fields
        if self.fields == ["*"]:
            return "".join("%-16s%s\n" % (_safe(k), _safe(v)) for k, v in data.items()) + "\n"
        if self.fields is not None:
            return (
                "".join("%-16s%s\n" % (name, _safe(_value(data, name))) for name in self.fields)
                + "\n"
            )
        # Byte for byte what the seed prints, labels and '%s' formatting of JSON values included.
        return (
            "%-16s%s\n" % ("Job", _safe(_value(data, "ID")))
            + "%-16s%s,%s\n"
            % ("User,Group", _safe(_value(data, "USER")), _safe(_value(data, "GROUP")))
            + "%-16s%s\n" % ("Command", _safe(_value(data, "COMMAND")))
            + "%-16s%s\n" % ("Status", _safe(_value(data, "STATUSNC")))
            + "%-16s%s\n" % (" Host", _safe(_value(data, "HOST")))
            + "%-16s%s\n" % (" Duration", _safe(_value(data, "DURATIONPP")))
            + "\n"
        )


class NdjsonRenderer(Renderer):
    """One JSON object per line per result; errors included (``"ok": false``)."""

    shows_errors = True

    def result(self, result: JobResult) -> str:
        return _compact(result_object(result, self.fields)) + "\n"

    def results(self, batch: Sequence[JobResult]) -> str:
        # One decode per batch instead of one per line: bulk runs write thousands of lines.
        dumps, fields, newline = orjson.dumps, self.fields, orjson.OPT_APPEND_NEWLINE
        return b"".join(
            [dumps(result_object(result, fields), option=newline) for result in batch]
        ).decode()

    def finish(self, summary: Summary | None) -> str:
        return ""  # a summary line would not be a result; the CLI sends it to stderr


class JsonRenderer(Renderer):
    """One JSON document: ``{"results": [...], "summary": {...}}``, streamed item by item."""

    shows_errors = True

    def __init__(self, fields: Sequence[str] | None) -> None:
        super().__init__(fields)
        self._first = True

    def start(self) -> str:
        return '{"results": ['

    def result(self, result: JobResult) -> str:
        separator = "\n" if self._first else ",\n"
        self._first = False
        return separator + _compact(result_object(result, self.fields))

    def finish(self, summary: Summary | None) -> str:
        tail = "\n]" if not self._first else "]"
        if summary is not None:
            tail += ',\n"summary": ' + _compact(summary.as_dict())
        return tail + "}\n"


class CsvRenderer(Renderer):
    """RFC 4180 CSV with a header row of field names; found jobs only."""

    def __init__(self, fields: Sequence[str] | None) -> None:
        super().__init__(fields)
        self.columns = [name.upper() for name in (fields or SEED_FIELDS)]

    def _rows(self, rows: Iterable[Sequence[str]]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()

    def start(self) -> str:
        return self._rows([self.columns])

    def result(self, result: JobResult) -> str:
        return self.results((result,))

    def results(self, batch: Sequence[JobResult]) -> str:
        columns = self.columns
        return self._rows(
            [_text(_value(result.fields, name)) for name in columns]
            for result in batch
            if result.fields is not None
        )

    def finish(self, summary: Summary | None) -> str:
        return ""  # would break the CSV; the CLI sends the summary to stderr


class TableRenderer(Renderer):
    """Aligned columns for a terminal; widths come from the header and the first rows."""

    def __init__(self, fields: Sequence[str] | None) -> None:
        super().__init__(fields)
        self.columns = [name.upper() for name in (fields or SEED_FIELDS)]
        self._sample: list[list[str]] | None = []
        self._widths: list[int] = []

    def _line(self, cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells, self._widths, strict=True)]
        return "  ".join(padded).rstrip() + "\n"

    def _flush(self) -> str:
        rows, self._sample = self._sample or [], None
        self._widths = [
            max([len(column)] + [len(row[i]) for row in rows])
            for i, column in enumerate(self.columns)
        ]
        return "".join(self._line(row) for row in [self.columns, *rows])

    def result(self, result: JobResult) -> str:
        if result.fields is None:
            return ""
        row = [escape_text(_text(_value(result.fields, name))) for name in self.columns]
        if self._sample is not None:
            self._sample.append(row)
            return self._flush() if len(self._sample) >= TABLE_SAMPLE else ""
        return self._line(row)

    def finish(self, summary: Summary | None) -> str:
        head = self._flush() if self._sample is not None else ""
        return head + super().finish(summary)


def make_renderer(
    fmt: Format, fields: Sequence[str] | None, *, fail_on: Collection[str] = ()
) -> Renderer:
    """The renderer for a format name; ``fail_on`` marks failures in the CI reports."""
    if fmt in ("junit", "markdown"):
        from ._report import JunitRenderer, MarkdownRenderer

        report = JunitRenderer if fmt == "junit" else MarkdownRenderer
        return report(fields, fail_on=fail_on)
    kinds: dict[str, type[Renderer]] = {
        "text": TextRenderer,
        "json": JsonRenderer,
        "ndjson": NdjsonRenderer,
        "csv": CsvRenderer,
        "table": TableRenderer,
    }
    return kinds[fmt](fields)
