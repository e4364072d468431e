"""HTTPS mode of the simulator, verified against its CA with a real SSL context."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import aiohttp
import pytest
import requests

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Login, SimFactory

pytestmark = pytest.mark.asyncio


async def test_https_verified_with_written_ca(
    sim_factory: SimFactory, login: Login, tmp_path: Path
) -> None:
    """With write_ca's PEM as cafile, login and GETs succeed over one TLS connection."""
    server = await sim_factory(tls=True)
    assert server.url.startswith("https://127.0.0.1:")
    ca_file = server.write_ca(tmp_path / "ca.pem")
    assert ca_file.read_bytes() == server.ca_pem
    assert b"BEGIN CERTIFICATE" in ca_file.read_bytes()
    context = ssl.create_default_context(cafile=str(ca_file))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        headers = await login(session, server.url)
        for n in range(5):
            async with session.get(server.url + f"/api/v3/jobs/{n + 1}", headers=headers) as r:
                assert r.status == 200
                await r.read()
    stats = server.stats()
    assert stats["connections"] == 1
    assert stats["tls_handshakes"] == 1


async def test_https_rejected_without_ca(sim_factory: SimFactory) -> None:
    """The default trust store does not know the simulator's CA: verification fails."""
    server = await sim_factory(tls=True)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(server.url + "/sim/stats"):
                pass
    stats = server.stats()
    assert stats["connections"] == 1
    assert stats["tls_handshakes"] == 0


async def test_certificate_names(sim_factory: SimFactory, tmp_path: Path) -> None:
    """The certificate is valid for 127.0.0.1 and localhost (and ::1), not other names."""
    server = await sim_factory(tls=True)
    context = ssl.create_default_context(cafile=str(server.write_ca(tmp_path / "ca.pem")))
    for name in ("localhost", "127.0.0.1"):
        _, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=context, server_hostname=name
        )
        cert = writer.get_extra_info("peercert")
        writer.close()
        await writer.wait_closed()
    names = {value for _, value in cert["subjectAltName"]}
    assert {"localhost", "127.0.0.1"} <= names
    assert any(value.startswith("0:0:0:0:0:0:0:1") or value == "::1" for value in names)
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=context, server_hostname="example.com"
        )


async def test_requests_with_verify_path(sim_factory: SimFactory, tmp_path: Path) -> None:
    """`requests` with verify=<CA path> (the documented verify=True style) can log in."""
    server = await sim_factory(tls=True)
    ca_file = str(server.write_ca(tmp_path / "ca.pem"))

    def post() -> int:
        with requests.Session() as session:
            response = session.post(
                server.url + "/api/v3/token",
                data={"username": "demo", "password": "demo"},
                verify=ca_file,
                timeout=30,
            )
            return response.status_code

    assert await asyncio.to_thread(post) == 200


async def test_http_simulator_has_no_ca(sim_factory: SimFactory, tmp_path: Path) -> None:
    """Without TLS, ca_pem is None and write_ca refuses."""
    server = await sim_factory()
    assert server.ca_pem is None
    assert server.url.startswith("http://")
    with pytest.raises(RuntimeError):
        server.write_ca(tmp_path / "ca.pem")
