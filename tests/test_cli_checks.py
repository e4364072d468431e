"""Checks a CI run cannot pass by mistake: validated options, an honest --wait, capped errors.

Tier 1 pins the pure parts (status names, the poll schedule, wait counts, the error cap);
tier 3 runs the ``ncinfo`` command against the simulator.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ncinfo_async._cli import build_parser, check_options
from ncinfo_async._exceptions import ConfigError, NotFoundError
from ncinfo_async._inspection import Console, Inspection, Plan
from ncinfo_async._password import password_prompt, read_password_file
from ncinfo_async._protocol import JobResult
from ncinfo_async._render import make_renderer
from ncinfo_async._settings import Settings
from ncinfo_async._statuses import NC_STATUSES, closest, parse_statuses
from ncinfo_async._stderr import JobErrorLog, write_through
from ncinfo_async._wait import next_poll_in, wait_status
from ncinfo_async.sim import Simulator
from ncinfo_async.sim._jobs import generate_jobs

from .cliutil import assert_clean_exit, cli_env, run_ncinfo, start_ncinfo

T0 = 1_790_000_000.0
#: The `sim` fixture's jobs (200, seed 0): a job's kind does not depend on the start time.
#: Frozen jobs have their status as `kind`; the others end as `outcome`, here already ended.
KINDS = {
    plan.idint: plan.kind if plan.kind != "timeline" else plan.outcome
    for plan in generate_jobs(200, 0, T0)
    if plan.kind != "timeline" or plan.end < T0
}
SUSPENDED = min(job for job, kind in KINDS.items() if kind == "Suspended")
IDLE = min(job for job, kind in KINDS.items() if kind == "Idle")
FAILED = min(job for job, kind in KINDS.items() if kind == "Failed")
DONE = min(job for job, kind in KINDS.items() if kind == "Done")
VALID = "Idle, Queued, Running, Done, Failed, Transfer, Suspended, Sleeping, Withdrawn"


# --- tier 1: pure parts ---------------------------------------------------------------------


def test_status_names_any_case_become_accelerator_spelling() -> None:
    """--fail-on/--terminal names are matched ignoring case and spelled as Accelerator does."""
    assert parse_statuses("failed, WITHDRAWN,Failed", "--fail-on") == ["Failed", "Withdrawn"]
    assert len(NC_STATUSES) == 9


def test_unknown_status_names_the_valid_ones_and_the_closest() -> None:
    """A typo is a ConfigError naming the closest status and every valid one."""
    with pytest.raises(ConfigError) as caught:
        parse_statuses("Done,Faild", "--fail-on")
    message = str(caught.value)
    assert "--fail-on: unknown NC status 'Faild' (did you mean Failed?)" in message
    assert VALID in message
    with pytest.raises(ConfigError, match="needs at least one"):
        parse_statuses(" , ", "--terminal")
    assert closest("stauts", ["ID", "STATUS", "HOST"]) == "STATUS"
    assert closest("zzzz", NC_STATUSES) is None


def test_wait_only_options_need_wait() -> None:
    """--wait-timeout, --poll-interval and --terminal without --wait are refused, each named."""
    for extra in (["--wait-timeout", "9"], ["--poll-interval", "1"], ["--terminal", "Done"]):
        options = build_parser().parse_args([*extra, "1"])
        with pytest.raises(ConfigError, match=f"{extra[0]} only applies with --wait"):
            check_options(options)
    options = build_parser().parse_args(["-w", "--terminal", "done", "1"])
    check_options(options)
    assert options.terminal == ["Done"]
    assert options.poll_interval == 10.0
    assert options.fail_on == []


def test_last_poll_is_at_the_timeout_never_early() -> None:
    """The sleep is cut to land a poll at --wait-timeout; the poll made at the timeout is last."""
    # --wait-timeout 9 with polls every 10 s: the second poll happens at 9 s, not never.
    assert next_poll_in(now=0.7, poll_started=0.0, give_up=9.0, interval=10.0) == pytest.approx(8.3)
    # --wait-timeout 15: polls at 0, 10.7 (after a slow first one), then at 15.
    assert next_poll_in(now=10.9, poll_started=10.7, give_up=15.0, interval=10.0) == (
        pytest.approx(4.1)
    )
    assert next_poll_in(now=15.2, poll_started=15.0, give_up=15.0, interval=10.0) is None
    # A sleep that ended a hair early still counts as the poll at the timeout.
    assert next_poll_in(now=8.999, poll_started=8.999, give_up=9.0, interval=10.0) is None
    assert next_poll_in(now=3.0, poll_started=2.0, give_up=None, interval=10.0) == 10.0


def test_wait_status_counts_and_oldest_unfinished() -> None:
    """Counts finished / running / queued / other and names the smallest unfinished ID."""

    def job(job_id: int, status: str) -> JobResult:
        return JobResult(job_id, {"STATUSNC": status})

    latest = {
        5: job(5, "Done"),
        7: job(7, "Running"),
        3: job(3, "Suspended"),
        9: job(9, "Queued"),
        4: JobResult(4, error=NotFoundError("gone")),
    }
    status = wait_status([5, 7, 3, 9, 4, 11], latest, ("Done",), elapsed=14.04, polls=3)
    assert (status.finished, status.running, status.queued, status.other) == (2, 1, 1, 2)
    assert status.oldest == 3
    assert status.describe() == (
        "2/6 finished, 1 running, 1 queued, 2 other; oldest unfinished 3; 14.0 s elapsed, 3 poll(s)"
    )


def test_job_error_log_caps_and_counts_the_rest_by_kind() -> None:
    """The first 20 errors are printed, the rest counted by kind in one line; show_all: all."""
    lines: list[str] = []
    log = JobErrorLog(lines.append)
    for job_id in range(1, 31):
        log.add(job_id, "not_found" if job_id % 3 else "timeout", f"problem {job_id}")
    log.finish()
    assert len(lines) == 21
    assert lines[0] == "ncinfo: job 1: problem 1\n"
    assert lines[-1].startswith("ncinfo: and 10 more job errors: not_found 6, timeout 4;")
    everything: list[str] = []
    full = JobErrorLog(everything.append, show_all=True)
    for job_id in range(30):
        full.add(job_id, "not_found", "x")
    full.finish()
    assert len(everything) == 30


def test_stderr_writes_go_through_the_progress_bar() -> None:
    """A notice written while a bar shows starts on a cleared line, never glued onto the bar."""
    from tqdm import tqdm

    err = io.StringIO()
    bar = tqdm(total=10, file=err, delay=0, mininterval=0)
    bar.update(3)
    console = Console(out=io.StringIO(), err=err, bar=bar)
    console.notice("job 9: not found")
    bar.close()
    text = err.getvalue()
    before = text[: text.index("ncinfo: job 9")]
    assert re.search(r"\r *\r$", before), repr(text)  # the bar line was cleared first
    write_through(err, None, "plain\n")
    assert err.getvalue().endswith("plain\n")
    # A bar still held back by its delay is not drawn early by a write.
    late = io.StringIO()
    hidden = tqdm(total=10, file=late, delay=60)
    write_through(late, hidden, "early\n")
    assert late.getvalue() == "early\n"
    hidden.close()


def test_quiet_never_overrides_an_explicit_progress() -> None:
    """-q hides the bar by default, but --progress still shows it."""
    settings = Settings(url="http://127.0.0.1:1", user="demo", password="demo")
    console = Console(out=io.StringIO(), err=io.StringIO(), quiet=True)
    forced = Inspection(settings, make_renderer("text", None), console, Plan(progress=True))
    bar = forced._progress_bar()
    assert bar is not None
    bar.close()
    default = Inspection(settings, make_renderer("text", None), console, Plan())
    assert default._progress_bar() is None


def test_password_file_errors_and_prompt_in_words(tmp_path: Path) -> None:
    """A missing password file is named with the reason in words; the prompt names user and URL."""
    with pytest.raises(ConfigError) as caught:
        read_password_file("/nonexistent", print)
    assert str(caught.value) == (
        "cannot read password file /nonexistent: No such file or directory"
    )
    with pytest.raises(ConfigError, match="Is a directory"):
        read_password_file(str(tmp_path), print)
    assert (
        password_prompt("demo", "https://nchost:6271")
        == "Password for demo at https://nchost:6271: "
    )


# --- tier 3: the command ----------------------------------------------------------------------


def _usage_error(err: str) -> str:
    """The one error line of a usage error, after checking the two-line shape."""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[1] == "try 'ncinfo --help'"
    return lines[0]


@pytest.mark.asyncio
async def test_fail_on_typo_is_a_usage_error(sim: Simulator) -> None:
    """`--fail-on Faild` exits 2 before any request, naming the valid statuses and the closest."""
    run = await run_ncinfo("--fail-on", "Faild", str(FAILED), env=cli_env(sim.url))
    assert run.code == 2
    line = _usage_error(run.err)
    assert "unknown NC status 'Faild' (did you mean Failed?)" in line
    assert VALID in line
    assert sim.stats()["requests_total"] == 0


@pytest.mark.asyncio
async def test_terminal_typo_and_wait_only_options_are_usage_errors(sim: Simulator) -> None:
    """`--wait --terminal Don` and `--wait-timeout` without --wait exit 2 with one line each."""
    run = await run_ncinfo("--wait", "--terminal", "Don", "1", env=cli_env(sim.url))
    assert run.code == 2
    assert "--terminal: unknown NC status 'Don' (did you mean Done?)" in _usage_error(run.err)
    run = await run_ncinfo("--wait-timeout", "9", "1", env=cli_env(sim.url))
    assert run.code == 2
    assert _usage_error(run.err) == "ncinfo: error: --wait-timeout only applies with --wait"
    run = await run_ncinfo("-w", "--poll-interval", "x", "1", env=cli_env(sim.url))
    assert _usage_error(run.err) == "ncinfo: error: argument --poll-interval: not a number: 'x'"
    run = await run_ncinfo("-w", "--terminal=", "1", env=cli_env(sim.url))
    assert "--terminal needs at least one NC status" in _usage_error(run.err)
    run = await run_ncinfo("--formt", "json", "1", env=cli_env(sim.url))
    assert run.code == 2
    assert _usage_error(run.err) == (
        "ncinfo: error: unrecognized arguments: --formt (did you mean --format?)"
    )
    assert sim.stats()["requests_total"] == 0


#: Prefixes argparse would take by default, each a different option's start.
ABBREVIATIONS = {
    "--max-rat": "--max-rate",
    "--no-batc": "--no-batch",
    "--concurren": "--concurrency",
    "--fail-o": "--fail-on",
    "--wait-time": "--wait-timeout",
    "--insecur": "--insecure",
}


@pytest.mark.parametrize(("typed", "meant"), sorted(ABBREVIATIONS.items()))
def test_options_are_spelled_whole(
    typed: str, meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An abbreviated option is a usage error naming the whole one, never a silent alias."""
    parser = build_parser()
    assert meant in parser._option_string_actions
    with pytest.raises(SystemExit) as stop:
        parser.parse_args([typed, "5", "1"] if typed != "--insecur" else [typed, "1"])
    assert stop.value.code == 2
    line = capsys.readouterr().err.splitlines()[0]
    assert line.startswith(f"ncinfo: error: unrecognized arguments: {typed}")
    assert line.endswith(f"(did you mean {meant}?)")


def test_unknown_options_get_a_guess_only_when_one_is_close(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--bogus` gets no guess; two misspellings get one guess each."""
    parser = build_parser()
    for argv in (["--bogus", "1"], ["--formt", "json", "--summry", "1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    first, _, second, _ = capsys.readouterr().err.splitlines()
    assert first == "ncinfo: error: unrecognized arguments: --bogus"
    assert second.endswith("(did you mean --format for --formt, --summary for --summry?)")


def test_simulator_options_are_spelled_whole(capsys: pytest.CaptureFixture[str]) -> None:
    """`ncinfo-sim --job 5` is an error: a misspelt fault flag fails, never runs without it."""
    from ncinfo_async.sim._cli import build_parser as sim_parser

    with pytest.raises(SystemExit) as stop:
        sim_parser().parse_args(["--job", "5"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --job 5" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_an_abbreviated_option_sends_nothing(sim: Simulator) -> None:
    """`ncinfo --max-rat 5 1` exits 2 with one line naming --max-rate, before any request."""
    run = await run_ncinfo("--max-rat", "5", "1", env=cli_env(sim.url))
    assert run.code == 2
    assert _usage_error(run.err) == (
        "ncinfo: error: unrecognized arguments: --max-rat (did you mean --max-rate?)"
    )
    assert sim.stats()["requests_total"] == 0


@pytest.mark.asyncio
async def test_fail_on_in_any_case_matches(sim: Simulator) -> None:
    """`--fail-on failed` (lower case) still catches a Failed job: exit 3."""
    run = await run_ncinfo("--fail-on", "failed", str(FAILED), str(DONE), env=cli_env(sim.url))
    assert run.code == 3, run.err


@pytest.mark.asyncio
async def test_short_options_and_format_in_any_case(sim: Simulator) -> None:
    """-o JSON, -f, -c, -u and -s work like their long forms."""
    run = await run_ncinfo(
        "-o", "JSON", "-f", "id,statusnc", "-c", "2", "-u", "demo", "-s", "1", "2",
        env=cli_env(sim.url),
    )  # fmt: skip
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert [item["fields"]["ID"] for item in doc["results"]] == ["000000001", "000000002"]
    assert set(doc["results"][0]["fields"]) == {"ID", "STATUSNC"}
    assert doc["summary"]["found"] == 2


@pytest.mark.asyncio
async def test_unknown_fields_are_named_once_with_the_closest(sim: Simulator) -> None:
    """`--fields id,stauts,hots` names both unknown fields once; --strict makes it exit 2."""
    run = await run_ncinfo("-o", "csv", "-f", "id,stauts,hots", "1", "2", env=cli_env(sim.url))
    assert run.code == 0, run.err
    assert run.out.splitlines()[0] == "ID,STAUTS,HOTS"
    assert run.err == (
        "ncinfo: --fields: no answer carried 'stauts' (closest sent: STATUS), "
        "'hots' (closest sent: HOST); shown empty\n"
    )
    run = await run_ncinfo(
        "-o", "csv", "-f", "id,stauts", "--strict", "1", "2", env=cli_env(sim.url)
    )
    assert run.code == 2
    assert "ncinfo: error: --fields: no answer carried 'stauts'" in run.err
    run = await run_ncinfo("-o", "csv", "-f", "id,host", "--strict", "1", env=cli_env(sim.url))
    assert (run.code, run.err) == (0, "")


@pytest.mark.asyncio
async def test_unknown_fields_in_batches_and_real_fields_left_empty(sim: Simulator) -> None:
    """A batched query echoes any name as empty values: a typo is still named, an empty field not.

    Idle jobs have no HOST: with --strict, HOST is a real field, so the run succeeds.
    """
    run = await run_ncinfo(
        "--batch", "--strict", "-o", "csv", "-f", "id,stauts", "1", "2", env=cli_env(sim.url)
    )
    assert run.code == 2
    assert "no answer carried 'stauts' (closest sent: STATUS)" in run.err
    idle = sorted(job for job, kind in KINDS.items() if kind == "Idle")[:2]
    for mode in ("--batch", "--no-batch"):
        run = await run_ncinfo(
            mode, "--strict", "-o", "csv", "-f", "id,host", *map(str, idle), env=cli_env(sim.url)
        )
        assert (run.code, run.err) == (0, ""), mode
        assert run.out.splitlines()[1] == f"{idle[0]:09d},"


@pytest.mark.asyncio
async def test_per_job_errors_are_capped_and_counted(sim: Simulator) -> None:
    """30 unknown IDs: 20 error lines and one counting the other 10; -v lists all 30."""
    ids = "".join(f"{9000 + n}\n" for n in range(30)).encode()
    run = await run_ncinfo("-o", "csv", env=cli_env(sim.url), stdin=ids)
    assert run.code == 1
    lines = run.err.splitlines()
    assert len(lines) == 21, run.err
    assert lines[0] == "ncinfo: job 9000: not found (no job with id 9000)"
    assert lines[-1] == (
        "ncinfo: and 10 more job errors: not_found 10; "
        "-v lists them all, --format ndjson carries each"
    )
    run = await run_ncinfo("-v", "-o", "csv", env=cli_env(sim.url), stdin=ids)
    assert run.code == 1
    assert len(re.findall(r"^ncinfo: job \d+: not found", run.err, re.MULTILINE)) == 30
    assert "more job errors" not in run.err


@pytest.mark.asyncio
@pytest.mark.timeout(300)  # a hang guard: each unknown ID is confirmed by its own GET
async def test_18000_unknown_ids_give_a_short_stderr(sim: Simulator) -> None:
    """18,000 unknown IDs: at most 100 stderr lines, one of them counting the rest by kind."""
    ids = "".join(f"{100_000 + n}\n" for n in range(18_000)).encode()
    run = await run_ncinfo("--batch", "-o", "csv", env=cli_env(sim.url), stdin=ids, limit=280)
    assert run.code == 1
    lines = run.err.splitlines()
    assert len(lines) <= 100
    assert "ncinfo: and 17,980 more job errors: not_found 17,980;" in run.err
    assert_clean_exit(run.err)


@pytest.mark.asyncio
async def test_wait_gives_up_at_the_timeout_with_status_lines(sim: Simulator) -> None:
    """Idle and Suspended jobs are waited for; a line per poll; exit 4 not before the timeout."""
    run = await run_ncinfo(
        "--wait", "--no-batch", "--wait-timeout", "1", "--poll-interval", "0.4", "-o", "csv",
        "-f", "id,statusnc", str(SUSPENDED), str(IDLE), str(DONE), env=cli_env(sim.url),
    )  # fmt: skip
    assert run.code == 4, run.err
    status_lines = [line for line in run.err.splitlines() if line.startswith("ncinfo: waiting:")]
    polls = sim.stats()["requests"]["job"] - 1  # the finished job is fetched once
    assert len(status_lines) == polls // 2 >= 2  # one line per poll of the two frozen jobs
    oldest = min(SUSPENDED, IDLE)
    assert status_lines[0].startswith(
        f"ncinfo: waiting: 1/3 finished, 0 running, 0 queued, 2 other; oldest unfinished {oldest};"
    )
    elapsed = float(re.findall(r"still unfinished after ([\d.]+) s", run.err)[0])
    assert elapsed >= 1.0  # really waited the whole timeout
    assert f"(--wait-timeout 1); the oldest is {oldest}" in run.err
    assert sorted(run.out.splitlines()[1:]) == sorted(
        [f"{SUSPENDED:09d},Suspended", f"{IDLE:09d},Idle", f"{DONE:09d},Done"]
    )


@pytest.mark.asyncio
async def test_wait_status_shows_in_the_progress_bar(sim: Simulator) -> None:
    """With a progress bar, the wait counts are in the bar, and other lines never glued onto it."""
    run = await run_ncinfo(
        "--wait", "--progress", "--wait-timeout", "0.6", "--poll-interval", "0.2", "-o", "csv",
        str(SUSPENDED), env=cli_env(sim.url),
    )  # fmt: skip
    assert run.code == 4, run.err
    assert "ncinfo: waiting:" not in run.err
    assert f"0/1 finished, 0 running, 0 queued, 1 other; oldest unfinished {SUSPENDED}" in run.err
    notice = run.err.index("ncinfo: 1 job(s) still unfinished")
    assert run.err[notice - 1] in "\r\n", repr(run.err)


@pytest.mark.asyncio
async def test_wait_that_finishes_says_so(sim: Simulator) -> None:
    """A wait on finished jobs ends after one poll with a status line and exit 0."""
    run = await run_ncinfo("-w", "-o", "csv", str(DONE), env=cli_env(sim.url))
    assert run.code == 0, run.err
    assert run.err.startswith("ncinfo: waiting: 1/1 finished, 0 running, 0 queued, 0 other; 0")
    run = await run_ncinfo("-w", "-q", "-o", "csv", str(DONE), env=cli_env(sim.url))
    assert (run.code, run.err) == (0, "")


@pytest.mark.slow
@pytest.mark.asyncio
async def test_wait_timeout_14_on_a_suspended_job(sim: Simulator) -> None:
    """`--wait-timeout 14 --poll-interval 10`: a status line within 9 s, exit 4 at 14-30 s."""
    started = time.monotonic()
    proc = await start_ncinfo(
        "--wait", "--wait-timeout", "14", "--poll-interval", "10", str(SUSPENDED),
        env=cli_env(sim.url),
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(9):
            first = await proc.stderr.readline()
        assert first.startswith(b"ncinfo: waiting: 0/1 finished"), first
        async with asyncio.timeout(60):
            rest = await proc.stderr.read()
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    took = time.monotonic() - started
    assert proc.returncode == 4
    assert 14 <= took <= 30
    assert b"still unfinished after 14." in rest
    assert sim.stats()["requests"]["job"] == 3  # polls at 0, 10 and 14 s


def test_demo_help_is_plain_text() -> None:
    """`ncinfo demo --help` shows words, not reStructuredText markup."""
    result = subprocess.run(
        [sys.executable, "-m", "ncinfo_async", "demo", "--help"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "``" not in result.stdout
    assert "Run the whole client against a simulator" in result.stdout


def test_every_simulator_option_has_help() -> None:
    """Each `ncinfo-sim` option has a help text."""
    from ncinfo_async.sim._cli import build_parser as sim_parser

    missing = [a.option_strings for a in sim_parser()._actions if not a.help]
    assert missing == []


def test_terminal_stdin_hint_and_prompt_naming_user_and_server(sim_process: str) -> None:
    """On a terminal: a hint that IDs are read until Ctrl-D, and a prompt naming user and URL."""
    import pty

    env = cli_env(sim_process)
    del env["NC_PASSWORD"]
    master, slave = pty.openpty()
    # The child makes the pty its controlling terminal (a new session, then open it), as a
    # login shell would, so /dev/tty is the pty.
    launcher = (
        "import os, sys; os.setsid(); os.close(os.open(os.ttyname(0), os.O_RDWR)); "
        "os.execv(sys.executable, [sys.executable, '-m', 'ncinfo_async', '-o', 'csv', '-f', 'id'])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    seen = b""
    try:
        seen = _read_until(master, b"end with Ctrl-D\r\n", seen)
        os.write(master, b"1\n")
        seen = _read_until(master, f"Password for demo at {sim_process}: ".encode(), seen)
        os.write(master, b"demo\n")
        seen = _read_until(master, b"000000001", seen)
        # End of input only now: getpass flushes the terminal's pending input when it starts.
        os.write(master, b"\x04")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"ncinfo: reading job IDs from the terminal; end with Ctrl-D" in seen


def _read_until(fd: int, wanted: bytes, seen: bytes) -> bytes:
    """Read the pty until ``wanted`` appears (30 s only to catch a hang)."""
    import select

    deadline = time.monotonic() + 30
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"waited for {wanted!r}, saw {seen!r}"
        seen += os.read(fd, 4096)
    return seen


@pytest.fixture
def sim_process() -> Iterator[str]:
    """An `ncinfo-sim` process (200 jobs) for a test without an event loop; yields its URL."""
    launch = "import sys; from ncinfo_async.sim._cli import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, "--jobs", "200", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.asyncio
async def test_a_long_poll_interval_still_reports_every_heartbeat(sim: Simulator) -> None:
    """Between two polls farther apart than the heartbeat, status lines keep coming."""
    from ncinfo_async import Client
    from ncinfo_async._wait import WaitStatus, wait_for_jobs

    reports: list[WaitStatus] = []
    settings = Settings(url=sim.url, user="demo", password="demo")
    async with Client(settings) as client:
        outcome = await wait_for_jobs(
            client,
            [SUSPENDED],
            poll_interval=3.0,
            give_up_after=3.0,
            report=reports.append,
            heartbeat=0.5,
        )
    assert outcome.unfinished == [SUSPENDED]
    assert outcome.polls == 2
    assert outcome.elapsed >= 3.0
    # One report per poll, plus heartbeats while sleeping the 3 s in between.
    assert [r.polls for r in reports].count(2) == 1
    assert [r.polls for r in reports].count(1) >= 3
    assert all(r.oldest == SUSPENDED and r.other == 1 for r in reports)


@pytest.mark.asyncio
async def test_flags_win_over_environment_variables(sim: Simulator, tmp_path: Path) -> None:
    """--user and --password-file are used even when NC_USER and NC_PASSWORD say otherwise."""
    secret = tmp_path / "password"
    secret.write_text("demo\n")
    secret.chmod(0o600)
    env = cli_env(sim.url, NC_USER="nobody", NC_PASSWORD="wrong")
    run = await run_ncinfo("-u", "demo", "--password-file", str(secret), "1", env=env)
    assert run.code == 0, run.err
    run = await run_ncinfo("1", env=env)
    assert run.code == 2
