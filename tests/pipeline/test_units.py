"""Pure parts of the bot: the dedup window, chat queues, reconnect backoff, the QR budget."""

from __future__ import annotations

import asyncio

import pytest

from workers.bot.chat_queue import ChatQueues
from workers.bot.dedup import RecentIds
from workers.bot.qr import QrBudget, qr_data_uri
from workers.bot.reconnect import ReconnectBudget, reconnect_delay_ms


def test_the_dedup_window_remembers_ids_up_to_its_capacity():
    window = RecentIds(capacity=3)
    assert [window.seen(i) for i in ("a", "b", "a", "c", "d")] == [False, False, True, False, False]
    assert len(window) == 3
    assert window.seen("d")
    assert not window.seen("b"), "the least recently seen id left the window"


def test_distinct_ids_are_never_duplicates():
    window = RecentIds(capacity=10_000)
    assert not any(window.seen(f"id{n}") for n in range(5000))


def run(coro):
    return asyncio.run(coro)


def test_each_chat_keeps_its_order_and_chats_run_side_by_side():
    handled: list[tuple[str, int]] = []

    async def scenario() -> None:
        async def handle(item: tuple[str, int]) -> None:
            await asyncio.sleep(0.01 if item[0] == "slow" else 0)
            handled.append(item)

        queues = ChatQueues(handle, size=10)
        for n in range(5):
            assert queues.offer("slow", ("slow", n))
            assert queues.offer("fast", ("fast", n))
        await asyncio.sleep(0.2)
        await queues.stop(grace=1)

    run(scenario())
    assert [n for chat, n in handled if chat == "slow"] == list(range(5))
    assert [n for chat, n in handled if chat == "fast"] == list(range(5))
    assert handled.index(("fast", 4)) < handled.index(("slow", 4)), "a slow chat does not hold up another"


def test_a_full_chat_queue_refuses_the_newest_and_keeps_the_rest():
    async def scenario() -> tuple[list[bool], list[int]]:
        done: list[int] = []
        gate = asyncio.Event()

        async def handle(n: int) -> None:
            await gate.wait()
            done.append(n)

        queues = ChatQueues(handle, size=2)
        accepted = [queues.offer("c", 0)]
        await asyncio.sleep(0.02)  # 0 is being handled; the queue holds 2 more
        accepted += [queues.offer("c", n) for n in (1, 2, 3)]
        gate.set()
        await asyncio.sleep(0.05)
        await queues.stop(grace=1)
        return accepted, done

    accepted, done = run(scenario())
    assert accepted == [True, True, True, False]
    assert done == [0, 1, 2]


def test_idle_chat_queues_are_freed():
    async def scenario() -> int:
        async def handle(_: int) -> None:
            return None

        queues = ChatQueues(handle, size=5, idle_seconds=0.05)
        for chat in ("a", "b", "c"):
            queues.offer(chat, 1)
        await asyncio.sleep(0.2)
        return queues.chats

    assert run(scenario()) == 0


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 500, 1000), (2, 1000, 2000), (3, 2000, 4000), (9, 15000, 30000)])
def test_reconnect_delays_double_with_jitter_up_to_the_cap(attempt, low, high):
    assert reconnect_delay_ms(attempt, base_ms=1000, max_ms=30000, rand=lambda: 0.0) == low
    assert reconnect_delay_ms(attempt, base_ms=1000, max_ms=30000, rand=lambda: 1.0) == high


def test_the_reconnect_budget_runs_out_and_resets():
    budget = ReconnectBudget(max_attempts=3, base_ms=10, max_ms=100)
    assert all(budget.next_delay_ms() is not None for _ in range(3))
    assert budget.next_delay_ms() is None
    budget.reset()
    assert budget.next_delay_ms() is not None


def test_the_qr_budget_counts_distinct_codes():
    budget = QrBudget(limit=2)
    assert budget.new_code("a")
    assert budget.new_code("a"), "the same code twice counts once"
    assert budget.new_code("b")
    assert not budget.new_code("c")
    assert budget.exhausted


def test_a_qr_budget_of_zero_never_runs_out():
    budget = QrBudget(limit=0)
    assert all(budget.new_code(str(n)) for n in range(1000))
    assert not budget.exhausted


def test_a_qr_data_uri_decodes_back_to_its_payload():
    from tests.botkit import decode_qr

    payload = "2@abc,AAAA,BBBB,CCCC"
    assert decode_qr(qr_data_uri(payload)) == payload
