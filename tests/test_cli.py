"""Tier 3: the ``ncinfo`` command end to end, as a subprocess against the simulator."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ncinfo_async.sim import Simulator

from .cliutil import assert_clean_exit, cli_env, run_ncinfo

SEED = Path(__file__).parent / "seed" / "nc_info.py"


@pytest.mark.asyncio
async def test_output_is_byte_identical_to_the_seed(sim: Simulator) -> None:
    """`ncinfo 1 2` prints exactly what the documented nc_info.py prints for the same jobs."""
    env = cli_env(sim.url)
    seed = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SEED),
        "1",
        "000000002",
        "17",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    seed_out, seed_err = await seed.communicate()
    assert seed.returncode == 0, seed_err.decode()
    ours = await run_ncinfo("1", "000000002", "17", env=env)
    assert ours.code == 0
    assert ours.out.encode() == seed_out
    assert ours.out.count("User,Group      ") == 3
    assert ours.out.startswith("Job             000000001\nUser,Group      ")


@pytest.mark.asyncio
async def test_stdin_nc_list_and_nc_run_lines(sim: Simulator) -> None:
    """Piped nc list / nc run output: IDs kept, headers skipped, bad lines counted, dupes once."""
    stdin = (
        b"ID        STATUS   COMMAND\n"
        b"--------- -------- -------\n"
        b"000000003 Running  vw sleep 1\n"
        b"Job <000000004> is submitted\n"
        b"\n"
        b"3 again\n"
        b"oops\n"
        b"\xff\xfe\n"
        b"5\n"
    )
    run = await run_ncinfo("--format", "ndjson", env=cli_env(sim.url), stdin=stdin)
    assert run.code == 0
    assert [json.loads(line)["id"] for line in run.out.splitlines()] == [3, 4, 5]
    assert "skipped 2 malformed input line(s)" in run.err
    assert "line 7" in run.err
    assert "line 8: line is not valid UTF-8" in run.err


@pytest.mark.asyncio
async def test_strict_refuses_bad_input_before_any_request(sim: Simulator) -> None:
    """--strict makes a malformed line fatal (exit 2) and sends nothing, not even a token."""
    run = await run_ncinfo("--strict", env=cli_env(sim.url), stdin=b"1\n2x\n3\n")
    assert run.code == 2
    assert "line 2" in run.err
    assert sim.stats()["requests_total"] == 0


@pytest.mark.asyncio
async def test_unknown_ids_exit_1_and_known_jobs_print(sim: Simulator) -> None:
    """Unknown IDs among known ones: every known job printed, each unknown on stderr, exit 1."""
    run = await run_ncinfo("--format", "csv", "1", "9999", "2", "8888", env=cli_env(sim.url))
    assert run.code == 1
    rows = list(csv.DictReader(io.StringIO(run.out)))
    assert [row["ID"] for row in rows] == ["000000001", "000000002"]
    assert "job 9999: not found" in run.err
    assert "job 8888: not found" in run.err


@pytest.mark.asyncio
async def test_wrong_password_exits_2_after_one_token_request(sim: Simulator) -> None:
    """A wrong password: exit 2, a clear message, one token request, no job request."""
    run = await run_ncinfo("1", "2", "3", env=cli_env(sim.url, NC_PASSWORD="nope"))
    assert run.code == 2
    assert "refused the token request" in run.err
    assert "nope" not in run.err
    assert sim.stats()["requests"]["token"] == 1
    assert sim.stats()["requests"]["job"] == 0


@pytest.mark.asyncio
async def test_missing_url_exits_2() -> None:
    """Without NC_URL or --url the command says what to set and exits 2."""
    run = await run_ncinfo("1", env=cli_env(None))
    assert run.code == 2
    assert "NC_URL" in run.err


@pytest.mark.asyncio
async def test_empty_input_exits_2(sim: Simulator) -> None:
    """No job IDs at all is a usage error, and nothing is sent."""
    run = await run_ncinfo(env=cli_env(sim.url), stdin=b"\n# nothing\n")
    assert run.code == 2
    assert "no job IDs" in run.err
    assert sim.stats()["requests_total"] == 0


@pytest.mark.asyncio
async def test_unreachable_server_exits_2(unused_tcp_port: int) -> None:
    """A server that refuses connections is one clear error and exit 2."""
    run = await run_ncinfo(
        "1", "--attempts", "1", env=cli_env(f"http://127.0.0.1:{unused_tcp_port}")
    )
    assert run.code == 2
    assert "cannot connect" in run.err


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "table", "text"])
@pytest.mark.asyncio
async def test_every_format_reads_back(sim: Simulator, fmt: str) -> None:
    """Each format carries the same 20 jobs, checked with the standard library's readers."""
    ids = "\n".join(str(i) for i in range(1, 21)).encode()
    run = await run_ncinfo("--format", fmt, "--summary", env=cli_env(sim.url), stdin=ids)
    assert run.code == 0, run.err
    expected = [f"{i:09d}" for i in range(1, 21)]
    if fmt == "json":
        doc = json.loads(run.out)
        assert [item["fields"]["ID"] for item in doc["results"]] == expected
        assert doc["summary"]["found"] == 20
    elif fmt == "ndjson":
        assert [json.loads(line)["fields"]["ID"] for line in run.out.splitlines()] == expected
        assert "Summary: 20 jobs, 20 found" in run.err
    elif fmt == "csv":
        assert [row["ID"] for row in csv.DictReader(io.StringIO(run.out))] == expected
    elif fmt == "table":
        lines = run.out.splitlines()
        assert lines[0].split()[0] == "ID"
        assert [line.split()[0] for line in lines[1:21]] == expected
    else:
        assert [
            line.split()[1] for line in run.out.splitlines() if line.startswith("Job ")
        ] == expected


@pytest.mark.asyncio
async def test_fields_are_case_insensitive(sim: Simulator) -> None:
    """--fields takes any case and returns upper-case field names."""
    run = await run_ncinfo(
        "--format", "ndjson", "--fields", "id,statusNC,priority", "7", env=cli_env(sim.url)
    )
    fields = json.loads(run.out)["fields"]
    assert list(fields) == ["ID", "STATUSNC", "PRIORITY"]


@pytest.mark.asyncio
async def test_https_cacert_and_insecure(sim_factory: Any, tmp_path: Path) -> None:
    """HTTPS: verified with --cacert; refused without it; --insecure works and warns once."""
    sim = await sim_factory(jobs=5, tls=True)
    ca = sim.write_ca(tmp_path / "ca.pem")
    env = cli_env(sim.url)
    verified = await run_ncinfo("--cacert", str(ca), "1", env=env)
    assert verified.code == 0
    assert "Job             000000001" in verified.out
    refused = await run_ncinfo("1", env=env)
    assert refused.code == 2
    assert "not trusted" in refused.err
    insecure = await run_ncinfo("--insecure", "1", env=env)
    assert insecure.code == 0
    assert insecure.err.count("WARNING: TLS certificate verification is OFF") == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_https_run_closes_its_connections(
    sim_factory: Any, tmp_path: Path, loop: str
) -> None:
    """Over HTTPS with several pooled connections, a dev-mode run warns of nothing unclosed."""
    sim = await sim_factory(jobs=60, tls=True)
    ca = sim.write_ca(tmp_path / "ca.pem")
    args = ["--no-batch", "--cacert", str(ca), "--concurrency", "8", "--format", "ndjson"]
    if loop == "asyncio":
        args.append("--asyncio")
    ids = "".join(f"{job_id}\n" for job_id in range(1, 61)).encode()
    run = await run_ncinfo(*args, env=cli_env(sim.url), stdin=ids)
    assert run.code == 0, run.err
    assert len(run.lines()) == 60
    assert sim.stats()["tls_handshakes"] > 1  # more than one connection was pooled
    assert_clean_exit(run.err)


@pytest.mark.asyncio
async def test_https_default_trust_store(sim_factory: Any, tmp_path: Path) -> None:
    """Without --cacert the default store verifies: a CA placed there by SSL_CERT_FILE works."""
    sim = await sim_factory(jobs=5, tls=True)
    ca = sim.write_ca(tmp_path / "ca.pem")
    run = await run_ncinfo("2", env=cli_env(sim.url, SSL_CERT_FILE=str(ca)))
    assert run.code == 0, run.err
    assert "Job             000000002" in run.out
    assert_clean_exit(run.err)


@pytest.mark.asyncio
async def test_a_small_run_imports_only_what_it_uses(sim: Simulator) -> None:
    """One job: no pyroaring (small ID set), no tqdm (no terminal), no platformdirs (no cache)."""
    code = (
        "import sys\n"
        "from ncinfo_async._cli import main\n"
        "status = main(['--no-token-cache', '--format', 'ndjson', '1', '2', '1'])\n"
        "optional = ('pyroaring', 'tqdm', 'platformdirs')\n"
        "print(status, sorted(name for name in optional if name in sys.modules))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(sim.url),
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert out.decode().splitlines()[-1] == "0 []", err.decode()


@pytest.mark.asyncio
async def test_password_file_and_its_permissions(sim: Simulator, tmp_path: Path) -> None:
    """--password-file works; a file others may read gets a warning, never its content."""
    secret = tmp_path / "pw"
    secret.write_text("demo\n")
    secret.chmod(0o644)
    env = cli_env(sim.url)
    del env["NC_PASSWORD"]
    run = await run_ncinfo("--password-file", str(secret), "1", env=env)
    assert run.code == 0
    assert "readable by group or others" in run.err
    secret.chmod(0o600)
    quiet = await run_ncinfo("--password-file", str(secret), "1", env=env)
    assert "readable" not in quiet.err


@pytest.mark.asyncio
async def test_no_password_and_no_terminal_is_a_clear_error(sim: Simulator) -> None:
    """With no password source and no terminal to prompt on, exit 2 and say what to do."""
    env = cli_env(sim.url)
    del env["NC_PASSWORD"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ncinfo_async",
        "1",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # no controlling terminal
    )
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "--password-file or NC_PASSWORD" in err.decode()


@pytest.mark.asyncio
async def test_sigterm_flushes_and_exits_143(sim_factory: Any) -> None:
    """SIGTERM mid-run: results so far are printed, in-flight jobs reported, exit 143."""
    sim = await sim_factory(jobs=400, latency_ms=50)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ncinfo_async",
        "--no-batch",
        "--format",
        "ndjson",
        "--concurrency",
        "4",
        *map(str, range(1, 401)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(sim.url),
    )
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        first = await proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        rest, err = await proc.communicate()
    lines = [json.loads(line) for line in (first + rest).decode().splitlines()]
    ids = [line["id"] for line in lines]
    assert proc.returncode == 143
    assert len(ids) == len(set(ids))
    assert len(ids) < 400
    assert any(line["ok"] is False and line["error"]["kind"] == "interrupted" for line in lines)
    assert "SIGTERM" in err.decode()


def test_help_and_version_do_not_import_aiohttp() -> None:
    """--help and --version stay light: aiohttp is never imported for them."""
    code = (
        "import sys, contextlib\n"
        "from ncinfo_async._cli import main\n"
        "for flag in ('--help', '--version'):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(None):\n"
        "        main([flag])\n"
        "print('aiohttp' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_demo_runs_end_to_end() -> None:
    """`ncinfo demo` inspects every simulated job over HTTPS with one mid-run re-auth."""
    out = subprocess.run(
        [sys.executable, "-m", "ncinfo_async", "demo", "--jobs", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "300 jobs inspected, 0 failed" in out.stdout
    assert "token requests:        2" in out.stdout


@pytest.mark.asyncio
async def test_verbose_logs_redact_credentials(sim: Simulator) -> None:
    """-vv logs every request but never the token or the password."""
    run = await run_ncinfo("-vv", "1", "2", env=cli_env(sim.url, NC_PASSWORD="s3cret-pw"))
    assert run.code == 2  # a refused password must not be echoed in the error either
    good = await run_ncinfo("-vv", "1", env=cli_env(sim.url))
    assert good.code == 0
    assert "GET " + sim.url + "/api/v3/jobs/1 -> 200" in good.err
    assert "Authorization: Bearer:<redacted" in good.err
    assert "eyJ" not in good.err  # no JWT, header or payload
    assert "s3cret-pw" not in run.err + run.out


@pytest.mark.asyncio
async def test_progress_bar_only_when_asked_or_on_a_terminal(sim_factory: Any) -> None:
    """A long run shows a progress bar with --progress; piped stderr gets none by default."""
    sim = await sim_factory(jobs=300, latency_ms=20)
    ids = "\n".join(map(str, range(1, 301))).encode()
    # One request per job, so the run lasts the second the bar waits for.
    forced = await run_ncinfo(
        "--progress", "--no-batch", "--format", "ndjson", "--concurrency", "4",
        env=cli_env(sim.url), stdin=ids,
    )  # fmt: skip
    assert forced.code == 0
    assert "\r" in forced.err
    assert "job/s" in forced.err
    piped = await run_ncinfo(
        "--no-batch", "--format", "ndjson", "--concurrency", "4", env=cli_env(sim.url), stdin=ids
    )
    assert piped.code == 0
    assert piped.err == ""


@pytest.mark.asyncio
async def test_plain_asyncio_loop_switch(sim: Simulator) -> None:
    """--asyncio runs on the standard event loop and gives the same output as uvloop."""
    plain = await run_ncinfo("--asyncio", "3", "4", env=cli_env(sim.url))
    default = await run_ncinfo("3", "4", env=cli_env(sim.url))
    assert plain.code == default.code == 0
    assert plain.out.count("Job ") == 2
    assert plain.out.splitlines()[0] == default.out.splitlines()[0]
