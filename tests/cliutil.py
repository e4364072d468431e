"""Running the ``ncinfo`` command as a subprocess, shared by the CLI, bulk and fault tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Run:
    """A finished ``ncinfo`` process: exit status and decoded output."""

    code: int
    out: str
    err: str

    def lines(self) -> list[dict[str, Any]]:
        """The ndjson output, parsed."""
        return [json.loads(line) for line in self.out.splitlines()]


def cli_env(url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: demo credentials, dev mode, no stray NC_ variables.

    NCINFO_CACHE_DIR comes from the autouse fixture in conftest.py (a per-test directory).
    """
    # PYTHONUNBUFFERED would hide whether ncinfo flushes its output when it should.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("NC_") and k != "PYTHONUNBUFFERED"
    }
    env.update({"NC_USER": "demo", "NC_PASSWORD": "demo", "USER": "demo", "PYTHONDEVMODE": "1"})
    if url is not None:
        env["NC_URL"] = url
    env.update(extra)
    return env


async def start_ncinfo(
    *args: str, env: dict[str, str], stdin: bool = False, **popen: Any
) -> asyncio.subprocess.Process:
    """Start ``python -m ncinfo_async`` with pipes for stdout and stderr."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ncinfo_async", *args,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **popen,
    )  # fmt: skip


async def run_ncinfo(
    *args: str, env: dict[str, str], stdin: bytes | None = None, limit: float = 60, **popen: Any
) -> Run:
    """Run the CLI to completion; ``limit`` only catches hangs (the process is then killed)."""
    proc = await start_ncinfo(*args, env=env, stdin=stdin is not None, **popen)
    try:
        async with asyncio.timeout(limit):
            out, err = await proc.communicate(stdin)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def steer(
    proc: asyncio.subprocess.Process, steps: Callable[[], Awaitable[object]], limit: float = 60
) -> Run:
    """Run ``steps`` while ``proc`` runs (finish jobs, send a signal...), then wait for its end.

    ``limit`` only catches hangs; the process is killed if it is still running on the way out.
    """
    try:
        await steps()
        async with asyncio.timeout(limit):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def assert_clean_exit(err: str) -> None:
    """No traceback, unclosed session/transport or unawaited coroutine (PYTHONDEVMODE=1)."""
    for sign in ("Traceback", "Unclosed", "unclosed", "never awaited"):
        assert sign not in err, err
