"""Token reuse across runs: one private file per (server, user) in the user's cache directory.

A JWT lives about 4 h (seed document, "JWT Access Tokens"), so a user running ``ncinfo``
every few minutes needs the password once, not once per run.  The cache holds a bearer
credential, hence the paranoia: files are 0600 in a 0700 directory, written atomically, and a
file that another user owns, that group or others may read or write, or that is a symlink is
ignored with a warning rather than trusted.  No message ever contains the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from ._protocol import Token, normalize_base_url

__all__ = ["CACHE_DIR_ENV", "UNKNOWN_EXPIRY_MAX_AGE", "TokenCache"]

#: Environment variable that overrides the cache directory.
CACHE_DIR_ENV: Final = "NCINFO_CACHE_DIR"
#: How long a token whose expiry is unknown (no ``exp`` claim, no ``expires_in``) is trusted
#: after it was first cached.  A quarter of the ~4 h lifetime the seed document gives, so a
#: token of unknown age is not reused near its end; a 401 would renew it anyway.
UNKNOWN_EXPIRY_MAX_AGE: Final = 3600.0
#: Bumped if the file layout changes; files of another version are treated as missing.
_FORMAT_VERSION: Final = 1
#: A token file is a few hundred bytes; refuse to parse anything much larger.
_MAX_FILE_SIZE: Final = 64 * 1024

_log = logging.getLogger("ncinfo_async")


def _log_warning(message: str) -> None:
    _log.warning("%s", message)


class TokenCache:
    """A directory of cached tokens, one JSON file per (normalised server URL, user).

    The file name is a SHA-256 of the pair, so neither the token nor the user name appears
    in a directory listing.  Files hold ``token_type``, ``access_token``, ``expires_at``,
    ``url``, ``user`` and ``saved_at`` (when the token was first cached).

    Args:
        directory: where the files live; default ``platformdirs.user_cache_dir("ncinfo")``
            (``from_env`` also honours ``$NCINFO_CACHE_DIR``).  Created 0700 on first save.
        warn: called with a message (never containing the token) when a cache file is
            refused or cannot be written; defaults to a ``logging`` warning.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if directory is None:
            import platformdirs

            directory = Path(platformdirs.user_cache_dir("ncinfo"))
        self.directory = directory
        self._warn = warn if warn is not None else _log_warning

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, warn: Callable[[str], None] | None = None
    ) -> TokenCache:
        """A cache in ``$NCINFO_CACHE_DIR`` if set and non-empty, else the platform default."""
        override = environ.get(CACHE_DIR_ENV)
        return cls(Path(override).expanduser() if override else None, warn=warn)

    def path_for(self, url: str, user: str) -> Path:
        """The file that holds the token of ``user`` on the server at ``url``.

        Raises:
            ConfigError: ``url`` is not a valid server URL.
        """
        key = f"{normalize_base_url(url)}\0{user}".encode()
        return self.directory / f"{hashlib.sha256(key).hexdigest()}.json"

    # --- Reading ------------------------------------------------------------------------------

    def load(
        self,
        url: str,
        user: str,
        *,
        now: float | None = None,
        margin: float = 60.0,
    ) -> Token | None:
        """The cached token of ``user`` on ``url``, if it is trustworthy and still fresh.

        Returns None when there is no file, the file is refused (see the class docstring),
        unreadable, corrupt or for another server or user; when the token expires within
        ``margin`` seconds of ``now``; or when its expiry is unknown and it was cached more
        than ``UNKNOWN_EXPIRY_MAX_AGE`` seconds ago.

        Raises:
            ConfigError: ``url`` is not a valid server URL.
        """
        path = self.path_for(url, user)
        data = self._read(path)
        if data is None:
            return None
        current = time.time() if now is None else now
        token_type, access_token = data.get("token_type"), data.get("access_token")
        if not isinstance(token_type, str) or not isinstance(access_token, str) or not access_token:
            return None
        if data.get("url") != normalize_base_url(url) or data.get("user") != user:
            return None
        expires_at = _number(data.get("expires_at"))
        if expires_at is not None:
            if current + margin >= expires_at:
                return None
        else:
            saved_at = _number(data.get("saved_at"))
            if saved_at is None or not 0 <= current - saved_at <= UNKNOWN_EXPIRY_MAX_AGE:
                return None
        return Token(token_type=token_type, access_token=access_token, expires_at=expires_at)

    def _read(self, path: Path) -> dict[str, object] | None:
        """The JSON object in ``path``, or None if missing, refused or corrupt."""
        if not self._directory_is_private():
            return None
        try:
            # O_NOFOLLOW: a symlink planted by someone else must not redirect the read;
            # checking with lstat first only makes the warning clearer.
            if path.is_symlink():
                self._warn(f"ignoring the token cache file {path}: it is a symbolic link")
                return None
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn(f"ignoring the token cache file {path}: {exc.strerror or exc}")
            return None
        try:
            with os.fdopen(fd, "rb") as handle:
                # fstat on the open descriptor, so the checked file is the one that is read.
                problem = _ownership_problem(os.fstat(handle.fileno()), private=True)
                if problem is not None:
                    self._warn(f"ignoring the token cache file {path}: {problem}")
                    return None
                raw = handle.read(_MAX_FILE_SIZE + 1)
        except OSError as exc:
            self._warn(f"ignoring the token cache file {path}: {exc.strerror or exc}")
            return None
        if len(raw) > _MAX_FILE_SIZE:
            return None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None  # corrupt: treated as missing, overwritten by the next save
        if not isinstance(data, dict) or data.get("version") != _FORMAT_VERSION:
            return None
        return data

    def _directory_is_private(self) -> bool:
        """Whether the directory is ours and closed to others (or does not exist yet)."""
        try:
            info = os.lstat(self.directory)
        except FileNotFoundError:
            return True
        except OSError as exc:
            self._warn(f"ignoring the token cache {self.directory}: {exc.strerror or exc}")
            return False
        if stat.S_ISLNK(info.st_mode):
            # A symlinked cache directory (e.g. ~/.cache on another disk) is common; judge
            # its target instead.
            try:
                info = os.stat(self.directory)
            except OSError as exc:
                self._warn(f"ignoring the token cache {self.directory}: {exc.strerror or exc}")
                return False
        problem = _ownership_problem(info, private=False)
        if problem is not None:
            self._warn(f"ignoring the token cache {self.directory}: {problem}")
            return False
        return True

    # --- Writing ------------------------------------------------------------------------------

    def save(self, url: str, user: str, token: Token, *, now: float | None = None) -> bool:
        """Store ``token`` for ``user`` on ``url``: mode 0600, replaced atomically.

        Saving the token already cached keeps its original ``saved_at``, so re-saving a
        token of unknown expiry after each run does not extend its trusted age.

        Returns:
            True if the file was written; False (after a warning) if it could not be.

        Raises:
            ConfigError: ``url`` is not a valid server URL.
        """
        path = self.path_for(url, user)
        current = time.time() if now is None else now
        saved_at = current
        previous = self._read(path) if path.exists() else None
        if previous is not None and previous.get("access_token") == token.access_token:
            saved_at = _number(previous.get("saved_at")) or current
        content = {
            "version": _FORMAT_VERSION,
            "url": normalize_base_url(url),
            "user": user,
            "token_type": token.token_type,
            "access_token": token.access_token,
            "expires_at": token.expires_at,
            "saved_at": saved_at,
        }
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self._directory_is_private():
                return False
            # mkstemp creates the file 0600 with O_EXCL in the same directory, so
            # os.replace is an atomic rename and readers never see a partial file.
            fd, temp = tempfile.mkstemp(prefix=".token-", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(content, handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as exc:
            self._warn(f"cannot write the token cache file {path}: {exc.strerror or exc}")
            return False
        return True

    def remove(self, url: str, user: str) -> bool:
        """Forget the token of ``user`` on ``url`` (a logout); True if a file was removed.

        Raises:
            ConfigError: ``url`` is not a valid server URL.
        """
        path = self.path_for(url, user)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            self._warn(f"cannot remove the token cache file {path}: {exc.strerror or exc}")
            return False
        return True


def _number(value: object) -> float | None:
    """A finite JSON number as a float; None for anything else (booleans included)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _ownership_problem(info: os.stat_result, *, private: bool) -> str | None:
    """Why a cache file (``private``) or directory must not be trusted, or None.

    Files must be regular, ours and closed to group and others; directories must be ours
    and not writable by group or others (who could otherwise swap files in).
    """
    getuid = getattr(os, "getuid", None)
    if getuid is not None and info.st_uid != getuid():
        return "it is owned by another user"
    if private:
        if not stat.S_ISREG(info.st_mode):
            return "it is not a regular file"
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            return f"group or others may access it (mode {stat.S_IMODE(info.st_mode):04o})"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group or others may write to it (mode {stat.S_IMODE(info.st_mode):04o})"
    return None
