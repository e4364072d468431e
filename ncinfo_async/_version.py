"""The package version; pyproject.toml reads it from here (as httpx does with __version__.py).

A literal rather than ``importlib.metadata``, whose import alone costs about 0.1 s and would
make ``ncinfo --version`` and ``--help`` visibly slower.
"""

from __future__ import annotations

__version__ = "0.1.0"
