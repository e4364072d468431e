"""Find the server URL the way Altair's docs do: ``nc cmd vovbrowser`` (REST ref §6).

The documented setup is ``export NC_URL=`nc cmd vovbrowser``` (seed document, "Advanced REST
Usage"); this runs the same command when ``NC_URL`` is unset, so a user with a working ``nc``
needs no configuration at all.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from typing import Final
from urllib.parse import urlsplit

from ._exceptions import ConfigError

__all__ = ["DISCOVER_COMMAND", "DISCOVER_TIMEOUT", "discover_url"]

#: The command's arguments after the ``nc`` executable.
DISCOVER_COMMAND: Final = ("cmd", "vovbrowser")
#: Seconds ``nc cmd vovbrowser`` may take; it asks the vovserver, which may be busy.
DISCOVER_TIMEOUT: Final = 10.0
#: Characters of the command's stderr (or stray stdout) quoted in an error message.
_EXCERPT: Final = 200


def discover_url(*, timeout: float = DISCOVER_TIMEOUT, path: str | None = None) -> str | None:
    """The server URL printed by ``nc cmd vovbrowser``, e.g. ``http://mercury:6444/project``.

    The first non-blank line of the command's standard output is returned stripped, path
    included (``Settings`` normalises it).  The command runs without a shell, with standard
    input closed, in its own process group so that a timeout also kills anything it started.
    This blocks; call it before the event loop starts, or in a worker thread.

    Args:
        timeout: seconds to wait for the command.
        path: the search path for ``nc`` instead of ``$PATH`` (the command itself still runs
            with the caller's environment, which the real ``nc`` wrapper needs).

    Returns:
        The URL, or None when there is no ``nc`` executable on the search path.

    Raises:
        ConfigError: the command cannot start, times out, exits non-zero, or prints no
            http(s) URL; the message says what happened and suggests setting ``NC_URL``.
    """
    executable = shutil.which("nc", path=path)
    if executable is None:
        return None
    shown = "'nc " + " ".join(DISCOVER_COMMAND) + "'"
    advice = "; set NC_URL or pass --url"
    try:
        process = subprocess.Popen(
            [executable, *DISCOVER_COMMAND],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot run {shown} ({executable}): {exc.strerror or exc}{advice}"
        ) from None
    with process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            raise ConfigError(f"{shown} gave no answer within {timeout:g} s{advice}") from None
    if process.returncode != 0:
        detail = _excerpt(stderr) or _excerpt(stdout)
        how = (
            f"was killed by signal {-process.returncode}"
            if process.returncode < 0
            else f"exited with status {process.returncode}"
        )
        raise ConfigError(f"{shown} {how}" + (f": {detail}" if detail else "") + advice)
    lines = [line.strip() for line in stdout.decode("utf-8", "replace").splitlines()]
    url = next((line for line in lines if line), "")
    if not url:
        raise ConfigError(f"{shown} printed nothing{advice}")
    if not _looks_like_url(url):
        raise ConfigError(f"{shown} printed {_excerpt(url.encode())!r}, not a URL{advice}")
    return url


def _looks_like_url(text: str) -> bool:
    """Whether ``text`` is a single http(s) URL with a host (full checks come later)."""
    if any(char.isspace() for char in text):
        return False
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _excerpt(data: bytes) -> str:
    """A short, single-line, printable excerpt of a command's output for an error message."""
    text = data.decode("utf-8", "replace")
    # Control characters (escape sequences included) could rewrite the user's terminal.
    cleaned = "".join(char if char.isprintable() else " " for char in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= _EXCERPT else cleaned[: _EXCERPT - 3] + "..."


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the command and whatever it started (a wrapper script's children hold the pipes)."""
    killpg = getattr(os, "killpg", None)
    try:
        if killpg is not None:
            killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no process groups of this kind
            process.kill()
    except ProcessLookupError:
        pass
