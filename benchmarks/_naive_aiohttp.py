#!/usr/bin/env python3
"""The naive aiohttp fan-out that ``bench_ceiling.py`` measures ncinfo against.

What most people write first: a default ``aiohttp.ClientSession()`` (pool of 100), one task
per job ID, ``asyncio.gather`` over all of them, ``asyncio.run`` (no uvloop).  It does the
same work per job as ``ncinfo --format ndjson``: parse the JSON table, map every column
to its value, write one JSON line ``{"id", "ok", "fields"}``.

Usage: NC_URL=... NC_USER=... NC_PASSWORD=... python benchmarks/_naive_aiohttp.py < ids
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import aiohttp


async def fetch_all(url: str, ids: list[str]) -> list[dict[str, Any]]:
    """Get a token, then every job at once; return the decoded bodies in input order."""
    async with aiohttp.ClientSession() as session:
        form = {"username": os.environ["NC_USER"], "password": os.environ["NC_PASSWORD"]}
        async with session.post(f"{url}/api/v3/token", data=form) as response:
            token = await response.json()
        headers = {"Authorization": f"{token['token_type']}:{token['access_token']}"}

        async def one(job_id: str) -> dict[str, Any]:
            async with session.get(f"{url}/api/v3/jobs/{job_id}", headers=headers) as response:
                body: dict[str, Any] = await response.json()
                return body

        return await asyncio.gather(*(one(job_id) for job_id in ids))


def main() -> int:
    """Read IDs from stdin, fetch them, print one JSON object per job."""
    ids = [line.strip() for line in sys.stdin if line.strip()]
    bodies = asyncio.run(fetch_all(os.environ["NC_URL"].rstrip("/"), ids))
    out = sys.stdout
    for body in bodies:
        row = body["rows"][0]
        fields = {column["field"]: row[column["col"]] for column in body["columns"]}
        out.write(json.dumps({"id": int(fields["IDINT"]), "ok": True, "fields": fields}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
