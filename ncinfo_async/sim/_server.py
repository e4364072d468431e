"""`Simulator`: the simulated vovserver on a real loopback socket, as an async context manager.

    async with Simulator(SimConfig(jobs=100, tls=True)) as sim:
        sim.write_ca(tmp_path / "ca.pem")
        ...  # talk to sim.url

The server binds with address reuse, and `stop()` then `start()` serves again on the
same port with the same jobs but every token revoked, as a vovserver restart would.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._app import SimState, build_app
from ._config import FaultConfig, SimConfig
from ._tls import ServerTLS, make_server_tls

if TYPE_CHECKING:
    import os
    from types import TracebackType

    from aiohttp.web_protocol import RequestHandler

__all__ = ["Simulator"]

logger = logging.getLogger("ncinfo_async.sim")


class Simulator:
    """A running (or startable) simulated vovserver.

    Args:
        config: What to serve; defaults to `SimConfig()`.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        """Prepare the jobs, tokens and certificate; nothing listens until `start()`."""
        self.config = config if config is not None else SimConfig()
        self.state = SimState(self.config)
        self._tls: ServerTLS | None = make_server_tls() if self.config.tls else None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._started_once = False

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve. A restart reuses the first port bound and revokes all tokens.

        Raises:
            RuntimeError: Already running.
            OSError: The address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("simulator already running")
        if self._started_once:
            self.state.revoke()
        runner = web.AppRunner(
            build_app(self.state),
            access_log=None,
            handle_signals=False,
            max_line_size=self.config.max_line_size,
        )
        await runner.setup()
        server = runner.server
        assert server is not None  # setup() just made it
        stats, tls = self.state.stats, self._tls is not None
        original_made = server.connection_made

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            # aiohttp calls this from RequestHandler.connection_made, which asyncio (and
            # uvloop) only runs once the TLS handshake has completed.
            if tls:
                stats.tls_handshakes += 1
            original_made(handler, transport)

        # web.Server has no hook for this; an instance attribute shadows the method.
        server.connection_made = connection_made  # type: ignore[method-assign]

        def protocol_factory() -> RequestHandler:
            # Called once per accepted TCP connection, before any TLS handshake.
            stats.connections += 1
            return server()

        loop = asyncio.get_running_loop()
        port = self._port if self._port is not None else self.config.port
        try:
            self._server = await loop.create_server(
                protocol_factory,
                host=self.config.host,
                port=port,
                ssl=self._tls.context if self._tls else None,
                reuse_address=True,
                backlog=1024,
            )
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = self._server.sockets[0].getsockname()[1]
        self._started_once = True
        logger.info("serving %d jobs at %s", self.config.jobs, self.url)

    async def stop(self) -> None:
        """Stop listening and close every connection; safe to call when not running."""
        server, runner = self._server, self._runner
        self._server = self._runner = None
        if server is not None:
            server.close()
        if runner is not None:
            await runner.cleanup()
        if server is not None:
            await server.wait_closed()
            logger.info("stopped serving at %s", self.url)

    async def __aenter__(self) -> Simulator:
        """Start serving unless already running, and return self."""
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        await self.stop()

    # -- addresses ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the server is listening."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound TCP port (kept after `stop()` for a restart).

        Raises:
            RuntimeError: The simulator has never been started.
        """
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:40123` (no trailing slash)."""
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """PEM of the CA that signed the server certificate, or None without TLS."""
        return self._tls.ca_pem if self._tls else None

    def write_ca(self, path: str | os.PathLike[str]) -> Path:
        """Write the CA certificate PEM to `path` and return it as a Path.

        Raises:
            RuntimeError: The simulator does not use TLS.
        """
        if self._tls is None:
            raise RuntimeError("simulator started without TLS has no CA")
        target = Path(path)
        target.write_bytes(self._tls.ca_pem)
        return target

    # -- control ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Return the counters, as `GET /sim/stats` does."""
        return self.state.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters, as `POST /sim/reset-stats` does."""
        self.state.stats.reset()

    def revoke(self) -> None:
        """Invalidate every issued token, as `POST /sim/revoke` does."""
        self.state.revoke()

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault settings, as `POST /sim/faults` does (there partially)."""
        self.state.set_faults(faults)

    def set_job_status(self, job_id: int, status: str) -> None:
        """Put a job in an NC status from now on, as `POST /sim/jobs/<id>/status` does."""
        self.state.set_job_status(job_id, status)

    def job_info(self, job_id: int) -> dict[str, Any]:
        """A job's NC status and request count, as `GET /sim/jobs/<id>` returns them."""
        return self.state.job_info(job_id)
