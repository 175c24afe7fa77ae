"""One pool of Redis connections per process, for every short command it sends.

A tenant worker talks to Redis for the broker (acks, publishes, its 2-second
heartbeat events, remote-control replies, kombu's binding refreshes), for its
counters (flowhq/metric_buffer.py) and for the rate limiter. Each of those used
to hold a connection of its own — six per worker, which put a Redis at its
default 10,000 clients near 1,600 tenants. They all go through this pool
instead: in a tenant worker it holds one connection, which the threads take in
turn (a short command holds it for well under a millisecond); elsewhere a few,
for a web process's threads. The two long-lived connections a worker cannot
share — its consumer's BRPOP and its remote-control subscription — stay with
kombu (flowhq/redis_transport.py). So a tenant worker holds three.

The pool takes from kombu only which server to reach (host, database,
credentials, TLS); its timeouts are the ones below.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis
from redis.connection import parse_url

# A command on a broker that has gone silent gives up after this, and so frees the connection.
SOCKET_TIMEOUT_S = 5.0
# How long a thread waits for the connection while the others use it (a Redis that does not
# answer holds it for up to SOCKET_TIMEOUT_S); then redis.ConnectionError, as for an outage.
WAIT_S = 2 * SOCKET_TIMEOUT_S
HEALTH_CHECK_S = 25
TENANT_CONNECTIONS = 1
OTHER_CONNECTIONS = 10

_pools: dict[tuple[tuple[str, str], ...], redis.BlockingConnectionPool] = {}
_lock = threading.Lock()
# What says which server and database a pool is for (and how to reach it): the rest are ours.
SERVER_PARAMS = ("host", "port", "db", "username", "password", "path", "connection_class")


def _size() -> int:
    # Read when the pool is made, not at import: a worker forked by the zygote becomes a
    # tenant worker after this module was imported.
    return TENANT_CONNECTIONS if os.environ.get("FLOWHQ_ROLE") == "tenant" else OTHER_CONNECTIONS


def server_params(params: dict[str, Any]) -> dict[str, Any]:
    """The part of redis-py connection parameters (`parse_url`'s, or kombu's) that names the server."""
    picked = {name: value for name, value in params.items()
              if value is not None and (name in SERVER_PARAMS or name.startswith("ssl_"))}
    picked.setdefault("connection_class", redis.Connection)
    return picked


def shared_pool(params: dict[str, Any]) -> redis.BlockingConnectionPool:
    """This process's pool for the server and database `params` name (the same pool for the same)."""
    server = server_params(params)
    key = tuple(sorted((name, repr(value)) for name, value in server.items()))
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = redis.BlockingConnectionPool(
                **server, max_connections=_size(), timeout=WAIT_S, socket_timeout=SOCKET_TIMEOUT_S,
                socket_connect_timeout=SOCKET_TIMEOUT_S, health_check_interval=HEALTH_CHECK_S,
            )
        return pool


def shared_client(url: str) -> redis.Redis:
    """A client on the shared pool for `url`. redis-py's pool notices a fork and starts afresh."""
    return redis.Redis(connection_pool=shared_pool(parse_url(url)))
