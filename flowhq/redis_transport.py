"""kombu's Redis transport with every short command on the process's shared pool.

kombu gives each channel two pools of its own: one for the connection it keeps
blocked (BRPOP for a consumer, SUBSCRIBE for remote control) and one for
everything else. A Celery worker has at least three channels (tasks, remote
control, events), so it held six connections, two of them idle. Here the
"everything else" pool is flowhq.redis_pool's, shared by all channels and by our
own Redis use; a channel's own pool keeps only its blocked connection. Selected
by `CELERY_BROKER_TRANSPORT`.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis

from flowhq.redis_pool import shared_pool

# kombu's stubs (celery-types) leave out the pool methods overridden here.
_KombuChannel: Any = kombu_redis.Channel


class Channel(_KombuChannel):  # type: ignore[misc]  # the stubs' base is Any here
    keyprefix_fanout: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # kombu checks a new channel with a PING on its own pool, and a channel that never
        # consumes (the events publisher, a producer's) would keep that connection idle for
        # good. A consumer's BRPOP just connects again.
        if self._async_pool is not None:
            self._async_pool.disconnect(inuse_connections=False)

    def _get_pool(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._get_pool(asynchronous=True)
        params = self._connparams()
        # As kombu's own _get_pool does: the fanout prefix names the database.
        self.keyprefix_fanout = self.keyprefix_fanout.format(db=params["db"])
        return shared_pool(params)

    def _disconnect_pools(self) -> None:
        # The shared pool is the other channels' too (on close, and after a fork, where
        # redis-py's own pid check starts it afresh): only this channel's pool is closed.
        self._pool = None
        super()._disconnect_pools()


class Transport(kombu_redis.Transport):
    Channel = Channel
