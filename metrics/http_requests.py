"""Request metrics of `web`, kept in Redis so every gunicorn process (and every web host) adds
to one count and any of them can answer a scrape (flowhq/redis_metrics.py)."""

from __future__ import annotations

from flowhq.redis_metrics import RedisCounter, RedisHistogram

SCOPE = "web"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = RedisCounter(
    "flowhq_http_requests",
    "HTTP requests answered by web, by method, status class (2xx…5xx) and route name.",
    ("method", "status_class", "route"),
)
DURATION = RedisHistogram(
    "flowhq_http_request_duration_seconds",
    "Time from a request reaching web to its response (to the first byte of a stream), by route name.",
    ("route",),
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
FAMILIES: tuple[RedisCounter | RedisHistogram, ...] = (REQUESTS, DURATION)


def request_observed(*, method: str, status: int, route: str, seconds: float) -> None:
    method = method if method in METHODS else "other"
    REQUESTS.inc(SCOPE, method, f"{status // 100}xx", route)
    DURATION.observe(SCOPE, route, seconds=seconds)
