"""Tier 3: batched queries, waiting on jobs, CI checks, token reuse and URL discovery."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ncinfo_async.sim import Simulator
from ncinfo_async.sim._jobs import generate_jobs

from .cliutil import cli_env, run_ncinfo

T0 = 1_790_000_000.0


def env_for(url: str | None, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The CLI environment with a token cache in this test's own directory."""
    return cli_env(url, NCINFO_CACHE_DIR=str(tmp_path / "cache"), **extra)


async def ncinfo(
    *args: str, env: dict[str, str], stdin: bytes | None = None
) -> tuple[int, str, str]:
    run = await run_ncinfo(*args, env=env, stdin=stdin, limit=120)
    return run.code, run.out, run.err


@pytest.mark.asyncio
async def test_batch_fetches_thousands_in_a_handful_of_requests(
    sim_factory: Any, tmp_path: Path
) -> None:
    """--batch: 5,000 IDs (some unknown) come back once each through a few query requests."""
    sim = await sim_factory(jobs=4990)
    ids = "\n".join(str(i) for i in range(1, 5001)).encode()
    code, out, _err = await ncinfo(
        "--batch", "--format", "ndjson", "-q", env=env_for(sim.url, tmp_path), stdin=ids
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [line["id"] for line in lines] == list(range(1, 5001))
    assert [line["id"] for line in lines if not line["ok"]] == list(range(4991, 5001))
    assert all(line["error"]["kind"] == "not_found" for line in lines if not line["ok"])
    requests = sim.stats()["requests"]
    assert requests["job"] == 10  # each ID missing from the rows, confirmed by its own GET
    assert 1 <= requests["query"] <= 20


@pytest.mark.asyncio
async def test_batch_text_matches_per_job_text(sim_factory: Any, tmp_path: Path) -> None:
    """The seed layout is the same whether jobs come from batched queries or one by one."""
    # Simulated time all but stands still, so running jobs' durations match across runs.
    sim = await sim_factory(start_time=T0, time_scale=1e-9)
    env = env_for(sim.url, tmp_path)
    _, batched, _ = await ncinfo("--batch", "1", "7", "3", env=env)
    _, single, _ = await ncinfo("1", "7", "3", env=env)
    assert batched == single
    assert batched.count("Job             ") == 3


@pytest.mark.asyncio
async def test_batch_falls_back_when_the_server_refuses_queries(
    sim_factory: Any, tmp_path: Path
) -> None:
    """Many queries refused at once (2,000 IDs, 500-byte URLs): one notice, every job right."""
    sim = await sim_factory(jobs=2000, reject_query=True)
    ids = "\n".join(str(i) for i in range(1, 2001)).encode()
    code, out, err = await ncinfo(
        "--batch",
        "--url-budget",
        "500",
        "--format",
        "ndjson",
        env=env_for(sim.url, tmp_path),
        stdin=ids,
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0, err
    assert [line["id"] for line in lines] == list(range(1, 2001))
    assert all(line["ok"] and line["fields"]["IDINT"] == line["id"] for line in lines)
    requests = sim.stats()["requests"]
    # About 80 IDs fit in 500 bytes: the 32 workers each sent a query before any refusal came
    # back, so many were refused at the same moment; the fallback is still decided once.
    assert requests["query"] >= 10
    assert err.count("refused a batched query") == 1
    assert err.count("fetching one job per request instead") == 1
    assert requests["job"] == 2000


def pick(outcome: str) -> int:
    """A job unfinished at T0 that ends with `outcome` 150 to 400 simulated seconds later."""
    for plan in generate_jobs(400, 0, T0):
        if plan.kind == "timeline" and T0 + 150 < plan.end < T0 + 400 and plan.outcome == outcome:
            return plan.idint
    raise AssertionError(f"no {outcome} job in the generated set")


@pytest.mark.asyncio
@pytest.mark.parametrize(("outcome", "code"), [("Failed", 3), ("Done", 0)])
async def test_wait_then_fail_on(sim_factory: Any, tmp_path: Path, outcome: str, code: int) -> None:
    """--wait polls a running job until it ends; --fail-on Failed exits 3 only if it failed."""
    job = pick(outcome)
    # 100x: the job ends 1.5 to 4 s after the simulator starts, well after the CLI does.
    sim = await sim_factory(jobs=400, start_time=T0, time_scale=100.0)
    result, out, err = await ncinfo(
        "--wait",
        "--poll-interval",
        "0.2",
        "--fail-on",
        "Failed",
        "--format",
        "ndjson",
        "--fields",
        "id,statusnc",
        str(job),
        env=env_for(sim.url, tmp_path),
    )
    assert result == code, err
    assert json.loads(out)["fields"]["STATUSNC"] == outcome
    assert sim.stats()["requests"]["job"] >= 2  # it really polled


@pytest.mark.asyncio
async def test_wait_timeout_exits_4(sim_factory: Any, tmp_path: Path) -> None:
    """A job that never finishes stops the wait at --wait-timeout with exit 4."""
    frozen = next(p.idint for p in generate_jobs(400, 0, T0) if p.kind == "Suspended")
    sim = await sim_factory(jobs=400, start_time=T0)
    code, out, err = await ncinfo(
        "--wait",
        "--poll-interval",
        "0.2",
        "--wait-timeout",
        "1",
        "--format",
        "ndjson",
        str(frozen),
        env=env_for(sim.url, tmp_path),
    )
    assert code == 4
    assert json.loads(out)["fields"]["STATUSNC"] == "Suspended"
    assert "still unfinished" in err


@pytest.mark.asyncio
async def test_summary_in_the_json_document(sim: Simulator, tmp_path: Path) -> None:
    """--summary with --format json adds counts per status to the document."""
    code, out, _ = await ncinfo(
        "--format", "json", "--summary", "1", "2", "3", "9999", env=env_for(sim.url, tmp_path)
    )
    summary = json.loads(out)["summary"]
    assert code == 1
    assert summary["requested"] == 4
    assert summary["found"] == 3
    assert sum(summary["by_status"].values()) == 3
    assert summary["failed_by_kind"] == {"not_found": 1}


@pytest.mark.asyncio
async def test_second_run_reuses_the_cached_token(sim: Simulator, tmp_path: Path) -> None:
    """A second run within the token lifetime makes no token request; --logout forgets it."""
    env = env_for(sim.url, tmp_path)
    assert (await ncinfo("1", env=env))[0] == 0
    assert sim.stats()["requests"]["token"] == 1
    cached = list((tmp_path / "cache").glob("*.json"))
    assert len(cached) == 1
    assert stat.S_IMODE(cached[0].stat().st_mode) == 0o600
    assert (await ncinfo("2", env=env))[0] == 0
    assert sim.stats()["requests"]["token"] == 1
    assert sim.stats()["requests"]["job"] == 2
    code, _, err = await ncinfo("--logout", env=env)
    assert code == 0
    assert "removed" in err
    assert not list((tmp_path / "cache").glob("*.json"))
    assert (await ncinfo("3", env=env))[0] == 0
    assert sim.stats()["requests"]["token"] == 2


@pytest.mark.asyncio
async def test_no_token_cache_writes_nothing(sim: Simulator, tmp_path: Path) -> None:
    """--no-token-cache neither reads nor writes a cache file."""
    env = env_for(sim.url, tmp_path)
    assert (await ncinfo("--no-token-cache", "1", env=env))[0] == 0
    assert not (tmp_path / "cache").exists()


@pytest.mark.asyncio
async def test_a_revoked_cached_token_is_replaced(sim: Simulator, tmp_path: Path) -> None:
    """A cached token the server no longer accepts costs one 401 and one new token."""
    env = env_for(sim.url, tmp_path)
    await ncinfo("1", env=env)
    assert list((tmp_path / "cache").glob("*.json")), "the first run cached no token"
    sim.revoke()
    code, out, _ = await ncinfo("2", env=env)
    assert code == 0
    assert "000000002" in out
    assert sim.stats()["requests"]["token"] == 2
    # Without a cached token the second run would have met no 401 at all.
    assert sim.stats()["unauthorized"] == 1


@pytest.mark.asyncio
async def test_url_from_nc_cmd_vovbrowser(sim: Simulator, tmp_path: Path) -> None:
    """Without NC_URL, the URL printed by `nc cmd vovbrowser` (with /project) is used."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nc"
    fake.write_text(f'#!/bin/sh\n[ "$1 $2" = "cmd vovbrowser" ] && echo {sim.url}/project\n')
    fake.chmod(0o755)
    env = env_for(None, tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code, out, err = await ncinfo("5", env=env)
    assert code == 0, err
    assert "Job             000000005" in out


def test_demo_is_quick_to_start() -> None:
    """`ncinfo --version` answers without starting an event loop or importing aiohttp."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "ncinfo_async", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.startswith("ncinfo ")
    assert time.perf_counter() - started < 60  # a hang guard, not a speed claim
