"""Tier 1: ``nc cmd vovbrowser`` discovery with fake ``nc`` scripts on a private PATH."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ncinfo_async._discover import discover_url
from ncinfo_async._exceptions import ConfigError

# The code under test starts fake `nc` scripts: real processes.
pytestmark = pytest.mark.cli


def fake_nc(directory: Path, body: str) -> str:
    """Write an executable ``nc`` shell script into ``directory``; return it as a PATH."""
    script = directory / "nc"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(directory)


def test_prints_a_url(tmp_path: Path) -> None:
    """The first line of stdout is the URL, stripped, with its /project path kept."""
    path = fake_nc(
        tmp_path,
        '[ "$1 $2" = "cmd vovbrowser" ] || exit 7\n'
        'printf "  http://mercury:6444/project  \\nsecond line\\n"',
    )
    assert discover_url(path=path) == "http://mercury:6444/project"


def test_leading_blank_lines_are_skipped(tmp_path: Path) -> None:
    """Blank lines before the URL do not count as output."""
    path = fake_nc(tmp_path, 'printf "\\n\\nhttps://nchost:6271\\n"')
    assert discover_url(path=path) == "https://nchost:6271"


def test_no_nc_on_path_is_none(tmp_path: Path) -> None:
    """Without an ``nc`` executable there is nothing to discover."""
    assert discover_url(path=str(tmp_path)) is None


def test_not_executable_nc_is_ignored(tmp_path: Path) -> None:
    """A non-executable file named nc is not a command (as for the shell)."""
    (tmp_path / "nc").write_text("#!/bin/sh\necho http://x:1\n")
    (tmp_path / "nc").chmod(0o644)
    assert discover_url(path=str(tmp_path)) is None


def test_timeout_kills_the_command(tmp_path: Path) -> None:
    """A command that hangs is killed, children included, and reported as a timeout."""
    path = fake_nc(tmp_path, "sleep 30 & sleep 30\necho http://late:1")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"no answer within 0\.3 s.*NC_URL"):
        discover_url(timeout=0.3, path=path)
    # The grandchild `sleep` held the pipes open: only a group kill makes this quick.
    assert time.monotonic() - started < 5


def test_failure_quotes_sanitised_stderr(tmp_path: Path) -> None:
    """A non-zero exit reports the status and a short, single-line, printable stderr."""
    noise = "x" * 500
    path = fake_nc(
        tmp_path,
        f'printf "vovserver not running\\n\\033[31mproject gone\\n{noise}" >&2\nexit 1',
    )
    with pytest.raises(ConfigError) as caught:
        discover_url(path=path)
    message = str(caught.value)
    assert "exited with status 1: vovserver not running [31mproject gone x" in message
    assert "\033" not in message
    assert "\n" not in message
    assert len(message) < 320


@pytest.mark.parametrize(
    "output",
    ["", "\\n  \\n", "vovbrowser: no project\\n", "mercury:6444\\n", "http://\\n", "ftp://x:1\\n"],
)
def test_garbage_is_not_a_url(tmp_path: Path, output: str) -> None:
    """Output that is empty or not an http(s) URL with a host is a clear ConfigError."""
    path = fake_nc(tmp_path, f'printf "{output}"')
    with pytest.raises(ConfigError, match=r"'nc cmd vovbrowser' printed .*NC_URL"):
        discover_url(path=path)
