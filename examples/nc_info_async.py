#!/usr/bin/env python3
"""The seed's ``nc_info.py`` ported to ``VOVRestV3Async``: all jobs fetched concurrently.

Altair's "Advanced REST Usage" example asks for each job in turn over one ``requests``
session; this asks for all of them at once over one keep-alive pool and prints the same six
lines per job, in argument order, with a blank line after each.

Usage::

    export NC_URL=`nc cmd vovbrowser`
    ./nc_info_async.py JOB_ID [JOB_ID ...]

The password is read from ``NC_PASSWORD`` if set, else asked for on the terminal.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ncinfo_async import NcInfoError, VOVRestV3Async


def find(jobdump: Mapping[str, Any], key: str) -> object:
    """The value of field ``key`` in the one-row table of ``/api/v3/jobs/{id}``.

    Field names are matched case-insensitively (REST ref §1.3); unlike the seed's ``find``,
    a missing field is an error rather than the last column's value.
    """
    for column, entry in enumerate(jobdump["columns"]):
        if str(entry["field"]).upper() == key:
            return jobdump["rows"][0][column]
    raise KeyError(key)


def info_text(text: str) -> str:
    """The seed's ``infoPrint`` layout: six lines, labels left-justified to 16 columns."""
    dd = json.loads(text)
    lines = [
        f"{'Job':<16}{find(dd, 'ID')}",
        f"{'User,Group':<16}{find(dd, 'USER')},{find(dd, 'GROUP')}",
        f"{'Command':<16}{find(dd, 'COMMAND')}",
        f"{'Status':<16}{find(dd, 'STATUSNC')}",
        f"{' Host':<16}{find(dd, 'HOST')}",
        f"{' Duration':<16}{find(dd, 'DURATIONPP')}",
    ]
    return "\n".join(lines) + "\n"


async def main(job_ids: Sequence[str]) -> int:
    """Fetch every job concurrently and print them in argument order; 1 if any failed."""
    nc_url = os.environ["NC_URL"]
    password = os.environ.get("NC_PASSWORD") or getpass.getpass("Password:")
    async with VOVRestV3Async() as vrest:
        await vrest.authorize(nc_url, password)
        answers = await asyncio.gather(
            *(
                vrest.submitRequest("GET", f"{nc_url}/api/v3/jobs/{quote(job_id, safe='')}")
                for job_id in job_ids
            ),
            return_exceptions=True,
        )
    status = 0
    for job_id, answer in zip(job_ids, answers, strict=True):
        if isinstance(answer, NcInfoError):
            print(f"nc_info_async: job {job_id}: {answer}", file=sys.stderr)
            status = 1
        elif isinstance(answer, BaseException):
            raise answer
        else:
            print(info_text(answer))
    return status


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(sys.argv[1:])))
    except NcInfoError as error:
        print(f"nc_info_async: {error}", file=sys.stderr)
        sys.exit(2)
