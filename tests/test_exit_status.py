"""The exit-status contract: each status alone and combined, in the documented precedence.

The order is read from the README's table and from ``ncinfo --help``, so the code, the README
and the epilog cannot drift apart without a failure here.
"""

from __future__ import annotations

import itertools
import re
import signal
from pathlib import Path

import pytest

from ncinfo_async._cli import EPILOG
from ncinfo_async._exitcodes import exit_status
from ncinfo_async.sim import Simulator

from .cliutil import assert_clean_exit, cli_env, run_ncinfo, start_ncinfo, steer
from .conftest import SimFactory
from .simutil import until

README = Path(__file__).resolve().parent.parent / "README.md"
#: The decided order, first that applies wins.
ORDER = ["130/143", "2", "3", "4", "1", "0"]


def readme_order() -> list[str]:
    """The statuses of the README's exit-status table, top to bottom."""
    text = README.read_text()
    section = text[text.index("### Exit status") :]
    rows = re.findall(r"^\| ([0-9, ]+) \|", section, flags=re.MULTILINE)
    return ["130/143" if "130" in row else row.strip() for row in rows][: len(ORDER) + 1]


def epilog_order() -> list[str]:
    """The statuses of ``ncinfo --help``'s exit-status section, top to bottom."""
    section = EPILOG[EPILOG.index("exit status") :].split("\n\n")[0]
    codes = re.findall(r"^  ([0-9]+) ", section, flags=re.MULTILINE)
    return ["130/143" if code == "130" else code for code in codes]


def test_readme_and_help_give_the_decided_order() -> None:
    """README and --help rank 130/143 > 2 > 3 > 4 > 1 > 0, as decided for the project.

    141 (stdout closed by its reader) ends the run quietly whatever else happened: it is
    documented, outside the ranking.
    """
    for order in (readme_order(), epilog_order()):
        assert "141" in order
        assert [code for code in order if code != "141"] == ORDER


# Every combination of conditions, and what the documented order says it must exit with.
CONDITIONS = ["run_error", "fail_on", "unfinished", "missing"]
STATUS_OF = {"run_error": 2, "fail_on": 3, "unfinished": 4, "missing": 1}


def expected(signal_exit: int | None, present: set[str]) -> int:
    """The first status in ORDER whose condition holds."""
    for entry in ORDER:
        if entry == "130/143" and signal_exit is not None:
            return signal_exit
        for name, status in STATUS_OF.items():
            if entry == str(status) and name in present:
                return status
    return 0


TABLE = [
    (signal_exit, frozenset(c for c, on in zip(CONDITIONS, flags, strict=True) if on))
    for signal_exit in (None, 130, 143)
    for flags in itertools.product([False, True], repeat=len(CONDITIONS))
]


@pytest.mark.parametrize(
    ("signal_exit", "present"),
    TABLE,
    ids=[f"{sig or 'nosig'}-{'+'.join(sorted(p)) or 'clean'}" for sig, p in TABLE],
)
def test_exit_status_table(signal_exit: int | None, present: frozenset[str]) -> None:
    """Each condition alone and in every combination exits with the first that applies."""
    flags = {name: name in present for name in CONDITIONS}
    assert exit_status(signal_exit=signal_exit, **flags) == expected(signal_exit, set(present))


def test_exit_status_spot_checks() -> None:
    """Hand-written rows of the table, so it does not only agree with itself."""
    assert exit_status() == 0
    assert exit_status(missing=True) == 1
    assert exit_status(fail_on=True, missing=True) == 3
    assert exit_status(unfinished=True, missing=True) == 4
    assert exit_status(fail_on=True, unfinished=True) == 3
    assert exit_status(run_error=True, fail_on=True) == 2
    assert exit_status(signal_exit=143, run_error=True, fail_on=True) == 143
    assert exit_status(signal_exit=130, missing=True) == 130


# -- the same contract, end to end ------------------------------------------------------


@pytest.mark.asyncio
async def test_fail_on_outranks_a_missing_id(sim: Simulator) -> None:
    """`--fail-on Failed <a Failed job> 999999` exits 3, not 1: --fail-on ranks first."""
    sim.set_job_status(5, "Failed")
    run = await run_ncinfo(
        "--fail-on", "Failed", "--format", "ndjson", "5", "999999", env=cli_env(sim.url)
    )
    assert run.code == 3, run.err
    by_id = {line["id"]: line for line in run.lines()}
    assert by_id[5]["fields"]["STATUSNC"] == "Failed"
    assert by_id[999999]["error"]["kind"] == "not_found"
    # Without the Failed job the same run is a plain "some IDs not found".
    sim.set_job_status(5, "Done")
    again = await run_ncinfo("--fail-on", "Failed", "5", "999999", env=cli_env(sim.url))
    assert again.code == 1


@pytest.mark.asyncio
async def test_fail_on_outranks_wait_timeout(sim: Simulator) -> None:
    """A --fail-on match plus a job still running at --wait-timeout exits 3."""
    sim.set_job_status(5, "Failed")
    sim.set_job_status(6, "Running")
    args = ["--wait", "--poll-interval", "0.1", "--wait-timeout", "0.5", "--fail-on", "Failed"]
    run = await run_ncinfo(*args, "5", "6", env=cli_env(sim.url))
    assert run.code == 3, run.err
    assert "still unfinished" in run.err


@pytest.mark.asyncio
async def test_wait_timeout_outranks_a_missing_id(sim: Simulator) -> None:
    """A job still running at --wait-timeout plus an unknown ID exits 4."""
    sim.set_job_status(6, "Running")
    args = ["--wait", "--poll-interval", "0.1", "--wait-timeout", "0.5"]
    run = await run_ncinfo(*args, "6", "999999", env=cli_env(sim.url))
    assert run.code == 4, run.err


@pytest.mark.asyncio
async def test_a_run_error_outranks_fail_on(sim: Simulator) -> None:
    """A refused password exits 2 whatever --fail-on would have matched."""
    sim.set_job_status(5, "Failed")
    env = cli_env(sim.url, NC_PASSWORD="wrong")
    run = await run_ncinfo("--fail-on", "Failed", "5", "999999", env=env)
    assert run.code == 2
    assert sim.stats()["requests"]["job"] == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
async def test_a_signal_outranks_fail_on_and_a_missing_id(
    sim_factory: SimFactory, signum: signal.Signals, code: int
) -> None:
    """A signal during --wait exits 130/143 although a --fail-on match and an unknown ID exist."""
    sim = await sim_factory(jobs=20)
    sim.set_job_status(5, "Failed")
    sim.set_job_status(6, "Running")
    proc = await start_ncinfo(
        "--wait", "--poll-interval", "0.1", "--fail-on", "Failed", "--format", "ndjson",
        "5", "6", "999999", env=cli_env(sim.url),
    )  # fmt: skip

    async def signal_when_waiting() -> None:
        # Signal once the running job has been polled twice: the run is surely waiting.
        await until(lambda: sim.job_info(6)["requests"] >= 2)
        proc.send_signal(signum)

    run = await steer(proc, signal_when_waiting)
    assert run.code == code, run.err
    assert_clean_exit(run.err)
    lines = {line["id"]: line for line in run.lines()}
    assert lines[5]["fields"]["STATUSNC"] == "Failed"
