"""Simulated jobs: deterministic generation from a seed and evolution with simulated time.

Each job is a `JobPlan`, a timeline fixed at start (submit, start, end, outcome). Its
row of fields at a given simulated instant follows from the plan, so queued and running
jobs move on to Done or Failed without any background task, and every field stays
consistent with the others. Field names are the upper-case ones the seed's `nc_info.py`
reads (`ID`, `USER`, `GROUP`, `COMMAND`, `STATUSNC`, `HOST`, `DURATIONPP`) plus the
jobs-file columns of the reference, section 4.2.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "FIELDS",
    "FIELD_INDEX",
    "INT_FIELDS",
    "JOB_FLAGS",
    "STATUSES",
    "JobPlan",
    "JobTable",
    "SimClock",
    "duration_pp",
    "generate_jobs",
]

#: Every field of a job row, in the order `select *` returns them.
FIELDS: tuple[str, ...] = (
    "ID",
    "IDINT",
    "USER",
    "GROUP",
    "COMMAND",
    "JOBNAME",
    "JOBCLASS",
    "PRIORITY",
    "STATUS",
    "STATUSNC",
    "HOST",
    "SUBMITHOST",
    "SUBMITTIME",
    "STARTTIME",
    "ENDTIME",
    "DURATION",
    "DURATIONPP",
    "EXIT",
    "RESOURCES",
    "DIR",
    "MAXRAM",
    "CPUTIME",
    "AUTOKILL",
)
#: Upper-case field name -> position in a row.
FIELD_INDEX: dict[str, int] = {name: pos for pos, name in enumerate(FIELDS)}
#: Fields whose values are ints (they compare numerically in selection rules).
INT_FIELDS: frozenset[str] = frozenset(
    {"IDINT", "PRIORITY", "SUBMITTIME", "STARTTIME", "ENDTIME", "DURATION", "EXIT"}
    | {"MAXRAM", "CPUTIME", "AUTOKILL"}
)
#: Flags that hold for every row of the jobs table, usable in selection rules: SELRULES'
#: own example `isjob & status==FAILED,INVALID` (reference, section 1.4.1).
JOB_FLAGS: dict[str, int] = {"ISJOB": 1, "ISFILE": 0}

# VOV STATUS for each NC status name (reference, section 4.3).
_VOV_STATUS = {
    "Idle": "INVALID",
    "Queued": "SCHEDULED",
    "Running": "RUNNING",
    "Done": "VALID",
    "Failed": "FAILED",
    "Suspended": "SUSPENDED",
    "Withdrawn": "WITHDRAWN",
}
_FROZEN_KINDS = frozenset({"Idle", "Suspended", "Withdrawn"})
# AUTOKILL ([DOC] NODEFIELDS: an integer duration, 0 for none) follows the job class, so it
# takes no draw from the generator and every other field stays as it was.
_AUTOKILL = {"": 0, "short": 300, "long": 86400, "regress": 3600, "sta": 14400}
#: The NC statuses a job can be put in on request (`POST /sim/jobs/<id>/status`).
STATUSES: tuple[str, ...] = tuple(_VOV_STATUS)
# A simulated time no test reaches: a job held Queued or Running stays so until told otherwise.
_NEVER = 2**40

_HOSTS = tuple(f"lnx{rack:02d}{slot}" for rack in range(1, 13) for slot in "abcd")
_SUBMIT_HOSTS = ("login1", "login2", "vncgw")
_PROJECTS = ("alpha", "bravo", "cobalt")
_CLASSES = ("", "short", "long", "regress", "sta")
_TOOLS = (
    ("sleep", "sleep {n}"),
    ("make", "make -j{k} all"),
    ("sim", "python3 run_sim.py --block b{n:03d}"),
    ("vcs", "vcs -R -f tb_{n:03d}.f"),
    ("syn", "dc_shell -f syn_{n:03d}.tcl"),
    ("drc", "calibre -drc rules_{n:03d}.svrf"),
)


def duration_pp(seconds: int) -> str:
    """Pretty-print a duration: `31s`, `2m05s`, `1h02m`, `3d04h` (two units at most)."""
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


class SimClock:
    """Simulated epoch time: `start` at creation, advancing `scale` times the wall clock."""

    __slots__ = ("_origin", "scale", "start")

    def __init__(self, start: float | None = None, scale: float = 1.0) -> None:
        """Start the clock at epoch `start` (default: now), running `scale` times faster."""
        self.start = time.time() if start is None else start
        self.scale = scale
        self._origin = time.monotonic()

    def now(self) -> float:
        """Return the current simulated epoch time in seconds."""
        return self.start + (time.monotonic() - self._origin) * self.scale


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPlan:
    """The whole life of one job, decided at generation time.

    `kind` is the NC status for jobs that never change (Idle, Suspended, Withdrawn);
    for the others it is `"timeline"` and the status follows from `start`/`end`:
    Queued before `start`, Running until `end`, then `outcome` (Done or Failed).
    """

    idint: int
    user: str
    group: str
    command: str
    jobname: str
    jobclass: str
    priority: int
    resources: str
    submithost: str
    directory: str
    host: str
    kind: str
    outcome: str
    exit_code: int
    submit: int
    start: int
    end: int
    maxram: int

    def settled_at(self) -> float:
        """Return the simulated time from which the row no longer changes."""
        return 0.0 if self.kind in _FROZEN_KINDS else float(self.end)

    def with_status(self, status: str, now: float) -> JobPlan:
        """Return this plan changed so that from `now` on the job is in NC `status`, for good.

        Done and Failed end the job at `now` (or keep an earlier end); Queued and Running
        hold it there until the next change.  Raises ValueError for an unknown status.
        """
        if status not in _VOV_STATUS:
            raise ValueError(f"unknown NC status {status!r}; use one of {', '.join(STATUSES)}")
        if status in _FROZEN_KINDS:
            return replace(self, kind=status)
        t = int(now)
        if status == "Queued":
            return replace(self, kind="timeline", start=_NEVER, end=_NEVER)
        start = min(self.start, t)
        if status == "Running":
            return replace(self, kind="timeline", start=start, end=_NEVER)
        end = max(start, min(self.end, t))
        exit_code = 0 if status == "Done" else self.exit_code or 1
        return replace(
            self, kind="timeline", start=start, end=end, outcome=status, exit_code=exit_code
        )

    def row(self, now: float) -> tuple[Any, ...]:
        """Return the job's field values (ordered as `FIELDS`) at simulated time `now`."""
        host = self.host
        start = end = exit_code = 0
        if self.kind in _FROZEN_KINDS:
            status = self.kind
            if status == "Suspended":
                start, duration = self.start, self.end - self.start
            else:
                host, duration = "", 0
        elif now < self.start:
            status, host, duration = "Queued", "", 0
        elif now < self.end:
            status, start, duration = "Running", self.start, int(now) - self.start
        else:
            status, start, end = self.outcome, self.start, self.end
            duration, exit_code = self.end - self.start, self.exit_code
        return (
            f"{self.idint:09d}",
            self.idint,
            self.user,
            self.group,
            self.command,
            self.jobname,
            self.jobclass,
            self.priority,
            _VOV_STATUS[status],
            status,
            host,
            self.submithost,
            self.submit,
            start,
            end,
            duration,
            duration_pp(duration),
            exit_code,
            self.resources,
            self.directory,
            self.maxram if start else 0,
            duration * 850 if start else 0,
            _AUTOKILL.get(self.jobclass, 0),
        )


def _pick_kind(rng: random.Random) -> str:
    draw = rng.random()
    for kind, upto in (
        ("Done", 0.55),
        ("Failed", 0.65),
        ("Running", 0.80),
        ("Queued", 0.92),
        ("Idle", 0.95),
        ("Suspended", 0.98),
    ):
        if draw < upto:
            return kind
    return "Withdrawn"


def _run_length(rng: random.Random) -> int:
    # Mostly short jobs, a long tail of hour-long ones, as in a typical regression queue.
    band = rng.random()
    if band < 0.5:
        return rng.randint(5, 300)
    if band < 0.85:
        return rng.randint(300, 3600)
    return rng.randint(3600, 40000)


def _times(kind: str, rng: random.Random, t0: int) -> tuple[int, int, int]:
    """Return (submit, start, end) for a job of `kind` as seen at simulated time `t0`."""
    if kind in ("Done", "Failed"):
        end = t0 - rng.randint(10, 6 * 86400)
        start = end - _run_length(rng)
    elif kind == "Running":
        # Running jobs end within seconds to minutes of the simulator's start.
        start = t0 - rng.randint(5, 3600)
        end = t0 + rng.randint(3, 300)
    elif kind == "Queued":
        start = t0 + rng.randint(2, 120)
        end = start + rng.randint(3, 240)
    elif kind == "Suspended":
        start = t0 - rng.randint(600, 7200)
        end = start + rng.randint(30, 500)
    else:
        start = end = t0
    submit = min(start, t0) - rng.randint(1, 900)
    return submit, start, end


def _make_job(idint: int, rng: random.Random, t0: int) -> JobPlan:
    kind = _pick_kind(rng)
    user = f"user{rng.randint(1, 40):02d}"
    group = f"/time/users.{user}" if rng.random() < 0.7 else f"/proj/{rng.choice(_PROJECTS)}.{user}"
    jobname, template = rng.choice(_TOOLS)
    submit, start, end = _times(kind, rng, t0)
    # `sleep N` runs N seconds, so its command agrees with its DURATION once done.
    number = end - start if jobname == "sleep" and end > start else rng.randint(1, 999)
    args = template.format(n=number, k=rng.choice((2, 4, 8, 16)))
    stamp = time.strftime("%Y%m%d/%H%M%S", time.gmtime(submit))
    # The documented example command: `vw sleep 123 > vnc_logs/20211012/132628.122875`.
    command = f"vw {args} > vnc_logs/{stamp}.{rng.randint(100000, 999999)}"
    failed = rng.random() < 0.15 if kind in ("Running", "Queued") else kind == "Failed"
    outcome = "Failed" if failed else "Done"
    ram = rng.choice((500, 1000, 2000, 4000, 8000, 16000))
    return JobPlan(
        idint=idint,
        user=user,
        group=group,
        command=command,
        jobname=jobname,
        jobclass=rng.choice(_CLASSES),
        priority=4 if rng.random() < 0.6 else rng.randint(1, 15),
        resources=f"linux64 RAM/{ram}",
        submithost=rng.choice(_SUBMIT_HOSTS),
        directory=f"/work/{user}/{rng.choice(_PROJECTS)}",
        host=rng.choice(_HOSTS),
        kind=kind if kind in _FROZEN_KINDS else "timeline",
        outcome=outcome,
        exit_code=rng.choice((1, 2, 137, 255)) if failed else 0,
        submit=submit,
        start=start,
        end=end,
        maxram=rng.randint(ram // 10, ram),
    )


def generate_jobs(count: int, seed: int, t0: float) -> list[JobPlan]:
    """Return `count` jobs with IDs 1..count, the same for the same `seed` and `t0`."""
    rng = random.Random(seed)
    start = int(t0)
    return [_make_job(idint, rng, start) for idint in range(1, count + 1)]


class JobTable:
    """All jobs of the simulator, with rows cached once a job can no longer change."""

    def __init__(self, plans: list[JobPlan], clock: SimClock) -> None:
        """Index `plans` by ID; `clock` gives the simulated time of every lookup."""
        self.clock = clock
        self._plans = {plan.idint: plan for plan in plans}
        self._settled: dict[int, tuple[Any, ...]] = {}

    def __len__(self) -> int:
        """Return the number of jobs."""
        return len(self._plans)

    def __contains__(self, idint: object) -> bool:
        """Return True when a job with this integer ID exists."""
        return idint in self._plans

    def row(self, idint: int, now: float | None = None) -> tuple[Any, ...] | None:
        """Return the row of job `idint` at `now` (default: the clock), or None if unknown."""
        cached = self._settled.get(idint)
        if cached is not None:
            return cached
        plan = self._plans.get(idint)
        if plan is None:
            return None
        now = self.clock.now() if now is None else now
        row = plan.row(now)
        if now >= plan.settled_at():
            self._settled[idint] = row
        return row

    def set_status(self, idint: int, status: str) -> None:
        """Put job `idint` in NC `status` from now on (KeyError if unknown, ValueError if bad)."""
        plan = self._plans[idint]
        self._plans[idint] = plan.with_status(status, self.clock.now())
        self._settled.pop(idint, None)

    def is_settled(self, idint: int) -> bool:
        """Return True when job `idint`'s row is final (it may then be cached by callers)."""
        return idint in self._settled

    def ids(self) -> list[int]:
        """Return every job ID in ascending order."""
        return sorted(self._plans)
