"""The `ncinfo-sim` console script, run as a real subprocess."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest
import pytest_asyncio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .conftest import Login

SCRIPT = Path(sys.executable).parent / "ncinfo-sim"
URL = re.compile(r"^https?://127\.0\.0\.1:\d+$")


class Running:
    """A started `ncinfo-sim` process and the URL it printed."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    async def stop(self, signum: int) -> tuple[int, str]:
        self.process.send_signal(signum)
        assert self.process.stderr is not None
        err = await asyncio.wait_for(self.process.stderr.read(), 30)
        code = await asyncio.wait_for(self.process.wait(), 30)
        return code, err.decode()


async def start(*args: str) -> Running:
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    return Running(process, line.decode().rstrip("\n"))


@pytest_asyncio.fixture
async def cli_processes() -> AsyncIterator[list[Running]]:
    """Processes started by a test; any still alive at teardown is killed by its PID."""
    started: list[Running] = []
    yield started
    for running in started:
        if running.process.returncode is None:
            running.process.kill()
            await running.process.communicate()


@pytest.mark.asyncio
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_serves_and_stops_cleanly(
    cli_processes: list[Running], login: Login, signum: int
) -> None:
    """`ncinfo-sim --jobs 50 --port 0` prints its URL first, serves, exits 0 on the signal."""
    running = await start("--jobs", "50", "--port", "0")
    cli_processes.append(running)
    assert URL.match(running.url), running.url
    async with aiohttp.ClientSession() as session:
        headers = await login(session, running.url)
        async with session.get(running.url + "/api/v3/jobs/50", headers=headers) as response:
            assert response.status == 200
        async with session.get(running.url + "/api/v3/jobs/51", headers=headers) as response:
            assert response.status == 404
    code, err = await running.stop(signum)
    assert code == 0
    assert "demo:demo" in err
    assert "Traceback" not in err
    assert running.process.stdout is not None
    assert await running.process.stdout.read() == b""


@pytest.mark.asyncio
async def test_cli_tls_with_ca_out(
    cli_processes: list[Running], login: Login, tmp_path: Path
) -> None:
    """`--tls --ca-out PATH` serves HTTPS verifiable with the written CA."""
    ca_file = tmp_path / "ca.pem"
    running = await start("--jobs", "5", "--tls", "--ca-out", str(ca_file))
    cli_processes.append(running)
    assert running.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(ca_file))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        headers = await login(session, running.url)
        async with session.get(running.url + "/api/v3/jobs/1", headers=headers) as response:
            assert response.status == 200
        async with session.get(running.url + "/sim/stats") as response:
            assert (await response.json())["tls_handshakes"] == 1
    code, _ = await running.stop(signal.SIGTERM)
    assert code == 0


@pytest.mark.asyncio
async def test_cli_users_faults_and_options(cli_processes: list[Running], login: Login) -> None:
    """--user, fault flags and --unknown-job reach the server; passwords are never logged."""
    running = await start(
        "--jobs", "5", "--user", "alice:s3cret-pw", "--user", "bob:other-pw",
        "--error-rate", "1", "--error-status", "429", "--retry-after", "7",
        "--unknown-job", "empty", "--seed", "3", "--token-ttl", "60",
    )  # fmt: skip
    cli_processes.append(running)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            running.url + "/api/v3/token", data={"username": "demo", "password": "demo"}
        ) as response:
            assert response.status == 401
        headers = await login(session, running.url, "bob", "other-pw")
        async with session.get(running.url + "/api/v3/jobs/1", headers=headers) as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "7"
        async with session.get(running.url + "/sim/stats") as response:
            stats = await response.json()
    assert stats["faults"]["error_rate"] == 1.0
    code, err = await running.stop(signal.SIGTERM)
    assert code == 0
    assert "alice" in err
    assert "s3cret-pw" not in err
    assert "other-pw" not in err


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "args",
    [
        ["--error-rate", "2"],
        ["--error-status", "404"],
        ["--port", "-1"],
        ["--port", "70000"],
        ["--jobs", "many"],
        ["--unknown-job", "maybe"],
        ["--user", "nocolon"],
        ["--slow-ms", "-3"],
        ["--token-ttl", "0"],
        ["--ca-out", "x.pem"],
        ["--no-such-flag"],
    ],
)
async def test_cli_bad_flags_exit_2(args: list[str]) -> None:
    """A bad flag value is an argparse error: usage on stderr, exit code 2, nothing served."""
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert out == b""
    assert b"usage: ncinfo-sim" in err


def test_cli_help_lists_contract_options() -> None:
    """--help documents every option name other tools rely on."""
    from ncinfo_async.sim._cli import build_parser

    text = build_parser().format_help()
    for option in (
        "--host", "--port", "--jobs", "--user", "--token-ttl", "--latency", "--tls",
        "--ca-out", "--unknown-job", "--time-scale", "--reject-query", "--no-bearer",
        "--error-rate", "--error-status", "--retry-after", "--drop-rate",
        "--close-after-response", "--slow-rate", "--slow-ms",
    ):  # fmt: skip
        assert option in text, option
