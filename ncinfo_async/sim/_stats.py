"""Counters the simulator exposes at `GET /sim/stats`."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ROUTES", "SimStats"]

#: Route names counted in `requests`; `unmatched` is any other `/api/v3` path.
ROUTES: tuple[str, ...] = ("job", "job_field", "project", "query", "token", "unmatched", "version")


def _zeroed_routes() -> dict[str, int]:
    return dict.fromkeys(ROUTES, 0)


@dataclass(slots=True)
class SimStats:
    """Mutable counters, updated by the transport wrapper and the `/api/v3` handlers.

    `connections` counts accepted TCP connections (a keep-alive client making 100
    requests counts 1) and `tls_handshakes` completed TLS handshakes. Of `/api/v3`
    requests, `max_inflight` is the most served at once, `peak_rps` the most begun within
    any one second (a sliding window, see `arrived`), and `over_capacity` the 503s sent
    because `SimConfig.capacity` requests were already being served.
    """

    connections: int = 0
    tls_handshakes: int = 0
    requests: dict[str, int] = field(default_factory=_zeroed_routes)
    statuses: Counter[int] = field(default_factory=Counter)
    tokens_issued: int = 0
    unauthorized: int = 0
    errors_injected: int = 0
    drops_injected: int = 0
    slow_injected: int = 0
    forced_closes: int = 0
    revocations: int = 0
    #: `GET /api/v3/jobs/<id>` requests per job ID (shown by `GET /sim/jobs/<id>`, not in
    #: the snapshot, which stays small however many jobs there are).
    job_requests: Counter[int] = field(default_factory=Counter)
    max_inflight: int = 0
    peak_rps: int = 0
    over_capacity: int = 0
    _recent: deque[float] = field(default_factory=deque)

    def arrived(self, now: float) -> None:
        """Count an `/api/v3` request begun at monotonic time `now` towards `peak_rps`."""
        recent = self._recent
        recent.append(now)
        while now - recent[0] >= 1.0:
            recent.popleft()
        self.peak_rps = max(self.peak_rps, len(recent))

    def reset(self) -> None:
        """Zero every counter."""
        fresh = SimStats()
        for name in self.__slots__:
            setattr(self, name, getattr(fresh, name))

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        """Return the counters as a JSON-ready dict, plus the `extra` items."""
        return {
            "connections": self.connections,
            "tls_handshakes": self.tls_handshakes,
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "responses": {str(status): n for status, n in sorted(self.statuses.items())},
            "tokens_issued": self.tokens_issued,
            "unauthorized": self.unauthorized,
            "errors_injected": self.errors_injected,
            "drops_injected": self.drops_injected,
            "slow_injected": self.slow_injected,
            "forced_closes": self.forced_closes,
            "revocations": self.revocations,
            "max_inflight": self.max_inflight,
            "peak_rps": self.peak_rps,
            "over_capacity": self.over_capacity,
            **extra,
        }
