"""The seed's own client flow: Altair's documented `nc_info.py` against the simulator."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .conftest import SimFactory

pytestmark = pytest.mark.asyncio

SEED = Path(__file__).parent / "seed"
# 2021-10-12 13:26:28 UTC, the day of the documented transcript.
START = 1634045188.0
EXPECTED = (
    "Job             000000005\n"
    "User,Group      user36,/time/users.user36\n"
    "Command         vw sleep 281 > vnc_logs/20211009/053432.566604\n"
    "Status          Done\n"
    " Host           lnx05c\n"
    " Duration       4m41s\n"
    "\n"
    "Job             000000008\n"
    "User,Group      user13,/time/users.user13\n"
    "Command         vw calibre -drc rules_814.svrf > vnc_logs/20211010/214939.448689\n"
    "Status          Failed\n"
    " Host           lnx04c\n"
    " Duration       1m57s\n"
    "\n"
)


async def run_nc_info(env: dict[str, str], *job_ids: str) -> tuple[int, str, str]:
    # An asyncio subprocess: the simulator runs in this event loop and must keep serving.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SEED / "nc_info.py"),
        *job_ids,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def seed_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REQUESTS_")}
    env.update(NC_URL=url, USER="demo", NC_PASSWORD="demo", PYTHONDEVMODE="0")
    return env


async def test_nc_info_over_http(sim_factory: SimFactory) -> None:
    """`nc_info.py 5 000000008` prints the documented six lines and a blank line per job."""
    server = await sim_factory(start_time=START)
    code, out, err = await run_nc_info(seed_env(server.url + "/project"), "5", "000000008")
    assert code == 0, err
    assert out == EXPECTED
    stats = server.stats()
    # One requests.Session: one connection, one token, one GET per job.
    assert stats["connections"] == 1
    assert stats["requests"]["token"] == 1
    assert stats["requests"]["job"] == 2


async def test_nc_info_over_https_with_ca(sim_factory: SimFactory, tmp_path: Path) -> None:
    """With verify=True and the simulator's CA as bundle, the output is byte-identical."""
    server = await sim_factory(start_time=START, tls=True)
    env = seed_env(server.url)
    env["REQUESTS_CA_BUNDLE"] = str(server.write_ca(tmp_path / "ca.pem"))
    code, out, err = await run_nc_info(env, "5", "000000008")
    assert code == 0, err
    assert out == EXPECTED
    assert server.stats()["tls_handshakes"] == 1


async def test_nc_info_refuses_unknown_ca(sim_factory: SimFactory) -> None:
    """Without the CA, verify=True makes the documented client fail: TLS is really checked."""
    server = await sim_factory(start_time=START, tls=True)
    code, out, err = await run_nc_info(seed_env(server.url), "5")
    assert code != 0
    assert out == ""
    assert "SSL" in err
