"""The table response of every REST v3 GET accessor, and its json/csv renderings.

Shape ([DOC-EX] REQURLS-24, EX101; reference section 1.3)::

    {"startrow":1,"endrow":1,"query":"SELECT status FROM jobs WHERE idint==1158062",
     "errormsg":"","columns":[{"col":0,"field":"status"}],"rows":[["VALID"]]}

`format=csv` and `format=csv-noheader` ([DOC] REQURLS-24: "All forms allow the use of
an additional format parameter") give the same rows as CSV, with or without a header
line of field names.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._jobs import FIELD_INDEX, FIELDS

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CSV_TYPE",
    "FORMATS",
    "JSON_TYPE",
    "Column",
    "Table",
    "resolve_columns",
]

#: Accepted values of the `format` query parameter; json is the default.
FORMATS: tuple[str, ...] = ("json", "csv", "csv-noheader")
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"


@dataclass(frozen=True, slots=True)
class Column:
    """One selected column: the name as the client spelled it, and its row position.

    `pos` is None for a field the simulator does not know: its value is `""`, as
    `-O` formatting does for a field "incompatible for a node" ([DOC] FMTSTR; the
    reference, section 4.2, marks the REST behaviour [INFER]).
    """

    name: str
    pos: int | None


def resolve_columns(select: str) -> list[Column]:
    """Resolve a `select` list (`*` or comma-separated names, any case) to columns.

    `*` yields every field in upper case, as the seed's `find(dd, 'ID')` expects.

    Raises:
        ValueError: The list is empty or holds an empty name.
    """
    text = select.strip()
    if text == "*":
        return [Column(name, pos) for pos, name in enumerate(FIELDS)]
    names = [name.strip() for name in text.split(",")]
    if not text or any(not name for name in names):
        raise ValueError(f"bad select list {select!r}")
    return [Column(name, FIELD_INDEX.get(name.upper())) for name in names]


@dataclass(frozen=True, slots=True)
class Table:
    """A rendered-on-demand table response."""

    query: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    errormsg: str = ""

    @staticmethod
    def project(row: Sequence[Any], columns: Sequence[Column]) -> list[Any]:
        """Return the values of `row` for `columns` (`""` for unknown fields)."""
        return [row[col.pos] if col.pos is not None else "" for col in columns]

    def to_json(self) -> bytes:
        """Serialise as compact JSON, in the documented key order."""
        count = len(self.rows)
        body = {
            "startrow": 1 if count else 0,
            "endrow": count,
            "query": self.query,
            "errormsg": self.errormsg,
            "columns": [{"col": i, "field": col.name} for i, col in enumerate(self.columns)],
            "rows": self.rows,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def to_csv(self, *, header: bool) -> bytes:
        """Serialise as CSV lines, with a header line of field names when `header`."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header:
            writer.writerow([col.name for col in self.columns])
        writer.writerows(self.rows)
        return buffer.getvalue().encode()

    def render(self, fmt: str) -> tuple[bytes, str]:
        """Return `(body, content_type)` for `fmt`, one of `FORMATS`."""
        if fmt == "json":
            return self.to_json(), JSON_TYPE
        return self.to_csv(header=fmt == "csv"), CSV_TYPE
