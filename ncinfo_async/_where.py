"""Jobs chosen by a selection rule (``--where``) instead of by ID: ``/api/v3/query`` in pages.

Paging uses only what Altair documents for ``/api/v3/query`` (REST ref §1.4): ``order``,
``limit`` and the selection rule itself.  Whether the server takes a ``startrow`` request
parameter is unknown, so each page asks for the next ``limit`` jobs after the last ID seen::

    where=(RULE) idint>LAST & order=idint & limit=PAGE

("keyset" paging: no job is skipped or repeated when jobs come and go between pages).  Only
an empty page ends the selection: whether the server caps an answer below ``limit`` is not
documented (REST ref §9, question 7), so a short page may not be the last.  N matching jobs
cost ``ceil(N / PAGE) + 1`` requests.
``idint<5000 | idint>10000`` is SELRULES' own example of a comparison on ``idint``, and the
parentheses and the bare-space AND are documented too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Collection, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

import orjson

from ._exceptions import ApiError, ConfigError, ResponseFormatError
from ._protocol import (
    QUERY_PATH,
    JobResult,
    batch_select,
    http_status_error,
    job_id_of,
    parse_query,
)
from ._wait import (
    HEARTBEAT,
    WaitOutcome,
    WaitStatus,
    is_finished,
    poll_rounds,
)

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "check_rule",
    "rule_path",
    "select_jobs",
    "wait_for_rule",
]

#: Jobs per ``/api/v3/query`` page: a page of every field stays well under the 8 MiB
#: answer limit (a job row is about 0.5 KiB), and 10,000 jobs take 11 requests.
DEFAULT_PAGE_SIZE: Final = 1000


def check_rule(rule: str) -> str:
    """A ``--where`` rule, stripped, once it is safe to put in parentheses.

    The server judges the rule itself; this only refuses what would change its meaning once
    combined with the paging condition: an empty rule, or unbalanced parentheses (outside
    double quotes), which would close the parentheses ``ncinfo`` puts around it.

    Raises:
        ConfigError: an empty rule or one with unbalanced parentheses.
    """
    text = rule.strip()
    if not text:
        raise ConfigError("--where needs a selection rule, e.g. --where 'statusnc==Failed'")
    depth, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
            if depth < 0:
                break
    if depth != 0:
        raise ConfigError(f"unbalanced parentheses in --where {text!r}")
    return text


def rule_path(rule: str, select: Sequence[str], *, after: int, page_size: int) -> str:
    """Path and query string of one page: the jobs matching ``rule`` with an ID above ``after``."""
    fields = ",".join(batch_select(select))
    where = f"({rule}) idint>{after}"
    return (
        f"{QUERY_PATH}?select={quote(fields, safe='')}&from=jobs"
        f"&where={quote(where, safe='')}&order=idint&limit={page_size}"
    )


def _errormsg(body: bytes) -> str:
    """A table answer's non-empty ``errormsg``, or ``""``."""
    try:
        data = orjson.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    message = data.get("errormsg") if isinstance(data, dict) else None
    return message if isinstance(message, str) else ""


async def select_jobs(
    client: Client, rule: str, select: Sequence[str], *, page_size: int = DEFAULT_PAGE_SIZE
) -> AsyncGenerator[list[JobResult]]:
    """Yield the jobs matching ``rule``, one page at a time, in ID order.

    Raises:
        ApiError: the server refused the rule (a 4xx, or a non-empty ``errormsg``), with
            the server's own message.
        HTTPStatusError, TransportError: the page could not be had after the retries.
        ResponseFormatError: the answer is not a table, or it ignored the paging condition.
        AuthError: the credentials were refused.
    """
    after = 0
    while True:
        path = rule_path(rule, select, after=after, page_size=page_size)
        url = client.settings.url + path
        answer = await client.get(path)
        refusal = _errormsg(answer.body) if answer.status == 200 else ""
        # A 401 that outlived the renewal is not about the rule: parse_query reports it.
        if (answer.status in range(400, 500) and answer.status != 401) or refusal:
            reason = refusal or str(http_status_error(answer.status, answer.body, url=url))
            raise ApiError(
                f"the server refused the selection rule {rule!r}: {reason}",
                url=url,
                status=answer.status,
            )
        rows = parse_query(answer.status, answer.body, url=url)
        results: list[JobResult] = []
        for row in rows:
            job_id = job_id_of(row)
            if job_id is None or job_id <= after:
                # A server that ignores `idint>N` would send the same page forever.
                raise ResponseFormatError(
                    f"the query answer breaks the paging condition idint>{after}", url=url
                )
            results.append(JobResult(job_id, fields=row))
        if not results:
            return
        results.sort(key=lambda result: result.job_id)
        yield results
        after = results[-1].job_id


async def wait_for_rule(
    client: Client,
    rule: str,
    select: Sequence[str],
    *,
    terminal: Collection[str],
    poll_interval: float,
    give_up_after: float | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    progress: Callable[[int, int], None] | None = None,
    latest: dict[int, JobResult] | None = None,
    report: Callable[[WaitStatus], None] | None = None,
    heartbeat: float = HEARTBEAT,
) -> WaitOutcome:
    """Poll ``rule`` until no job it has selected is unfinished, or ``give_up_after`` seconds.

    Every poll runs the rule again: a job it selects for the first time joins the wait (so
    jobs submitted during the wait are waited for too).  A job it selected once stays in
    the wait even if the rule stops selecting it (``statusnc==Running`` drops a job that
    ends): such a job is fetched by ID until it is finished or the server forgets it.
    Timing, ``progress``, ``report`` and ``heartbeat`` are as for ``wait_for_jobs``;
    ``latest`` receives each job's last result as it arrives.
    """
    latest = {} if latest is None else latest

    async def poll() -> list[int]:
        selected: set[int] = set()
        async with aclosing(select_jobs(client, rule, select, page_size=page_size)) as pages:
            async for page in pages:
                for result in page:
                    latest[result.job_id] = result
                    selected.add(result.job_id)
        stragglers = [
            job_id
            for job_id, result in latest.items()
            if job_id not in selected and not is_finished(result, terminal)
        ]
        if stragglers:
            async with client.fan_out(stragglers, batch=True, select=select).run() as results:
                async for result in results:
                    latest[result.job_id] = result
        return sorted(
            job_id for job_id, result in latest.items() if not is_finished(result, terminal)
        )

    pending, polls, elapsed = await poll_rounds(
        poll,
        lambda: sorted(latest),
        latest,
        terminal=terminal,
        poll_interval=poll_interval,
        give_up_after=give_up_after,
        progress=progress,
        report=report,
        heartbeat=heartbeat,
    )
    ordered = [latest[job_id] for job_id in sorted(latest)]
    return WaitOutcome(results=ordered, unfinished=pending, polls=polls, elapsed=elapsed)
