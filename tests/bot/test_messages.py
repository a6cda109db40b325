"""The bookkeeping that keeps posting, progress and delivery off each other's messages."""

from __future__ import annotations

from bot import messages
from bot.messages import MessageSlots


def test_posting_and_final_states() -> None:
    slots = MessageSlots()
    slots.start_posting([1, 2])
    assert slots.is_posting(1) and slots.is_posting(2)
    slots.done_posting(1)
    assert not slots.is_posting(1) and slots.is_posting(2)
    assert slots.lock(3) is slots.lock(3)
    slots.finalize(3)
    assert slots.is_final(3) and not slots.is_final(4)


def test_final_ids_are_forgotten_after_a_while() -> None:
    now = [1000.0]
    slots = MessageSlots(clock=lambda: now[0])
    slots.finalize(1)
    now[0] += messages.FINAL_MEMORY_SECONDS + 1
    slots.finalize(2)
    assert not slots.is_final(1) and slots.is_final(2)
