"""Tier 3: each CLI flag and environment variable has the effect its --help promises.

Effects are read from the simulator's counters (requests per route, connections, tokens)
or from the output, never from timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import json
import os
import pty
import socket
import struct
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncinfo_async._cli import build_parser
from ncinfo_async._inspection import Console
from ncinfo_async._run import build_settings
from ncinfo_async.sim import FaultConfig, Simulator

from .cliutil import assert_clean_exit, cli_env, run_ncinfo
from .conftest import SimFactory
from .rawservers import QueryErrormsg, RawServer, job_table, response


def ids(run_out: str) -> list[int]:
    """The IDs of an ndjson output, in output order."""
    return [json.loads(line)["id"] for line in run_out.splitlines()]


# -- server and credentials ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_url_flag_is_used_and_beats_nc_url(sim: Simulator) -> None:
    """--url names the server, and wins over NC_URL (here a dead loopback port)."""
    env = cli_env("http://127.0.0.1:9")
    run = await run_ncinfo("--url", sim.url, "--format", "ndjson", "3", env=env)
    assert run.code == 0, run.err
    assert ids(run.out) == [3]
    assert sim.stats()["requests"]["job"] == 1


@pytest.mark.asyncio
async def test_user_flag_is_used_and_beats_nc_user(sim_factory: SimFactory) -> None:
    """--user is the name sent to the token request, over NC_USER."""
    sim = await sim_factory(users={"alice": "alice-pw", "demo": "demo"})
    env = cli_env(sim.url, NC_PASSWORD="alice-pw")  # NC_USER=demo: wrong for this password
    assert (await run_ncinfo("1", env=env)).code == 2
    run = await run_ncinfo("--user", "alice", "1", env=env)
    assert run.code == 0, run.err
    assert sim.stats()["tokens_issued"] == 1


@pytest.mark.asyncio
async def test_nc_cacert_verifies_https(sim_factory: SimFactory, tmp_path: Path) -> None:
    """NC_CACERT is the CA bundle HTTPS is verified against; without it the CA is unknown."""
    sim = await sim_factory(tls=True)
    ca = sim.write_ca(tmp_path / "ca.pem")
    refused = await run_ncinfo("1", env=cli_env(sim.url))
    assert refused.code == 2
    assert "certificate" in refused.err
    run = await run_ncinfo("1", env=cli_env(sim.url, NC_CACERT=str(ca)))
    assert run.code == 0, run.err
    assert sim.stats()["tls_handshakes"] >= 1


def test_plain_http_password_warning_is_for_other_hosts_only() -> None:
    """The password-over-http warning is given for a remote host, never for loopback or https.

    Decided without any traffic: no request leaves this machine in a test.
    """

    def warnings(url: str) -> str:
        err = io.StringIO()
        options = build_parser().parse_args(["--url", url, "1"])
        build_settings(options, {"NC_USER": "me"}, Console(out=io.StringIO(), err=err))
        return err.getvalue()

    assert "plain http" in warnings("http://nchost.example:6271")
    assert "plain http" in warnings("http://10.0.0.5:6271")
    for url in ("http://127.0.0.1:6271", "http://localhost:1", "http://[::1]:2", "https://nc:1"):
        assert warnings(url) == "", url


# -- output ---------------------------------------------------------------------------------


class HoldFirst(RawServer):
    """Answers job 1 only after every other job was answered."""

    def __init__(self, others: int) -> None:
        super().__init__()
        self.others = others
        self.answered = 0
        self.rest_done = asyncio.Event()

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if job_id == 1:
            await self.rest_done.wait()
        writer.write(response(200, job_table(job_id)))
        await writer.drain()
        if job_id != 1:
            self.answered += 1
            if self.answered == self.others:
                self.rest_done.set()
        return True


@pytest.mark.asyncio
@pytest.mark.parametrize("order", ["input", "completion"])
async def test_order_input_or_completion(order: str) -> None:
    """--order input keeps argument order; --order completion prints a slow job last."""
    async with HoldFirst(others=3) as url:
        run = await run_ncinfo(
            "--no-batch", "--order", order, "--format", "ndjson", "--concurrency", "4",
            "1", "2", "3", "4", env=cli_env(url),
        )  # fmt: skip
    assert run.code == 0, run.err
    printed = ids(run.out)
    assert sorted(printed) == [1, 2, 3, 4]
    if order == "completion":
        assert printed[-1] == 1  # answered only after the other three
    else:
        assert printed == [1, 2, 3, 4]


@pytest.mark.asyncio
async def test_quiet_silences_per_job_errors_not_the_status(sim: Simulator) -> None:
    """-q drops the per-job error lines from stderr; the exit status still says 1."""
    loud = await run_ncinfo("1", "999999", env=cli_env(sim.url))
    quiet = await run_ncinfo("-q", "1", "999999", env=cli_env(sim.url))
    assert loud.code == quiet.code == 1
    assert "job 999999" in loud.err
    assert quiet.err == ""
    assert quiet.out == loud.out


@pytest.mark.asyncio
async def test_verbose_logs_each_request_without_credentials(sim: Simulator) -> None:
    """-v logs each job request's method, URL and status; the token never appears."""
    run = await run_ncinfo("--no-batch", "-v", "1", "2", env=cli_env(sim.url))
    assert run.code == 0
    assert f"GET {sim.url}/api/v3/jobs/1 -> 200" in run.err
    assert f"GET {sim.url}/api/v3/jobs/2 -> 200" in run.err
    assert "Authorization" not in run.err  # that is -vv
    assert "eyJ" not in run.err
    quiet = await run_ncinfo("1", env=cli_env(sim.url))
    assert "/api/v3/jobs/1" not in quiet.err


def _drain(fd: int, sink: list[bytes]) -> None:
    """Read a pty master until the other side is closed."""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every holder of the terminal side closed it
            return
        if not chunk:
            return
        sink.append(chunk)


async def stderr_on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run ncinfo with stderr on a pseudo-terminal; return its exit status and stderr."""
    master, slave = pty.openpty()
    # A terminal of zero columns gets no bar from tqdm: give it a real size.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    seen: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(master, seen), daemon=True)
    reader.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            *_ncinfo_argv(), *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=slave, env=env,
        )  # fmt: skip
        os.close(slave)
        async with asyncio.timeout(120):
            code = await proc.wait()
        await asyncio.to_thread(reader.join, 30)
    finally:
        os.close(master)
    return code, b"".join(seen).decode(errors="replace")


def _ncinfo_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "ncinfo_async"]


@pytest.mark.asyncio
async def test_no_progress_hides_the_bar_on_a_terminal(sim_factory: SimFactory) -> None:
    """On a terminal a run over a second shows a progress bar; --no-progress hides it."""
    sim = await sim_factory(jobs=300, latency_ms=20)
    job_ids = [str(n) for n in range(1, 301)]
    base = ["--no-batch", "--format", "ndjson", "--concurrency", "4", *job_ids]
    code, shown = await stderr_on_a_terminal(*base, env=cli_env(sim.url))
    assert code == 0
    assert "job/s" in shown
    code, hidden = await stderr_on_a_terminal("--no-progress", *base, env=cli_env(sim.url))
    assert code == 0
    assert "job/s" not in hidden


# -- speed, timeouts and retries ----------------------------------------------------------


@pytest.mark.asyncio
async def test_no_keepalive_opens_a_connection_per_request(sim_factory: SimFactory) -> None:
    """The pool reuses at most --concurrency + 1 connections; --no-keepalive opens one each."""
    sim = await sim_factory(jobs=30)
    # Fields that do not move with time, so both runs print the same.
    job_ids = ["--no-batch", "--fields", "id,user", *(str(n) for n in range(1, 31))]
    pooled = await run_ncinfo("--concurrency", "2", *job_ids, env=cli_env(sim.url))
    assert pooled.code == 0
    assert sim.stats()["connections"] <= 3
    sim.reset_stats()
    fresh = await run_ncinfo("--no-keepalive", "--concurrency", "2", *job_ids, env=cli_env(sim.url))
    assert fresh.code == 0
    assert sim.stats()["connections"] >= 30
    assert fresh.out == pooled.out


@pytest.mark.asyncio
async def test_retry_after_beyond_the_job_budget_gives_up_at_once(sim: Simulator) -> None:
    """A Retry-After longer than --job-budget ends the job after one request, not a long wait.

    10 s is within the default budget (120 s), so only --job-budget 5 makes the difference.
    """
    sim.set_faults(FaultConfig(error_rate=1.0, error_status=503, retry_after=10))
    run = await run_ncinfo(
        "--job-budget", "5", "--attempts", "2", "--format", "ndjson", "4",
        env=cli_env(sim.url), limit=60,
    )  # fmt: skip
    assert run.code == 1
    (line,) = run.lines()
    assert line["error"]["kind"] == "http_status"
    assert line["error"]["status"] == 503
    assert sim.stats()["requests"]["job"] == 1


@pytest.mark.asyncio
async def test_retry_after_within_the_job_budget_is_waited(sim: Simulator) -> None:
    """A Retry-After of 1 s within --job-budget is waited out: every attempt is made."""
    sim.set_faults(FaultConfig(error_rate=1.0, error_status=429, retry_after=1))
    run = await run_ncinfo(
        "--job-budget", "30", "--attempts", "2", "--format", "ndjson", "4", env=cli_env(sim.url)
    )
    assert run.code == 1
    assert run.lines()[0]["error"]["status"] == 429
    assert sim.stats()["requests"]["job"] == 2


@pytest.mark.asyncio
async def test_504_is_retried_up_to_attempts(sim: Simulator) -> None:
    """504 is retried: --attempts 3 means exactly three requests, then an http_status error."""
    sim.set_faults(FaultConfig(error_rate=1.0, error_status=504))
    run = await run_ncinfo("--attempts", "3", "--format", "ndjson", "4", env=cli_env(sim.url))
    assert run.code == 1
    assert run.lines()[0]["error"]["status"] == 504
    assert sim.stats()["requests"]["job"] == 3
    assert sim.stats()["responses"]["504"] == 3


@contextlib.contextmanager
def never_accepting() -> Iterator[str]:
    """A loopback port whose listen backlog is full: a connect there waits, never completes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):  # backlog 0 still queues one or two: fill the queue for good
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for sock in [*fillers, server]:
            sock.close()


@pytest.mark.asyncio
async def test_connect_timeout_against_a_server_that_never_accepts() -> None:
    """--connect-timeout bounds each connect: a server that never accepts is one clear error."""
    with never_accepting() as url:
        run = await run_ncinfo(
            "--connect-timeout", "0.5", "--attempts", "2", "1", env=cli_env(url), limit=60
        )
    assert run.code == 2
    assert_clean_exit(run.err)
    assert "ncinfo: error:" in run.err


# -- batches -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_url_budget_cuts_batches(sim_factory: SimFactory) -> None:
    """--url-budget bounds each query URL: a small budget means more, smaller queries."""
    sim = await sim_factory(jobs=100)
    stdin = "\n".join(map(str, range(1, 101))).encode()
    wide = await run_ncinfo("--batch", "--format", "ndjson", env=cli_env(sim.url), stdin=stdin)
    assert wide.code == 0
    # IDs are batched as they are read, so a fast reader may send a first short query.
    wide_queries = sim.stats()["requests"]["query"]
    assert wide_queries <= 2
    sim.reset_stats()
    narrow = await run_ncinfo(
        "--batch", "--url-budget", "300", "--format", "ndjson", env=cli_env(sim.url), stdin=stdin
    )
    assert narrow.code == 0
    assert sorted(ids(narrow.out)) == list(range(1, 101))
    # 100 IDs of 1-3 digits cost 4-6 bytes each: at most ~300 bytes per query means several.
    assert sim.stats()["requests"]["query"] >= max(3, wide_queries + 1)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "with_rows",
    [True, False],
    ids=["rows", "no-rows"],
)
async def test_batch_falls_back_on_errormsg(with_rows: bool) -> None:
    """A 200 query answer with an errormsg switches to per-job requests, with one notice."""
    server = QueryErrormsg(with_rows=with_rows)
    async with server as url:
        run = await run_ncinfo(
            "--batch", "--format", "ndjson", "--concurrency", "3", "1", "2", "3",
            env=cli_env(url),
        )  # fmt: skip
    assert run.code == 0, run.err
    assert sorted(ids(run.out)) == [1, 2, 3]
    assert all(line["ok"] for line in run.lines())
    assert run.err.count("refused a batched query") == 1
    assert server.job_requests == 3


# -- token cache ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_refused_cached_token_is_dropped(sim: Simulator, tmp_path: Path) -> None:
    """A cached token that ends in an authentication error is removed from the cache."""
    cache = tmp_path / "cache"
    env = cli_env(sim.url, NCINFO_CACHE_DIR=str(cache))
    assert (await run_ncinfo("1", env=env)).code == 0
    assert len(list(cache.glob("*.json"))) == 1
    sim.revoke()  # the cached token dies, and the password no longer works either
    refused = await run_ncinfo("1", env={**env, "NC_PASSWORD": "wrong"})
    assert refused.code == 2
    assert not list(cache.glob("*.json"))
    assert sim.stats()["requests"]["token"] == 2  # the first run's and the refused one
    again = await run_ncinfo("1", env=env)
    assert again.code == 0
    assert sim.stats()["unauthorized"] == 2  # no third 401: nothing stale was tried again
