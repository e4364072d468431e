"""The one exception tree of ncinfo_async.

Every error the library raises or returns is an ``NcInfoError``::

    NcInfoError
    ├── ConfigError             bad URL, unreadable password file, conflicting options
    ├── InputError              a job ID that is not a positive integer
    ├── AuthError               the token request was refused or its answer is unusable
    ├── TransportError          the request did not get a complete HTTP answer
    │   ├── ConnectError        TCP or TLS connection could not be made
    │   │   └── CertificateError  the server's certificate is not trusted (never retried)
    │   ├── ServerUnreachable   the run's last attempts all timed out or failed to connect
    │   ├── DisconnectedError   the connection closed or reset before a full answer
    │   └── TimeoutError        an attempt, a job's budget or the run's deadline ran out
    │       └── DeadlineExceeded  the run's deadline ran out before this job was answered
    ├── InterruptedRunError     a signal stopped the run before this job was answered
    ├── HTTPStatusError         an HTTP status the protocol does not expect
    ├── NotFoundError           the server does not know the job
    ├── ApiError                the server answered with a non-empty ``errormsg``
    └── ResponseFormatError     the body is not the documented table shape

Per-job failures are carried as values in ``JobResult.error``; only run-level failures
(configuration, authentication, a run that cannot start) are raised.  An error that stopped
the whole run (an untrusted certificate, ``ServerUnreachable``) is also given, as a value
with ``run_level`` set, to every job it left unanswered.  Each error carries the
``job_id``, ``url`` and ``status`` it concerns where they apply; none ever carries a password
or token.
"""

from __future__ import annotations

import builtins

__all__ = [
    "ApiError",
    "AuthError",
    "CertificateError",
    "ConfigError",
    "ConnectError",
    "DeadlineExceeded",
    "DisconnectedError",
    "HTTPStatusError",
    "InputError",
    "InterruptedRunError",
    "NcInfoError",
    "NotFoundError",
    "ResponseFormatError",
    "ServerUnreachable",
    "TimeoutError",
    "TransportError",
]


class NcInfoError(Exception):
    """Base class of every ncinfo_async error.

    Attributes:
        job_id: the job the error concerns, when it concerns one.
        url: the request URL (never with credentials), when a request was made.
        status: the HTTP status of the answer, when there was one.
    """

    #: A short machine-readable name used by the renderers (``not_found``, ``timeout``...).
    kind = "error"
    #: Set on an error that stopped the whole run (reported once per run, not once per job).
    run_level = False

    def __init__(
        self,
        message: str,
        *,
        job_id: int | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id
        self.url = url
        self.status = status

    def __str__(self) -> str:
        return self.message


class ConfigError(NcInfoError):
    """The settings cannot work: a missing or malformed URL, an unreadable file, bad flags."""

    kind = "config"


class InputError(NcInfoError):
    """A job ID in the input is not a positive integer."""

    kind = "input"


class AuthError(NcInfoError):
    """The server refused the credentials, or its token answer cannot be used."""

    kind = "auth"


class TransportError(NcInfoError):
    """No complete HTTP answer was received."""

    kind = "transport"

    #: Whether another attempt may succeed.
    retryable = True
    #: Seconds the server asked us to wait (never set for transport errors; see HTTPStatusError).
    retry_after: float | None = None


class ConnectError(TransportError):
    """The TCP connection or the TLS handshake failed."""

    kind = "connect"


class CertificateError(ConnectError):
    """The server's TLS certificate failed verification; retrying cannot help."""

    kind = "certificate"
    retryable = False


class ServerUnreachable(TransportError):
    """The run stopped: its last attempts all timed out or failed to connect, none answered."""

    kind = "unreachable"
    retryable = False


class DisconnectedError(TransportError):
    """The server closed or reset the connection before the answer was complete."""

    kind = "disconnected"


class TimeoutError(TransportError, builtins.TimeoutError):  # also builtin, as aiohttp's are
    """An attempt timed out (connect or read), or the run's deadline ran out."""

    kind = "timeout"


class DeadlineExceeded(TimeoutError):
    """The run's deadline ran out before this job had an answer."""

    kind = "deadline"


class InterruptedRunError(NcInfoError):
    """The run was interrupted by a signal before this job had an answer."""

    kind = "interrupted"


class HTTPStatusError(NcInfoError):
    """The server answered with a status the protocol does not expect.

    Attributes:
        retry_after: seconds from a ``Retry-After`` header, if the server sent one.
    """

    kind = "http_status"
    #: Only 429 and 5xx are worth another attempt; the client raises only those.
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        job_id: int | None = None,
        url: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, job_id=job_id, url=url, status=status)
        self.retry_after = retry_after


class NotFoundError(NcInfoError):
    """The server does not know the job (404, or an empty table with an ``errormsg``)."""

    kind = "not_found"


class ApiError(NcInfoError):
    """The server answered the documented table shape with a non-empty ``errormsg``."""

    kind = "api"


class ResponseFormatError(NcInfoError):
    """The answer is not the documented JSON table shape (or is too large)."""

    kind = "bad_response"
    #: The same server would most likely answer the same; a garbage token answer is retried.
    retryable = False
    retry_after: float | None = None
