"""Tier 3: the edges of a CLI run: signals with open input, unwritable output, hostile text.

Each case runs ``ncinfo`` as a subprocess against the simulator or a raw-socket server.  Time
limits only catch hangs: a run that ignores a signal while its input stays open would run
until the test kills it.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ncinfo_async import _exitcodes
from ncinfo_async._cli import EPILOG
from ncinfo_async._escape import UNSAFE

from .cliutil import assert_clean_exit, cli_env
from .rawservers import HOSTILE, Hostile, Silent

if TYPE_CHECKING:
    from ncinfo_async.sim import Simulator


#: Hang guard for a run that has been signalled (it takes well under a second).
SIGNALLED = 10.0


def nonblocking(fd: int) -> bool:
    """Whether the open file description behind ``fd`` has O_NONBLOCK set."""
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)


@asynccontextmanager
async def ncinfo(
    *args: str, env: dict[str, str], stdin: int, stdout: int = subprocess.PIPE
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m ncinfo_async`` with the given stdin descriptor; killed if still running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ncinfo_async", *args,
        stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read_lines(proc: asyncio.subprocess.Process, count: int) -> list[dict[str, Any]]:
    """The next ``count`` ndjson lines of the process's stdout."""
    assert proc.stdout is not None
    return [json.loads(await proc.stdout.readline()) for _ in range(count)]


async def finish(proc: asyncio.subprocess.Process, limit: float) -> tuple[bytes, str]:
    """The rest of stdout and all of stderr once the process ends (within ``limit`` s)."""
    async with asyncio.timeout(limit):
        out, err = await proc.communicate()
    return out or b"", err.decode()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
@pytest.mark.asyncio
async def test_signal_ends_a_run_whose_stdin_pipe_stays_open(
    sim: Simulator, signum: signal.Signals, code: int, loop: str
) -> None:
    """`(echo 1; echo 2; sleep 30) | ncinfo` + a signal: prompt exit, results kept, flag reset."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"1\n2\n")
        extra = ["--asyncio"] if loop == "asyncio" else []
        args = ("--format", "ndjson", *extra)
        async with ncinfo(*args, env=cli_env(sim.url), stdin=read_fd) as proc:
            async with asyncio.timeout(60):
                lines = await read_lines(proc, 2)
            # The reader waits on the pipe through the event loop, not in a blocked thread.
            assert nonblocking(read_fd)
            proc.send_signal(signum)
            rest, err = await finish(proc, SIGNALLED)
        assert proc.returncode == code, err
        assert [line["id"] for line in lines] == [1, 2]
        assert rest == b""
        assert signum.name in err
        assert_clean_exit(err)
        # O_NONBLOCK belongs to the pipe's shared file description: it is put back.
        assert not nonblocking(read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.asyncio
async def test_signal_while_wait_reads_open_stdin() -> None:
    """`--wait` collects all input first: SIGTERM then ends it, each ID read `interrupted`."""
    read_fd, write_fd = os.pipe()
    server = Silent()
    try:
        os.write(write_fd, b"1\n2\n1\n")
        args = ("--wait", "--format", "ndjson")
        async with server as url, ncinfo(*args, env=cli_env(url), stdin=read_fd) as proc:
            async with asyncio.timeout(60):
                # Answered at once: the run is then reading stdin until its end, or a signal.
                await server.token_requested.wait()
            proc.send_signal(signal.SIGTERM)
            out, err = await finish(proc, SIGNALLED)
        assert proc.returncode == 143, err
        lines = [json.loads(line) for line in out.decode().splitlines()]
        assert [line["id"] for line in lines] == [1, 2]
        assert {line["error"]["kind"] for line in lines} == {"interrupted"}
        assert server.job_requests == 0
        assert_clean_exit(err)
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.asyncio
async def test_a_second_signal_exits_at_once_without_a_traceback(sim: Simulator) -> None:
    """Two SIGINTs in a row with stdin open: exit 130, no KeyboardInterrupt traceback."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"1\n")
        async with ncinfo("--format", "ndjson", env=cli_env(sim.url), stdin=read_fd) as proc:
            async with asyncio.timeout(60):
                await read_lines(proc, 1)
            proc.send_signal(signal.SIGINT)
            proc.send_signal(signal.SIGINT)
            _, err = await finish(proc, SIGNALLED)
        assert proc.returncode == 130, err
        assert_clean_exit(err)
        assert not nonblocking(read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.asyncio
async def test_signal_during_login_reports_the_ids_already_read() -> None:
    """SIGTERM while the token request hangs and stdin is open: each ID read gets `interrupted`."""
    read_fd, write_fd = os.pipe()
    server = Silent(token_too=True)
    try:
        os.write(write_fd, b"5\n6\n5\n")
        async with (
            server as url,
            ncinfo("--format", "ndjson", env=cli_env(url), stdin=read_fd) as proc,
        ):
            async with asyncio.timeout(60):
                await server.token_requested.wait()
            proc.send_signal(signal.SIGTERM)
            out, err = await finish(proc, SIGNALLED)
        assert proc.returncode == 143, err
        lines = [json.loads(line) for line in out.decode().splitlines()]
        assert [line["id"] for line in lines] == [5, 6]
        assert {line["error"]["kind"] for line in lines} == {"interrupted"}
        assert_clean_exit(err)
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.asyncio
async def test_signal_with_a_terminal_as_stdin(sim: Simulator) -> None:
    """A pty as stdin (an interactive user): Ctrl-C's SIGINT ends the run with 130 at once."""
    master, slave = os.openpty()
    try:
        os.write(master, b"3\n4\n")
        async with ncinfo("--format", "ndjson", env=cli_env(sim.url), stdin=slave) as proc:
            async with asyncio.timeout(60):
                lines = await read_lines(proc, 2)
            proc.send_signal(signal.SIGINT)
            _, err = await finish(proc, SIGNALLED)
        assert proc.returncode == 130, err
        assert [line["id"] for line in lines] == [3, 4]
        assert_clean_exit(err)
        # A terminal's description is shared with the shell: it is never made non-blocking.
        assert not nonblocking(slave)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("target", "module"),
    [
        ("script", "ncinfo_async._protocol"),
        ("script", "argparse"),
        ("script", "orjson"),
        ("script", "aiohttp"),
        ("ncinfo_async._cli:main", "aiohttp"),
    ],
)
async def test_sigint_during_imports_exits_130_quietly(
    sim: Simulator, target: str, module: str
) -> None:
    """A real SIGINT while `ncinfo` imports `module`: exit 130, no traceback."""
    # The signal is sent from inside that import, so it lands there every time.  "script" is
    # the installed console script's entry point: the script pip generates does `from <module>
    # import <attr>` at its top, outside any handler, so that import must stay short of these.
    if target == "script":
        (entry,) = importlib.metadata.entry_points(group="console_scripts", name="ncinfo")
        target = entry.value
    where, name = target.split(":")
    script = textwrap.dedent(
        f"""
        import importlib.abc, os, signal, sys

        class Interrupt(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == {module!r}:
                    os.kill(os.getpid(), signal.SIGINT)
                return None

        for name in [n for n in sys.modules if n.split(".")[0] in ("argparse", "orjson")]:
            del sys.modules[name]
        sys.meta_path.insert(0, Interrupt())
        sys.argv = ["ncinfo", "1"]
        from {where} import {name}
        sys.exit({name}())
        """
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=cli_env(sim.url),
    )  # fmt: skip
    out, err = await finish(proc, 60)
    assert proc.returncode == 130, err
    assert out == b""
    assert_clean_exit(err)
    assert "KeyboardInterrupt" not in err


@pytest.mark.asyncio
async def test_deadline_ends_the_run_while_stdin_stays_open(sim: Simulator) -> None:
    """`--deadline 2` with stdin open: ends at the deadline, IDs read are answered, exit 0."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"1\n2\n")
        args = ("--format", "ndjson", "--deadline", "2")
        async with ncinfo(*args, env=cli_env(sim.url), stdin=read_fd) as proc:
            out, err = await finish(proc, 30)
        assert proc.returncode == 0, err
        lines = [json.loads(line) for line in out.decode().splitlines()]
        assert [(line["id"], line["ok"]) for line in lines] == [(1, True), (2, True)]
        assert "stopped reading stdin at the 2 s deadline" in err
        assert_clean_exit(err)
        assert not nonblocking(read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.asyncio
async def test_deadline_with_open_stdin_and_a_silent_server_names_the_given_deadline() -> None:
    """Silent server, stdin open, `--deadline 2`: each ID read once as `deadline`, "2 s", exit 1."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"1\n2\n")
        async with Silent() as url:
            args = ("--format", "ndjson", "--deadline", "2")
            async with ncinfo(*args, env=cli_env(url), stdin=read_fd) as proc:
                out, err = await finish(proc, 30)
        assert proc.returncode == 1, err
        lines = [json.loads(line) for line in out.decode().splitlines()]
        assert [line["id"] for line in lines] == [1, 2]
        messages = {line["error"]["message"] for line in lines}
        assert messages == {"not answered within the 2 s deadline"}
        assert_clean_exit(err)
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.asyncio
async def test_deadline_before_any_id_arrives_exits_2(sim: Simulator) -> None:
    """Stdin open and silent under `--deadline 1`: no ID was read, one error, exit 2."""
    read_fd, write_fd = os.pipe()
    try:
        async with ncinfo("--deadline", "1", env=cli_env(sim.url), stdin=read_fd) as proc:
            out, err = await finish(proc, 30)
        assert proc.returncode == 2, err
        assert out == b""
        assert "no job ID read within the 1 s deadline" in err
        assert_clean_exit(err)
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.asyncio
async def test_stdout_closed_before_any_output_exits_141_quietly(sim: Simulator) -> None:
    """Stdout is a pipe nobody reads (`| head -0`): exit 141, nothing at all on stderr."""
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    try:
        async with ncinfo(
            "1", "2", "3", env=cli_env(sim.url), stdin=subprocess.DEVNULL, stdout=write_fd
        ) as proc:
            _, err = await finish(proc, 60)
    finally:
        os.close(write_fd)
    assert proc.returncode == 141, err
    assert_quiet(err)


@pytest.mark.asyncio
async def test_large_run_into_a_pipe_closed_after_one_line_exits_141(sim_factory: Any) -> None:
    """`seq 1 3000 | ncinfo | head -1`: the reader leaves after a line; exit 141, quiet stderr."""
    sim = await sim_factory(jobs=3000)
    read_fd, write_fd = os.pipe()
    ids = " ".join(map(str, range(1, 3001))).split()
    try:
        async with ncinfo(
            "--format",
            "ndjson",
            *ids,
            env=cli_env(sim.url),
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
        ) as proc:
            os.close(write_fd)
            write_fd = -1
            with os.fdopen(read_fd, "rb") as reader:
                read_fd = -1
                first = await asyncio.to_thread(reader.readline)
            _, err = await finish(proc, 60)
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
    assert json.loads(first)["id"] == 1
    assert proc.returncode == 141, err
    assert_quiet(err)


@pytest.mark.asyncio
async def test_full_disk_is_one_line_and_exit_2(sim: Simulator) -> None:
    """`ncinfo 1 2 3 > /dev/full`: exactly one line naming the cause, exit 2, no traceback."""
    full_fd = os.open("/dev/full", os.O_WRONLY)
    try:
        async with ncinfo(
            "1", "2", "3", env=cli_env(sim.url), stdin=subprocess.DEVNULL, stdout=full_fd
        ) as proc:
            _, err = await finish(proc, 60)
    finally:
        os.close(full_fd)
    assert proc.returncode == 2, err
    line = "ncinfo: error: cannot write output: No space left on device\n"
    assert err.count(line) == 1, err
    assert_quiet(err.replace(line, ""))


def assert_quiet(err: str) -> None:
    """Nothing on stderr but the asyncio debug notes of dev mode (slow callbacks under load)."""
    assert [line for line in err.splitlines() if not line.startswith("Executing <")] == [], err


def assert_no_raw_controls(text: str) -> None:
    """Only newlines end lines; no other control or bidi character, no forged line."""
    assert not (UNSAFE - {"\n"}).intersection(text), repr(text)
    assert not any(line.startswith("ncinfo: job 9") for line in text.splitlines()), text


@pytest.mark.parametrize("fmt", ["text", "table"])
@pytest.mark.asyncio
async def test_hostile_server_text_reaches_the_terminal_escaped(fmt: str) -> None:
    """Error bodies, errormsg, field values, summary statuses with OSC/SGR/CR-LF/bidi: escaped."""
    args = ("--format", fmt, "--summary", "1", "2", "3")
    async with (
        Hostile() as url,
        ncinfo("--no-batch", *args, env=cli_env(url), stdin=subprocess.DEVNULL) as proc,
    ):
        out, err = await finish(proc, 60)
    text = out.decode()
    assert proc.returncode == 1, err
    assert_no_raw_controls(err)
    assert_no_raw_controls(text)
    escaped = "\\x1b]0;owned\\x07\\x1b[31mred\\x1b[0m\\r\\nncinfo: job 9: forged \\u202eevil"
    job_lines = [line for line in err.splitlines() if line.startswith("ncinfo: job ")]
    assert len(job_lines) == 2
    assert all(escaped in line for line in job_lines), err
    assert escaped in text  # job 3's STATUSNC and COMMAND
    assert_clean_exit(err)


@pytest.mark.asyncio
async def test_hostile_text_is_carried_faithfully_in_json() -> None:
    """ndjson carries the server's text byte for byte (JSON escapes it); stderr is escaped."""
    async with (
        Hostile() as url,
        ncinfo(
            "--no-batch", "--format", "ndjson", "1", "3", env=cli_env(url), stdin=subprocess.DEVNULL
        ) as proc,
    ):
        out, err = await finish(proc, 60)
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert HOSTILE in lines[0]["error"]["message"]
    assert lines[1]["fields"]["COMMAND"] == HOSTILE
    assert_no_raw_controls(err)


@pytest.mark.asyncio
async def test_hostile_login_refusal_is_escaped_on_stderr() -> None:
    """A 401 to the token request with a hostile `error`: the one error line is escaped."""
    async with (
        Hostile(refuse_login=True) as url,
        ncinfo("1", env=cli_env(url), stdin=subprocess.DEVNULL) as proc,
    ):
        _, err = await finish(proc, 60)
    assert proc.returncode == 2, err
    assert "\\x1b]0;owned" in err
    assert_no_raw_controls(err)


def test_exit_status_precedence_agrees_in_code_help_and_readme() -> None:
    """The --help epilog and the README list every status of _exitcodes, in the team's order."""
    order = ["130", "2", "3", "4", "1", "0", "141"]
    help_part = EPILOG.split("exit status", 1)[1].split("examples:", 1)[0]
    in_help = [row.split()[0] for row in help_part.splitlines() if row[2:3].isdigit()]
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("### Exit status", 1)[1].split("###", 1)[0]
    first_cells = [row.split("|")[1].strip() for row in table.splitlines() if row[2:3].isdigit()]
    in_readme = [cell.split(",")[0] for cell in first_cells]
    codes = {value for name, value in vars(_exitcodes).items() if name.startswith("EXIT_")}
    assert in_help == order
    assert in_readme == order
    assert codes == {int(code) for code in order} | {143}
    assert "143 terminated" in help_part
    assert first_cells[0] == "130, 143"
