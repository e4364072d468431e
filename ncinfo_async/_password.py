"""Where the password comes from: a file, ``NC_PASSWORD``, or the controlling terminal.

Never from the command line, where every user of the machine can read it in ``ps``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from ._exceptions import ConfigError

__all__ = ["password_prompt", "prompt_from_tty", "read_password_file"]


def read_password_file(path: str, warn: Callable[[str], None]) -> str:
    """Read a password from the first line of a file; warn when others may read the file.

    Raises:
        ConfigError: the file cannot be read or is empty.
    """
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="utf-8") as handle:
            password = handle.readline().rstrip("\r\n")
    except OSError as exc:
        # In words ("No such file or directory"), as other command-line tools say it.
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot read password file {path}: {reason}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read password file {path}: not UTF-8 text") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(f"the password file {path} is readable by group or others; chmod 600 it")
    if not password:
        raise ConfigError(f"the password file {path} is empty")
    return password


def password_prompt(user: str, url: str) -> str:
    """The prompt, naming whose password for which server: ``Password for demo at URL: ``."""
    return f"Password for {user} at {url}: "


def prompt_from_tty(prompt: str = "Password: ") -> str:
    """Ask on the controlling terminal, which works while stdin is a pipe of job IDs.

    Raises:
        ConfigError: there is no terminal to ask on (CI, cron).
    """
    import getpass

    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        raise ConfigError(
            "no password: no terminal to prompt on; use --password-file or NC_PASSWORD"
        ) from None
    os.close(fd)
    # getpass reads from /dev/tty itself when it can open it, as it just proved it can.
    return getpass.getpass(prompt)
