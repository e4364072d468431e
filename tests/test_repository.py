"""The repository itself: nothing in it may make a submission too large to land."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: No tracked file may be larger.  Benchmark reports once carried every client's whole
#: output (about 10 MB a run, 140 MB a report), which a submission cannot carry.
MAX_FILE_BYTES = 1 << 20


def test_no_tracked_file_is_over_a_mebibyte() -> None:
    """Every file git tracks (reports, images and docs included) stays under 1 MiB."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False, timeout=60
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    sizes = {
        name: (ROOT / name).stat().st_size
        for name in listed.stdout.decode().split("\0")
        if name and (ROOT / name).is_file()
    }
    assert len(sizes) > 100  # the listing really is the repository's
    assert {name: size for name, size in sizes.items() if size > MAX_FILE_BYTES} == {}
