"""Tier 3: batched queries, waiting on jobs, CI checks, token reuse and URL discovery."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ncinfo_async.sim import Simulator
from ncinfo_async.sim._jobs import generate_jobs

from .cliutil import cli_env, run_ncinfo, start_ncinfo, steer
from .simutil import until

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


@pytest.mark.asyncio
@pytest.mark.parametrize(("outcome", "code"), [("Failed", 3), ("Done", 0)])
async def test_wait_then_fail_on(sim: Simulator, outcome: str, code: int) -> None:
    """--wait polls a running job until it ends; --fail-on Failed exits 3 only if it failed."""
    sim.set_job_status(7, "Running")
    proc = await start_ncinfo(
        "--wait", "--poll-interval", "0.05", "--fail-on", "Failed",
        "--format", "ndjson", "--fields", "id,statusnc", "7", env=cli_env(sim.url),
    )  # fmt: skip

    async def finish_when_polled() -> None:
        # The job ends only once the CLI has seen it running twice: no race with a clock.
        await until(lambda: sim.job_info(7)["requests"] >= 2)
        sim.set_job_status(7, outcome)

    run = await steer(proc, finish_when_polled)
    assert run.code == code, run.err
    assert json.loads(run.out)["fields"]["STATUSNC"] == outcome
    assert sim.job_info(7)["requests"] >= 3  # it polled on after the change, and then stopped


@pytest.mark.asyncio
async def test_wait_polls_only_unfinished_jobs(sim: Simulator) -> None:
    """--wait asks again only for jobs not yet finished: a finished job is fetched once."""
    sim.set_job_status(1, "Done")
    sim.set_job_status(2, "Running")
    sim.set_job_status(3, "Queued")
    proc = await start_ncinfo(
        "--no-batch", "--wait", "--poll-interval", "0.05", "--format", "ndjson",
        "--fields", "id,statusnc",
        "1", "2", "3", env=cli_env(sim.url),
    )  # fmt: skip

    def polls(job: int) -> int:
        return int(sim.job_info(job)["requests"])

    async def finish_one_by_one() -> None:
        await until(lambda: polls(2) >= 3)
        sim.set_job_status(2, "Done")
        # Job 3 is still polled: wait for two more rounds, after which job 2 must be left alone.
        await until(lambda: polls(3) >= polls(2) + 2)
        settled = polls(2)
        await until(lambda: polls(3) >= settled + 4)
        assert polls(2) == settled
        sim.set_job_status(3, "Failed")

    run = await steer(proc, finish_one_by_one)
    assert run.code == 0, run.err
    assert polls(1) == 1
    statuses = [line["fields"]["STATUSNC"] for line in run.lines()]
    assert statuses == ["Done", "Done", "Failed"]


@pytest.mark.asyncio
async def test_terminal_decides_what_counts_as_finished(sim: Simulator) -> None:
    """--terminal Suspended ends the wait on a suspended job that the default would poll."""
    sim.set_job_status(4, "Suspended")
    run = await run_ncinfo(
        "--wait", "--poll-interval", "0.05", "--terminal", "Done,Suspended",
        "--format", "ndjson", "4", env=cli_env(sim.url),
    )  # fmt: skip
    assert run.code == 0, run.err
    assert sim.job_info(4)["requests"] == 1
    default = await run_ncinfo(
        "--wait", "--poll-interval", "0.05", "--wait-timeout", "0.5",
        "--format", "ndjson", "4", env=cli_env(sim.url),
    )  # fmt: skip
    assert default.code == 4
    assert sim.job_info(4)["requests"] >= 3


@pytest.mark.asyncio
async def test_wait_with_batch_polls_through_queries(sim: Simulator) -> None:
    """--wait --batch polls unfinished jobs with batched queries, never per-job requests."""
    for job in (1, 2, 3):
        sim.set_job_status(job, "Running")
    proc = await start_ncinfo(
        "--wait", "--batch", "--poll-interval", "0.05", "--format", "ndjson",
        "--fields", "id,statusnc", "1", "2", "3", env=cli_env(sim.url),
    )  # fmt: skip

    async def finish_all() -> None:
        await until(lambda: sim.stats()["requests"]["query"] >= 2)
        for job in (1, 2, 3):
            sim.set_job_status(job, "Done")

    run = await steer(proc, finish_all)
    assert run.code == 0, run.err
    assert [line["id"] for line in run.lines()] == [1, 2, 3]
    requests = sim.stats()["requests"]
    assert requests["job"] == 0
    assert requests["query"] >= 3


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


def test_demo_counters_match_the_readme() -> None:
    """`ncinfo demo`: one resend per 401 from the mid-run revocation, one renewal, pooled sockets.

    The README's demo figures: extra requests equal the 401s (each request in flight at the
    revocation is resent once), two token requests, and no more connections than workers
    plus the token request's.
    """
    done = subprocess.run(
        [sys.executable, "-m", "ncinfo_async", "demo", "--http", "--jobs", "400",
         "--concurrency", "8", "--show", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    counts = dict(re.findall(r"^([A-Za-z0-9 ]+?):\s+(\d+)", done.stdout, flags=re.MULTILINE))
    assert "400 jobs inspected, 0 failed" in done.stdout
    assert 1 <= int(counts["401s answered"]) <= 8
    assert int(counts["job requests sent"]) == 400 + int(counts["401s answered"])
    assert int(counts["token requests"]) == 2
    assert 1 <= int(counts["TCP connections"]) <= 8 + 1
    assert int(counts["TLS handshakes"]) == 0
