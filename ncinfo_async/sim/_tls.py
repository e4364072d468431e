"""A throwaway CA and a server certificate for the simulator's HTTPS mode.

Real servers with `ssl.enable` generate a self-signed certificate at start
([DOC-EX] EX101, "HTTPS Security Considerations"); the simulator goes one step
further and signs its certificate with a fresh CA, so clients can test both
`verify=True` against that CA and the insecure mode.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import trustme

__all__ = ["SERVER_NAMES", "ServerTLS", "make_server_tls"]

#: Names the server certificate is valid for.
SERVER_NAMES: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """A server-side SSL context and the PEM of the CA that signed its certificate."""

    context: ssl.SSLContext
    ca_pem: bytes


def make_server_tls() -> ServerTLS:
    """Create a new CA, issue a certificate for `SERVER_NAMES` and load it in a context."""
    ca = trustme.CA()
    cert = ca.issue_cert(*SERVER_NAMES)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_pem: bytes = ca.cert_pem.bytes()
    return ServerTLS(context=context, ca_pem=ca_pem)
