"""The aiohttp application: REST v3 routes, authentication, fault injection and stats.

Routes (reference, section 1.2), each counted under the name in brackets:

- `POST /api/v3/token` [token]
- `GET /api/v3/jobs/{id}`, `/jobs/{id}/` [job]; `/jobs/{id}/{field}` [job_field]
  (`/jobs/{id}/*` is the whole job, counted as job_field)
- `GET /api/v3/query` [query]
- `GET /api/v3/project/1/project` [project], `/project/1/version` [version]
- anything else under `/api/v3/` [unmatched]: 401 without a token, else 404

and, without authentication, `GET /sim/stats`, `POST /sim/reset-stats`,
`POST /sim/revoke`, `GET|POST /sim/faults`, `GET /sim/jobs/{id}` (the job's status and
how many requests asked for it) and `POST /sim/jobs/{id}/status` (JSON `{"status": "Done"}`:
the job is in that NC status from then on).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._auth import TokenStore
from ._jobs import FIELD_INDEX, FIELDS, JobTable, SimClock, generate_jobs
from ._query import QueryError, run_query
from ._stats import SimStats
from ._tables import FORMATS, JSON_TYPE, Column, Table, resolve_columns

if TYPE_CHECKING:
    from ._config import FaultConfig, SimConfig

__all__ = ["SimState", "build_app"]

logger = logging.getLogger("ncinfo_async.sim")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_JOB_ID = re.compile(r"[0-9]{1,18}")
_ALL_COLUMNS = resolve_columns("*")


class _Dropped(Exception):
    """Raised after aborting the transport, so no response is written."""


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps({"error": message}).encode()
    return web.Response(status=status, body=body, content_type=JSON_TYPE, headers=headers)


class SimState:
    """Everything one simulator serves and counts; outlives restarts of its server."""

    def __init__(self, config: SimConfig) -> None:
        """Generate the jobs and prepare tokens, stats and faults for `config`."""
        self.config = config
        self.clock = SimClock(config.start_time, config.time_scale)
        self.jobs = JobTable(generate_jobs(config.jobs, config.seed, self.clock.start), self.clock)
        self.tokens = TokenStore(
            config.users, ttl=config.token_ttl, accept_bearer=config.accept_bearer
        )
        self.stats = SimStats()
        self.faults = config.faults
        # Seeded separately from the jobs so fault decisions are reproducible per run.
        self.rng = random.Random(config.seed)
        self._job_bodies: dict[int, bytes] = {}
        #: `/api/v3` requests being served now (for `capacity` and `max_inflight`).
        self.inflight = 0

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault settings."""
        self.faults = faults
        logger.info("faults set to %s", faults.as_dict())

    def revoke(self) -> None:
        """Invalidate every issued token."""
        self.tokens.revoke()
        self.stats.revocations += 1

    def set_job_status(self, idint: int, status: str) -> None:
        """Put job `idint` in NC `status` from now on (KeyError, ValueError)."""
        self.jobs.set_status(idint, status)
        self._job_bodies.pop(idint, None)
        logger.info("job %d set to %s", idint, status)

    def job_info(self, idint: int) -> dict[str, Any]:
        """Return job `idint`'s NC status and its per-job request count (KeyError if unknown)."""
        row = self.jobs.row(idint)
        if row is None:
            raise KeyError(idint)
        return {
            "id": idint,
            "status": row[FIELD_INDEX["STATUSNC"]],
            "requests": self.stats.job_requests[idint],
        }

    def snapshot(self) -> dict[str, Any]:
        """Return the `/sim/stats` body."""
        return self.stats.snapshot(
            jobs=len(self.jobs),
            sim_time=round(self.clock.now(), 3),
            faults=self.faults.as_dict(),
        )

    def _draw(self, rate: float) -> bool:
        # No draw at all for a zero rate keeps the sequence stable when a knob is off.
        return rate > 0.0 and self.rng.random() < rate

    # -- /api/v3 plumbing ---------------------------------------------------------------

    def api(self, route: str, handler: Handler, *, auth: bool = True) -> Handler:
        """Wrap `handler` with counting, latency, faults and the token check."""
        stats = self.stats

        async def wrapped(request: web.Request) -> web.StreamResponse:
            stats.requests[route] += 1
            stats.arrived(time.monotonic())
            capacity = self.config.capacity
            if capacity is not None and self.inflight >= capacity:
                # A server at its limit turns requests away at the door, at once.
                stats.over_capacity += 1
                stats.statuses[503] += 1
                return _error(503, f"server busy: {capacity} requests in progress")
            self.inflight += 1
            stats.max_inflight = max(stats.max_inflight, self.inflight)
            try:
                response = await self._guarded(request, route, handler, auth)
            except _Dropped:
                # The transport is aborted; raising past aiohttp would log a traceback.
                return web.Response(status=499)
            finally:
                self.inflight -= 1
            faults = self.faults
            if faults.close_after_response and (route != "token" or faults.include_token):
                # Sends `Connection: close` and closes once the response is written.
                response.force_close()
                stats.forced_closes += 1
            stats.statuses[response.status] += 1
            return response

        return wrapped

    async def _guarded(
        self, request: web.Request, route: str, handler: Handler, auth: bool
    ) -> web.StreamResponse:
        config, faults = self.config, self.faults
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        if route != "token" or faults.include_token:
            if self._draw(faults.drop_rate):
                self.stats.drops_injected += 1
                if request.transport is not None:
                    request.transport.abort()
                raise _Dropped
            if self._draw(faults.error_rate):
                self.stats.errors_injected += 1
                headers = None
                if faults.retry_after is not None:
                    headers = {"Retry-After": str(faults.retry_after)}
                return _error(faults.error_status, "injected fault", headers)
            if self._draw(faults.slow_rate):
                self.stats.slow_injected += 1
                await asyncio.sleep(faults.slow_ms / 1000)
        if auth:
            problem = self.tokens.check(request.headers.get("Authorization"))
            if problem is not None:
                self.stats.unauthorized += 1
                return _error(401, problem)
        return await handler(request)

    # -- /api/v3 handlers ---------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        """`POST /api/v3/token`: form `username`, `password` -> JWT (section 2.1)."""
        form = await request.post()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            self.stats.unauthorized += 1
            return _error(401, "form fields 'username' and 'password' are required")
        if not self.tokens.authenticate(username, password):
            self.stats.unauthorized += 1
            # Never log the password or the token; the user name is fine.
            logger.info("rejected credentials for user %r", username)
            return _error(401, "invalid username or password")
        self.stats.tokens_issued += 1
        return web.json_response(self.tokens.issue(username))

    async def job(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/v3/jobs/{id}[/|/*|/{field}]`: one job as a one-row table."""
        raw_id = request.match_info["id"]
        field = request.match_info.get("field", "*")
        fmt = request.query.get("format", "json") if request.query_string else "json"
        if fmt not in FORMATS:
            return _error(400, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        if not _JOB_ID.fullmatch(raw_id):
            return _error(400, f"invalid job id {raw_id!r}")
        idint = int(raw_id)
        self.stats.job_requests[idint] += 1
        whole = field == "*"
        if whole and fmt == "json":
            cached = self._job_bodies.get(idint)
            if cached is not None:
                return web.Response(body=cached, content_type=JSON_TYPE)
        try:
            columns = _ALL_COLUMNS if whole else resolve_columns(field)
        except ValueError as exc:
            return _error(400, str(exc))
        # The `query` echo of [DOC-EX] REQURLS-24 Form 2; text, never executed.
        query = f"SELECT {field} FROM jobs WHERE idint=={idint}"  # noqa: S608
        row = self.jobs.row(idint)
        if row is None:
            if self.config.unknown_job == "404":
                return _error(404, f"no job with id {raw_id}")
            table = Table(query, columns, [], errormsg=f"no job with id {raw_id}")
        else:
            table = Table(query, columns, [Table.project(row, columns)])
        body, content_type = table.render(fmt)
        if whole and fmt == "json" and row is not None and self.jobs.is_settled(idint):
            self._job_bodies[idint] = body
        return web.Response(body=body, content_type=content_type)

    async def query(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/v3/query`: many rows (section 1.4)."""
        if self.config.reject_query:
            return _error(400, "the query endpoint is disabled on this server")
        params = request.query
        fmt = params.get("format", "json")
        if fmt not in FORMATS:
            return _error(400, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        try:
            table = run_query(
                self.jobs,
                params,
                max_rows=self.config.query_max_rows,
                id_lists=self.config.id_lists,
            )
        except QueryError as exc:
            return _error(400, str(exc))
        body, content_type = table.render(fmt)
        return web.Response(body=body, content_type=content_type)

    def project_field(self, field: str, value: str) -> Handler:
        """Return a handler for `GET /api/v3/project/1/<field>` ([DOC-EX] EX101)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            fmt = request.query.get("format", "json")
            if fmt not in FORMATS:
                return _error(400, f"unknown format {fmt!r}")
            echo = f"SELECT {field} FROM 1"  # noqa: S608 ([DOC-EX] EX101's echo)
            table = Table(echo, [Column(field.upper(), 0)], [[value]])
            body, content_type = table.render(fmt)
            return web.Response(body=body, content_type=content_type)

        return handler

    async def unmatched(self, request: web.Request) -> web.StreamResponse:
        """Any other `/api/v3` path or method."""
        return _error(404, f"no such endpoint: {request.method} {request.path}")

    # -- /sim control -------------------------------------------------------------------

    async def sim_stats(self, request: web.Request) -> web.StreamResponse:
        """`GET /sim/stats`."""
        return web.json_response(self.snapshot())

    async def sim_reset_stats(self, request: web.Request) -> web.StreamResponse:
        """`POST /sim/reset-stats`."""
        self.stats.reset()
        return web.json_response({"ok": True})

    async def sim_revoke(self, request: web.Request) -> web.StreamResponse:
        """`POST /sim/revoke`."""
        self.revoke()
        return web.json_response({"ok": True})

    async def sim_faults(self, request: web.Request) -> web.StreamResponse:
        """`GET /sim/faults` shows the faults; `POST` applies a partial JSON update."""
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise TypeError("expected a JSON object")
                self.set_faults(self.faults.updated(changes))
            except (ValueError, TypeError, KeyError) as exc:
                return _error(400, f"bad fault settings: {exc}")
        return web.json_response(self.faults.as_dict())

    async def sim_job(self, request: web.Request) -> web.StreamResponse:
        """`GET /sim/jobs/{id}` shows a job; `POST /sim/jobs/{id}/status` sets its status."""
        raw_id = request.match_info["id"]
        if not _JOB_ID.fullmatch(raw_id):
            return _error(400, f"invalid job id {raw_id!r}")
        idint = int(raw_id)
        if idint not in self.jobs:
            return _error(404, f"no job with id {raw_id}")
        if request.method == "POST":
            try:
                body = await request.json()
                if not isinstance(body, dict) or not isinstance(body.get("status"), str):
                    raise TypeError('expected {"status": "<NC status>"}')
                self.set_job_status(idint, body["status"])
            except (ValueError, TypeError) as exc:
                return _error(400, f"bad job status: {exc}")
        return web.json_response(self.job_info(idint))


def build_app(state: SimState) -> web.Application:
    """Return the aiohttp application serving `state`."""
    app = web.Application()
    add = app.router.add_route
    add("POST", "/api/v3/token", state.api("token", state.token, auth=False), name="token")
    job = state.api("job", state.job)
    add("GET", "/api/v3/jobs/{id}", job, name="job")
    add("GET", "/api/v3/jobs/{id}/", job, name="job_slash")
    add("GET", "/api/v3/jobs/{id}/{field}", state.api("job_field", state.job), name="job_field")
    add("GET", "/api/v3/query", state.api("query", state.query), name="query")
    config = state.config
    project = state.project_field("project", config.project)
    version = state.project_field("version", config.version)
    add("GET", "/api/v3/project/1/project", state.api("project", project), name="project")
    add("GET", "/api/v3/project/1/version", state.api("version", version), name="version")
    add("*", "/api/v3/{tail:.*}", state.api("unmatched", state.unmatched), name="unmatched")
    add("GET", "/sim/stats", state.sim_stats, name="sim_stats")
    add("POST", "/sim/reset-stats", state.sim_reset_stats, name="sim_reset_stats")
    add("POST", "/sim/revoke", state.sim_revoke, name="sim_revoke")
    add("*", "/sim/faults", state.sim_faults, name="sim_faults")
    add("GET", "/sim/jobs/{id}", state.sim_job, name="sim_job")
    add("POST", "/sim/jobs/{id}/status", state.sim_job, name="sim_job_status")
    logger.debug("serving %d jobs with fields %s", len(state.jobs), ",".join(FIELDS))
    return app
