"""Property: any mix of faults and IDs yields exactly one result per distinct ID.

Each example starts its own simulator inside its own event loop (``asyncio.run``), so no
fixture or loop is shared between hypothesis examples.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncinfo_async import Client, Settings
from ncinfo_async._fanout import JobResult
from ncinfo_async.sim import FaultConfig, SimConfig, Simulator

#: Jobs the simulator knows; IDs above are unknown.
JOBS = 40
#: Tries per request.  A job fails when every try is faulty, at most 0.2 + 0.8 * 0.2 = 0.36 per
#: try here: 0.36**14 is about 6e-7 per job, vanishingly rare over the whole run of examples.
ATTEMPTS = 14

faults = st.builds(
    FaultConfig,
    error_rate=st.floats(0.0, 0.2),
    error_status=st.sampled_from([500, 502, 503, 429]),
    drop_rate=st.floats(0.0, 0.2),
    close_after_response=st.booleans(),
    include_token=st.booleans(),
)
job_ids = st.lists(st.integers(1, JOBS + 15), max_size=60)


async def inspect(
    ids: list[int],
    fault: FaultConfig,
    unknown_job: Literal["404", "empty"],
    concurrency: int,
    order: Literal["input", "completion"],
) -> list[JobResult]:
    config = SimConfig(jobs=JOBS, faults=fault, unknown_job=unknown_job)
    async with Simulator(config) as sim:
        options = Settings(
            url=sim.url,
            user="demo",
            password="demo",
            concurrency=concurrency,
            attempts=ATTEMPTS,
            backoff_base=0.001,
            backoff_cap=0.005,
            order=order,
        )
        async with (
            asyncio.timeout(60),  # a hang guard, not a speed requirement
            Client(options) as client,
            client.stream_jobs(ids) as results,
        ):
            return [result async for result in results]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=job_ids,
    fault=faults,
    unknown_job=st.sampled_from(["404", "empty"]),
    concurrency=st.integers(1, 8),
    order=st.sampled_from(["input", "completion"]),
)
def test_exactly_one_result_per_distinct_id(
    ids: list[int],
    fault: FaultConfig,
    unknown_job: Literal["404", "empty"],
    concurrency: int,
    order: Literal["input", "completion"],
) -> None:
    """Random IDs (repeats, unknowns) under random faults: one result each, found iff known."""
    results = asyncio.run(inspect(ids, fault, unknown_job, concurrency, order))
    got = [result.job_id for result in results]
    assert len(got) == len(set(got)), "an ID was reported twice"
    assert set(got) == set(ids), "an ID is missing or was never requested"
    if order == "input":
        assert got == list(dict.fromkeys(ids))
    for result in results:
        if result.job_id <= JOBS:
            assert result.ok, result.error
            assert result.fields is not None
            assert result.fields["IDINT"] == result.job_id
        else:
            assert result.error is not None
            assert result.error.kind == "not_found", result.error
            assert result.error.job_id == result.job_id
