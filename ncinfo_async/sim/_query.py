"""`GET /api/v3/query`: select/from/where/order/limit over the job table.

The parameters and the `query` echo follow [DOC] REQURLS-24 Form 3::

    /api/v3/query?select=idint,host,status&from=jobs&where=status%3d%3dVALID&limit=10&order=host%20DESC
    "query": "SELECT idint,host,status FROM jobs WHERE status==VALID ORDERBY host DESC LIMIT 10"
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ._jobs import FIELD_INDEX, INT_FIELDS, JOB_FLAGS, JobTable
from ._rules import And, Not, Or, Pred, Rule, RuleError, candidate_ids, compile_rule, parse
from ._tables import Table, resolve_columns

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._config import IdLists

__all__ = ["QueryError", "run_query"]


class QueryError(ValueError):
    """A query the simulator answers with 400 and `{"error": ...}`."""


def _echo(select: str, source: str, where: str, order: str, limit: str) -> str:
    parts = [f"SELECT {select} FROM {source}"]  # noqa: S608 (an echo, never executed)
    if where:
        parts.append(f"WHERE {where}")
    if order:
        parts.append(f"ORDERBY {order}")
    if limit:
        parts.append(f"LIMIT {limit}")
    return " ".join(parts)


def _order_keys(order: str) -> list[tuple[int, bool]]:
    """Parse `order` ("comma separated list of fields", each optionally DESC)."""
    keys: list[tuple[int, bool]] = []
    for item in order.split(","):
        words = item.split()
        if not words or len(words) > 2:
            raise QueryError(f"bad order clause {order!r}")
        name = words[0].upper()
        if name not in FIELD_INDEX:
            raise QueryError(f"unknown field {words[0]!r} in order clause")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise QueryError(f"bad sort direction {words[1]!r} in order clause")
        keys.append((FIELD_INDEX[name], direction == "DESC"))
    return keys


def _parse_limit(limit: str) -> int | None:
    if not limit:
        return None
    try:
        value = int(limit)
    except ValueError:
        raise QueryError(f"limit must be an integer, got {limit!r}") from None
    if value < 0:
        raise QueryError(f"limit must be >= 0, got {value}")
    return value


def _has_id_list(rule: Rule) -> bool:
    """Whether `rule` holds an `idint==a,b,...` predicate with more than one value."""
    if isinstance(rule, Pred):
        return rule.field.upper() == "IDINT" and rule.op == "==" and len(rule.values) > 1
    if isinstance(rule, Not):
        return _has_id_list(rule.rule)
    return any(_has_id_list(sub) for sub in rule.rules)


def _first_ids_only(rule: Rule) -> Rule:
    """`rule` with each `idint==a,b,...` list cut to its first value (`--id-lists first`)."""
    if isinstance(rule, Pred):
        if rule.field.upper() == "IDINT" and rule.op == "==" and len(rule.values) > 1:
            return Pred(rule.field, rule.op, rule.values[:1])
        return rule
    if isinstance(rule, Not):
        return Not(_first_ids_only(rule.rule))
    if isinstance(rule, And):
        return And(tuple(_first_ids_only(sub) for sub in rule.rules))
    return Or(tuple(_first_ids_only(sub) for sub in rule.rules))


def _matching_rows(jobs: JobTable, where: str, id_lists: IdLists) -> list[tuple[Any, ...]]:
    now = jobs.clock.now()
    if not where.strip():
        ids = jobs.ids()
        rule_matches = None
    else:
        try:
            rule = parse(where)
            if id_lists != "all" and _has_id_list(rule):
                if id_lists == "ignore":
                    return [row for idint in jobs.ids() if (row := jobs.row(idint, now))]
                rule = _first_ids_only(rule)
            candidates = candidate_ids(rule)
            # Batched fetches send `idint==a,b,c,...` with thousands of IDs: a set
            # lookup per ID, and no per-row evaluation when the rule is just that.
            bare_ids = candidates is not None and isinstance(rule, Pred)
            rule_matches = (
                None
                if bare_ids
                else compile_rule(rule, FIELD_INDEX, int_fields=INT_FIELDS, flags=JOB_FLAGS)
            )
        except RuleError as exc:
            raise QueryError(str(exc)) from None
        if candidates is None:
            ids = jobs.ids()
        else:
            ids = sorted(idint for idint in candidates if idint in jobs)
    rows = []
    for idint in ids:
        row = jobs.row(idint, now)
        if row is not None and (rule_matches is None or rule_matches(row)):
            rows.append(row)
    return rows


def run_query(
    jobs: JobTable,
    params: Mapping[str, str],
    *,
    max_rows: int | None = None,
    id_lists: IdLists = "all",
) -> Table:
    """Answer one `/api/v3/query` request, with at most `max_rows` rows if given, reading
    `idint==a,b,c` as `SimConfig.id_lists` says.

    Raises:
        QueryError: A missing or unknown `from`, a bad select list, selection rule,
            order clause or limit.
    """
    select = params.get("select", "*") or "*"
    source = params.get("from", "")
    where = params.get("where", "")
    order = params.get("order", "")
    limit_text = params.get("limit", "")
    if not source:
        raise QueryError("missing 'from' parameter (e.g. from=jobs)")
    if source.lower() != "jobs":
        raise QueryError(f"unknown data source {source!r}; this server knows 'jobs'")
    try:
        columns = resolve_columns(select)
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    keys = _order_keys(order) if order.strip() else []
    limit = _parse_limit(limit_text.strip())
    rows = _matching_rows(jobs, where, id_lists)
    # Stable sorts applied from the last key to the first give a multi-key order.
    for pos, descending in reversed(keys):
        rows.sort(key=itemgetter(pos), reverse=descending)
    if limit is not None:
        rows = rows[:limit]
    if max_rows is not None:
        rows = rows[:max_rows]
    projected = [Table.project(row, columns) for row in rows]
    return Table(_echo(select, source, where, order, limit_text), columns, projected)
