"""Tiny misbehaving HTTP servers on raw asyncio sockets, one misbehaviour each.

Every server listens on 127.0.0.1 (port 0), answers ``POST /api/v3/token`` correctly with a
fixed token, and hands each ``GET /api/v3/jobs/{id}`` to its ``job`` method, which is where it
misbehaves.  Use one as an async context manager; it yields its base URL and, on exit, closes
every connection it still holds, so nothing outlives the test::

    server = HalfBody(reset=True)
    async with server as url:
        ...  # point a client at url; server.job_requests counts job GETs received
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Callable
from types import TracebackType
from typing import Final

__all__ = [
    "BAD_BODIES",
    "HOSTILE",
    "HUGE",
    "BadBody",
    "Garbage",
    "HalfBody",
    "Hostile",
    "KeepAliveCloser",
    "QueryErrormsg",
    "RawServer",
    "Silent",
    "TokenTrouble",
    "job_table",
    "response",
]

TOKEN_BODY: Final = b'{"token_type":"Bearer","access_token":"x.y.z"}'
_REASONS: Final = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


def response(
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    length: int | None = None,
) -> bytes:
    """A complete HTTP/1.1 response (keep-alive by default); ``length`` may lie."""
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


def job_table(job_id: int, *, row_id: int | None = None) -> bytes:
    """The documented one-row table for a job; ``row_id`` puts another job's ID in the row."""
    rid = job_id if row_id is None else row_id
    table = {
        "query": f"SELECT * FROM jobs WHERE idint=={job_id}",
        "columns": [
            {"field": "ID", "col": 0},
            {"field": "IDINT", "col": 1},
            {"field": "STATUSNC", "col": 2},
        ],
        "rows": [[f"{rid:09d}", rid, "Done"]],
        "errormsg": "",
    }
    return json.dumps(table).encode()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """Read one request (head and body); None when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.decode("latin-1").split(" ", 2)
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return method, target


class RawServer:
    """Answers the token request, then lets ``job`` answer (or not) each job GET.

    Attributes:
        connections: TCP connections accepted.
        token_requests: token POSTs received.
        job_requests: job GETs received (whatever happened to them).
        query_requests: ``/api/v3/query`` GETs received.
    """

    def __init__(self) -> None:
        self.connections = 0
        self.token_requests = 0
        self.job_requests = 0
        self.query_requests = 0
        #: Set when the first token POST arrives.
        self.token_requested = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def token(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer the token POST correctly; return False to end the connection."""
        writer.write(response(200, TOKEN_BODY))
        await writer.drain()
        return True

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one job GET; return False to end the connection."""
        raise NotImplementedError

    async def query(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one query GET (404 unless overridden); return False to end the connection."""
        writer.write(response(404, b'{"error": "no query endpoint"}'))
        await writer.drain()
        return True

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # wakes every handler: its reads see EOF
        await asyncio.gather(*self._handlers)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while (request := await read_request(reader)) is not None:
                method, target = request
                if method == "POST" and target == "/api/v3/token":
                    self.token_requests += 1
                    self.token_requested.set()
                    if not await self.token(reader, writer):
                        break
                    continue
                if target.startswith("/api/v3/query"):
                    self.query_requests += 1
                    if not await self.query(target, reader, writer):
                        break
                    continue
                self.job_requests += 1
                if not await self.job(int(target.rsplit("/", 1)[1]), reader, writer):
                    break
        except ConnectionError:
            pass  # the client reset the connection: nothing more to do for it
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class HalfBody(RawServer):
    """Sends the headers with a Content-Length and half the body, then resets or closes."""

    def __init__(self, *, reset: bool) -> None:
        super().__init__()
        self.reset = reset

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        body = job_table(job_id)
        writer.write(response(200, body[: len(body) // 2], length=len(body)))
        await writer.drain()
        if self.reset:
            # SO_LINGER with a zero timeout turns close() into a TCP RST.
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        return False


class Silent(RawServer):
    """Accepts job GETs and never answers, holding the socket until the client gives up.

    ``token_too=True`` also leaves the token POST unanswered (a server that hangs at login).
    """

    def __init__(self, *, token_too: bool = False) -> None:
        super().__init__()
        self.token_too = token_too

    async def token(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if not self.token_too:
            return await super().token(reader, writer)
        await reader.read()
        return False

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        await reader.read()  # returns at EOF: the client closed, or the server is stopping
        return False


class Garbage(RawServer):
    """Answers job GETs with bytes that are not HTTP, then closes."""

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(b"\x00\x17garbage, not HTTP at all\r\n\x7f\x80\xff\r\n\r\n")
        await writer.drain()
        return False


def _chunked(body: bytes, size: int = 1024) -> bytes:
    """A chunked HTTP/1.1 200 response (no Content-Length) carrying ``body``."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


#: Size of the "huge" bodies; tests set ``max_body`` below it.
HUGE: Final = 64 * 1024

#: Valid HTTP 200 answers whose body is not the documented one-row table for the job asked.
BAD_BODIES: Final[dict[str, Callable[[int], bytes]]] = {
    "html": lambda job_id: response(
        200, b"<!DOCTYPE html><html><body>Login</body></html>", content_type="text/html"
    ),
    "truncated_json": lambda job_id: response(200, job_table(job_id)[:40]),
    "no_columns": lambda job_id: response(200, b'{"rows": [["000000001", 1]], "errormsg": ""}'),
    "other_id": lambda job_id: response(200, job_table(job_id, row_id=job_id + 1)),
    "huge": lambda job_id: response(200, b" " * HUGE + job_table(job_id)),
    "huge_chunked": lambda job_id: _chunked(b" " * HUGE + job_table(job_id)),
}


class BadBody(RawServer):
    """Answers every job GET with a valid HTTP 200 carrying one kind of bad body, keep-alive."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.make = BAD_BODIES[kind]

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(self.make(job_id))
        await writer.drain()
        return True


class KeepAliveCloser(RawServer):
    """Answers job GETs correctly but never keeps a connection, without saying so.

    ``on_reuse=False``: closes right after each response, with no ``Connection: close``.
    ``on_reuse=True``: keeps the connection after the first answer, then closes it without a
    word when a second request arrives on it (the stale keep-alive race, every time).
    """

    def __init__(self, *, on_reuse: bool) -> None:
        super().__init__()
        self.on_reuse = on_reuse
        self.dropped = 0
        self._answered: set[asyncio.StreamWriter] = set()

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if self.on_reuse and writer in self._answered:
            self.dropped += 1
            self._answered.discard(writer)
            return False
        writer.write(response(200, job_table(job_id)))
        await writer.drain()
        if not self.on_reuse:
            return False
        self._answered.add(writer)
        return True


class TokenTrouble(RawServer):
    """Answers the token POSTs with ``answers`` in turn (raw HTTP responses), then correctly;
    answers every job GET with its one-row table, keep-alive."""

    def __init__(self, answers: list[bytes]) -> None:
        super().__init__()
        self.answers = list(answers)

    async def token(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if not self.answers:
            return await super().token(reader, writer)
        writer.write(self.answers.pop(0))
        await writer.drain()
        return True

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        writer.write(response(200, job_table(job_id)))
        await writer.drain()
        return True


#: Server text that would retitle the terminal (OSC), recolour it (SGR), and forge a line.
HOSTILE: Final = "\x1b]0;owned\x07\x1b[31mred\x1b[0m\r\nncinfo: job 9: forged \u202eevil\x9b2J\x7f"


class Hostile(RawServer):
    """Puts ``HOSTILE`` in every place server text reaches the user.

    Job 1 gets a 400 whose JSON ``error`` is hostile, job 2 a table with a hostile
    ``errormsg`` (and a row), any other job a valid row whose STATUSNC and COMMAND are
    hostile.  ``refuse_login=True`` answers the token request with a hostile 401 instead.
    """

    def __init__(self, *, refuse_login: bool = False) -> None:
        super().__init__()
        self.refuse_login = refuse_login

    async def token(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if not self.refuse_login:
            return await super().token(reader, writer)
        writer.write(response(401, json.dumps({"error": HOSTILE}).encode()))
        await writer.drain()
        return True

    async def job(
        self, job_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if job_id == 1:
            answer = response(400, json.dumps({"error": HOSTILE}).encode())
        else:
            table = json.loads(job_table(job_id))
            if job_id == 2:
                table["errormsg"] = HOSTILE
            else:
                table["columns"] += [{"field": "COMMAND", "col": 3}]
                table["rows"][0][2] = HOSTILE
                table["rows"][0].append(HOSTILE)
            answer = response(200, json.dumps(table).encode())
        writer.write(answer)
        await writer.drain()
        return True


class QueryErrormsg(TokenTrouble):
    """Answers every query with 200 and a non-empty ``errormsg`` (with or without rows);
    answers the token and job GETs correctly."""

    def __init__(self, *, with_rows: bool) -> None:
        super().__init__([])
        self.with_rows = with_rows

    async def query(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        table = {
            "columns": [{"field": "IDINT", "col": 0}],
            "rows": [[1]] if self.with_rows else [],
            "errormsg": "unsupported selection rule",
        }
        writer.write(response(200, json.dumps(table).encode()))
        await writer.drain()
        return True
