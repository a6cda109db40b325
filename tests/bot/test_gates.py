"""The U-button gate: one post per image at a time and a cooldown per user, on a fake clock."""

from __future__ import annotations

import pytest

from bot.gates import PostGate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cooldown_is_per_user_and_ends() -> None:
    clock = Clock()
    gate = PostGate(5.0, clock)
    assert gate.take(1) == 0.0
    assert gate.take(1) == 5.0
    assert gate.take(2) == 0.0  # another user is not held back
    clock.now += 3.0
    assert gate.take(1) == pytest.approx(2.0)
    clock.now += 2.0
    assert gate.take(1) == 0.0  # over: posting again starts a new cooldown
    assert gate.take(1) == 5.0


def test_no_cooldown_when_zero() -> None:
    gate = PostGate(0.0, Clock())
    assert [gate.take(1) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_one_post_per_image_at_a_time() -> None:
    gate = PostGate(5.0, Clock())
    assert gate.begin(7, 0)
    assert not gate.begin(7, 0)
    assert gate.begin(7, 1)  # another image of the same grid
    gate.end(7, 0)
    assert gate.begin(7, 0)


def test_a_negative_cooldown_is_refused() -> None:
    with pytest.raises(ValueError, match="0 seconds or more, got -1"):
        PostGate(-1.0)
