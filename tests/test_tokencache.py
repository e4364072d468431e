"""Tier 1: the token cache on real temporary directories (permissions, symlinks, expiry)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ncinfo_async._exceptions import ConfigError
from ncinfo_async._protocol import Token
from ncinfo_async._tokencache import CACHE_DIR_ENV, UNKNOWN_EXPIRY_MAX_AGE, TokenCache

URL = "http://mercury:6444/project"
NOW = 1_700_000_000.0
SECRET = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"
TOKEN = Token(token_type="Bearer", access_token=SECRET, expires_at=NOW + 3600)


class Warnings:
    """Collects the cache's warnings."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        self.messages.append(message)


@pytest.fixture
def warnings() -> Warnings:
    """A fresh warning collector."""
    return Warnings()


@pytest.fixture
def cache(tmp_path: Path, warnings: Warnings) -> TokenCache:
    """A cache in a not-yet-existing subdirectory of a temporary directory."""
    return TokenCache(tmp_path / "cache", warn=warnings)


def test_round_trip(cache: TokenCache, warnings: Warnings) -> None:
    """A saved token loads back equal, whatever path the URL carried."""
    assert cache.save(URL, "demo", TOKEN, now=NOW)
    assert cache.load("http://mercury:6444", "demo", now=NOW) == TOKEN
    assert warnings.messages == []


def test_missing_is_none(cache: TokenCache) -> None:
    """No file (and no directory yet) means no token, silently."""
    assert cache.load(URL, "demo", now=NOW) is None


def test_file_and_directory_modes(cache: TokenCache) -> None:
    """The directory is created 0700 and the file is 0600, with no temporary file left."""
    cache.save(URL, "demo", TOKEN, now=NOW)
    path = cache.path_for(URL, "demo")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    assert sorted(p.name for p in cache.directory.iterdir()) == [path.name]


def test_file_name_and_content(cache: TokenCache) -> None:
    """The name is a hash (no token, no user); the content has the documented members."""
    cache.save(URL, "demo", TOKEN, now=NOW)
    path = cache.path_for(URL, "demo")
    assert SECRET not in path.name
    assert "demo" not in path.name
    data = json.loads(path.read_text())
    assert data["token_type"] == "Bearer"
    assert data["access_token"] == SECRET
    assert data["expires_at"] == NOW + 3600
    assert data["url"] == "http://mercury:6444"
    assert data["user"] == "demo"


@pytest.mark.parametrize(
    ("now", "margin", "fresh"),
    [
        (NOW, 60.0, True),
        (NOW + 3600 - 61, 60.0, True),
        (NOW + 3600 - 60, 60.0, False),
        (NOW + 3600 - 30, 0.0, True),
        (NOW + 3600, 0.0, False),
        (NOW + 7200, 60.0, False),
    ],
)
def test_expiry_and_margin(cache: TokenCache, now: float, margin: float, fresh: bool) -> None:
    """A token is returned only while more than ``margin`` seconds of it remain."""
    cache.save(URL, "demo", TOKEN, now=NOW)
    assert (cache.load(URL, "demo", now=now, margin=margin) is not None) is fresh


def test_unknown_expiry_is_trusted_for_a_bounded_age(cache: TokenCache) -> None:
    """A token without an expiry is reused only for UNKNOWN_EXPIRY_MAX_AGE after caching."""
    token = Token(token_type="Bearer", access_token="opaque", expires_at=None)
    cache.save(URL, "demo", token, now=NOW)
    assert cache.load(URL, "demo", now=NOW + UNKNOWN_EXPIRY_MAX_AGE - 1) == token
    assert cache.load(URL, "demo", now=NOW + UNKNOWN_EXPIRY_MAX_AGE + 1) is None


def test_resaving_the_same_token_keeps_its_age(cache: TokenCache) -> None:
    """Saving the token already cached does not restart its unknown-expiry clock."""
    token = Token(token_type="Bearer", access_token="opaque", expires_at=None)
    cache.save(URL, "demo", token, now=NOW)
    cache.save(URL, "demo", token, now=NOW + UNKNOWN_EXPIRY_MAX_AGE - 10)
    assert cache.load(URL, "demo", now=NOW + UNKNOWN_EXPIRY_MAX_AGE + 1) is None


def test_group_readable_file_is_refused(cache: TokenCache, warnings: Warnings) -> None:
    """A file others may read (chmod 644) is ignored, with a warning that hides the token."""
    cache.save(URL, "demo", TOKEN, now=NOW)
    path = cache.path_for(URL, "demo")
    path.chmod(0o644)
    assert cache.load(URL, "demo", now=NOW) is None
    assert len(warnings.messages) == 1
    assert "0644" in warnings.messages[0]
    assert SECRET not in warnings.messages[0]


def test_refused_file_is_replaced_privately_on_save(cache: TokenCache) -> None:
    """Saving over a refused file leaves a 0600 file that loads again."""
    cache.save(URL, "demo", TOKEN, now=NOW)
    path = cache.path_for(URL, "demo")
    path.chmod(0o666)
    assert cache.save(URL, "demo", TOKEN, now=NOW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cache.load(URL, "demo", now=NOW) == TOKEN


def test_symlink_is_refused(cache: TokenCache, warnings: Warnings, tmp_path: Path) -> None:
    """A symlink in place of the file is not followed, even to a private valid file."""
    elsewhere = TokenCache(tmp_path / "elsewhere")
    elsewhere.save(URL, "demo", TOKEN, now=NOW)
    cache.directory.mkdir(mode=0o700)
    cache.path_for(URL, "demo").symlink_to(elsewhere.path_for(URL, "demo"))
    assert cache.load(URL, "demo", now=NOW) is None
    assert any("symbolic link" in message for message in warnings.messages)


def test_world_writable_directory_is_refused(cache: TokenCache, warnings: Warnings) -> None:
    """A cache directory others may write to is neither read nor written."""
    cache.save(URL, "demo", TOKEN, now=NOW)
    cache.directory.chmod(0o777)
    try:
        assert cache.load(URL, "demo", now=NOW) is None
        assert not cache.save(URL, "demo", TOKEN, now=NOW)
    finally:
        cache.directory.chmod(0o700)
    assert warnings.messages
    assert all("0777" in message for message in warnings.messages)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to chown a file to another user")
def test_file_of_another_user_is_refused(cache: TokenCache, warnings: Warnings) -> None:
    """A file owned by someone else is ignored even with mode 0600."""
    cache.save(URL, "demo", TOKEN, now=NOW)
    os.chown(cache.path_for(URL, "demo"), 12345, -1)
    assert cache.load(URL, "demo", now=NOW) is None
    assert any("another user" in message for message in warnings.messages)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 1, "token_type": "Bearer"}',
        '{"version": 99, "token_type": "Bearer", "access_token": "x", "expires_at": null}',
        "\x00\xff",
    ],
)
def test_corrupt_file_is_missing_and_overwritten(
    cache: TokenCache, warnings: Warnings, content: str
) -> None:
    """Unparsable or incomplete content reads as no token, and the next save repairs it."""
    cache.directory.mkdir(mode=0o700)
    path = cache.path_for(URL, "demo")
    path.write_text(content, encoding="latin-1")
    path.chmod(0o600)
    assert cache.load(URL, "demo", now=NOW) is None
    assert cache.save(URL, "demo", TOKEN, now=NOW)
    assert cache.load(URL, "demo", now=NOW) == TOKEN
    assert warnings.messages == []


def test_remove(cache: TokenCache) -> None:
    """remove() deletes the file once and reports whether there was one."""
    cache.save(URL, "demo", TOKEN, now=NOW)
    assert cache.remove(URL, "demo")
    assert cache.load(URL, "demo", now=NOW) is None
    assert not cache.remove(URL, "demo")


def test_users_and_servers_do_not_collide(cache: TokenCache) -> None:
    """Each (server, user) pair has its own file and token."""
    pairs = [
        ("http://mercury:6444", "demo"),
        ("http://mercury:6444", "other"),
        ("https://mercury:6444", "demo"),
        ("http://venus:6444", "demo"),
    ]
    tokens = {
        pair: Token(token_type="Bearer", access_token=f"t{index}", expires_at=NOW + 3600)
        for index, pair in enumerate(pairs)
    }
    for (url, user), token in tokens.items():
        cache.save(url, user, token, now=NOW)
    assert len({cache.path_for(url, user) for url, user in pairs}) == len(pairs)
    for (url, user), token in tokens.items():
        assert cache.load(url, user, now=NOW) == token
    cache.remove("http://mercury:6444", "demo")
    assert cache.load("http://mercury:6444", "other", now=NOW) == tokens[pairs[1]]


def test_invalid_url_is_a_config_error(cache: TokenCache) -> None:
    """The URL is normalised like the client's, so a bad one fails the same way."""
    with pytest.raises(ConfigError):
        cache.load("ftp://mercury", "demo", now=NOW)


def test_from_env_honours_the_override(tmp_path: Path) -> None:
    """NCINFO_CACHE_DIR picks the directory; an empty value means the platform default."""
    assert TokenCache.from_env({CACHE_DIR_ENV: str(tmp_path)}).directory == tmp_path
    default = TokenCache.from_env({CACHE_DIR_ENV: ""}).directory
    assert default.name == "ncinfo"
