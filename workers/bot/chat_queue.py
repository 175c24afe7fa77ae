"""One FIFO per chat: replies in a chat keep the order of its messages, chats run side by side.

Each chat's queue is bounded by CHAT_QUEUE_SIZE. Overflow policy: a message
that arrives when its chat's queue is full is refused (`offer` returns False)
and the caller logs it as `dropped` — what is already queued keeps its place,
so one chat flooding the bot cannot push out what came before. A chat's queue
and its consumer task are freed after it has been idle for a while.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class ChatQueues(Generic[T]):
    def __init__(self, handler: Callable[[T], Awaitable[None]], *, size: int, idle_seconds: float = 60.0) -> None:
        self.handler = handler
        self.size = size
        self.idle_seconds = idle_seconds
        self._queues: dict[str, asyncio.Queue[T]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._busy: set[str] = set()

    def offer(self, chat: str, item: T) -> bool:
        """Queue `item` for `chat`; False if that chat's queue is full (the item is not taken)."""
        queue = self._queues.get(chat)
        if queue is None:
            queue = self._queues[chat] = asyncio.Queue(self.size)
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        if chat not in self._tasks:
            self._tasks[chat] = asyncio.create_task(self._consume(chat, queue), name=f"chat:{chat}")
        return True

    async def _consume(self, chat: str, queue: asyncio.Queue[T]) -> None:
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.idle_seconds)
                except TimeoutError:
                    if queue.empty():
                        return
                    continue
                self._busy.add(chat)
                try:
                    await self.handler(item)
                except Exception:
                    log.exception("chat handler failed", extra={"chat": chat})
                finally:
                    self._busy.discard(chat)
        finally:
            if self._queues.get(chat) is queue and queue.empty():
                del self._queues[chat]
            self._tasks.pop(chat, None)

    @property
    def chats(self) -> int:
        return len(self._queues)

    async def stop(self, grace: float) -> None:
        """Let the messages being handled finish (up to `grace`), then cancel the rest."""
        for queue in self._queues.values():
            while not queue.empty():
                queue.get_nowait()
        busy = [self._tasks[c] for c in list(self._busy) if c in self._tasks]
        if busy:
            await asyncio.wait(busy, timeout=grace)
        for task in list(self._tasks.values()):
            task.cancel()
        self._queues.clear()
