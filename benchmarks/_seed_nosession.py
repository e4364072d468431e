#!/usr/bin/env python3
"""The seed's ``nc_info.py`` loop with plain ``requests.get`` instead of a session.

The seed document says: "If the ``ss.get()`` call were to be replaced by
``request.get()``, the keep-alive feature would not persist an HTTP connection between
subsequent requests."  This is that variant, built from the transcription in
``tests/seed/`` (``infoPrint``, ``find`` and ``getJWT`` are imported from it unchanged), so
the only difference from ``tests/seed/nc_info.py`` is the missing session.

Usage: NC_URL=... USER=... NC_PASSWORD=... python benchmarks/_seed_nosession.py ID [ID ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import requests

SEED_DIR = Path(__file__).resolve().parent.parent / "tests" / "seed"


def main(argv: list[str]) -> int:
    """Fetch and print each job of ``argv`` as the seed does, one new connection per request."""
    sys.path.insert(0, str(SEED_DIR))
    from getToken import getJWT
    from nc_info import getMyPassword, infoPrint

    nc_url = os.environ["NC_URL"]
    scheme = nc_url.split(":")[0]
    hostport = nc_url.split("/")[2]
    url = f"{scheme}://{hostport}"
    jwt = getJWT(requests, url, os.environ["USER"], getMyPassword())
    for jobid in argv:
        r = requests.get(url + "/api/v3/jobs/" + jobid, headers={"Authorization": jwt}, verify=True)
        infoPrint(r.text)
        print("")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
