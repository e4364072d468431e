#!/usr/bin/env python3
"""The minimal client that does ncinfo's per-job work: the baseline of ncinfo's hot path.

One ``ClientSession`` with a ``TCPConnector(limit=C)``, C worker tasks pulling IDs from one
``asyncio.Queue`` (filled up front), uvloop, and per job: ``GET`` with the token header,
``read()``, ``orjson.loads``, the row turned into a dict keyed by the upper-cased column
names, and one ndjson line ``{"id": ..., "ok": true, "fields": {...}}`` written to stdout
(the bytes ncinfo's ``--format ndjson`` writes for a found job).  No retries, timeouts,
ordering, duplicate detection or error reporting: what ncinfo adds on top of this is what
``bench_ceiling.py`` measures as the ratio of CPU per job.

Usage: NC_URL=... NC_USER=... NC_PASSWORD=... python benchmarks/_minimal_loop.py C < ids
"""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
import orjson


async def fetch_all(url: str, ids: list[int], concurrency: int) -> int:
    """Fetch every job with ``concurrency`` workers; return how many answered 200."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        form = {"username": os.environ["NC_USER"], "password": os.environ["NC_PASSWORD"]}
        async with session.post(f"{url}/api/v3/token", data=form) as response:
            token = orjson.loads(await response.read())
        headers = {"Authorization": f"{token['token_type']}:{token['access_token']}"}
        queue: asyncio.Queue[int] = asyncio.Queue()
        for job_id in ids:
            queue.put_nowait(job_id)
        write = sys.stdout.buffer.write
        ok = 0

        async def worker() -> None:
            nonlocal ok
            while not queue.empty():
                job_id = queue.get_nowait()
                async with session.get(f"{url}/api/v3/jobs/{job_id}", headers=headers) as r:
                    body = await r.read()
                    status = r.status
                if status == 200:
                    table = orjson.loads(body)
                    names = [column["field"].upper() for column in table["columns"]]
                    fields = dict(zip(names, table["rows"][0], strict=True))
                    write(orjson.dumps({"id": job_id, "ok": True, "fields": fields}) + b"\n")
                    ok += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        sys.stdout.flush()
        return ok


def main() -> int:
    """Read IDs from stdin and fetch them; exit 0 when every job answered 200."""
    concurrency = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    ids = [int(line) for line in sys.stdin if line.strip()]
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
