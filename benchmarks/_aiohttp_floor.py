#!/usr/bin/env python3
"""The least an aiohttp client can do per job: the floor under any aiohttp-based client.

A tuned ``TCPConnector(limit=C)``, C worker tasks pulling IDs from one iterator, uvloop, and
per job only ``GET`` + ``read()`` and one output line with the ID (no JSON parsing, no
rendering).  ``bench_ceiling.py`` runs it to show how much of a client's CPU per job is
aiohttp and the machine's system calls rather than the client's own code.

Usage: NC_URL=... NC_USER=... NC_PASSWORD=... python benchmarks/_aiohttp_floor.py C < ids
"""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp


async def fetch_all(url: str, ids: list[str], concurrency: int) -> int:
    """Fetch every job with ``concurrency`` workers; return how many answered 200."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        form = {
            "username": os.environ["NC_USER"],
            "password": os.environ["NC_PASSWORD"],
        }
        async with session.post(f"{url}/api/v3/token", data=form) as response:
            token = await response.json()
        headers = {"Authorization": f"{token['token_type']}:{token['access_token']}"}
        pending = iter(ids)
        ok = 0
        write = sys.stdout.write

        async def worker() -> None:
            nonlocal ok
            for job_id in pending:
                async with session.get(f"{url}/api/v3/jobs/{job_id}", headers=headers) as r:
                    await r.read()
                    ok += r.status == 200
                write(job_id + "\n")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ok


def main() -> int:
    """Read IDs from stdin and fetch them; exit 0 when every job answered 200."""
    concurrency = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    ids = [line.strip() for line in sys.stdin if line.strip()]
    coro = fetch_all(os.environ["NC_URL"].rstrip("/"), ids, concurrency)
    try:
        import uvloop
    except ImportError:  # uvloop is a dependency on Linux; elsewhere fall back
        ok = asyncio.run(coro)
    else:
        ok = int(uvloop.run(coro))
    return 0 if ok == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
