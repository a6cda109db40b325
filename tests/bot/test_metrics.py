"""The bot's Prometheus metrics reflect what users did."""

from __future__ import annotations

from prometheus_client import generate_latest

from imagine.settings import Settings
from storage.metrics import Metrics
from tests.bot.harness import BotRun
from tests.fakediscord import FakeDiscord


async def test_ack_latency_and_queue_depth_are_recorded(
    bot_settings: Settings, fake_discord: FakeDiscord
) -> None:
    metrics = Metrics()
    run = BotRun(bot_settings, metrics=metrics)
    alice = fake_discord.add_user("alice")
    try:
        bot = await run.start(fake_discord)
        interaction = await fake_discord.invoke_command(
            "imagine", {"prompt": "a red fox --r 2"}, user=alice
        )
        await interaction.wait_acked()
        await fake_discord.wait_for_message(
            lambda m: "(Waiting to start)" in m.content and not m.ephemeral
        )
        await bot.update_queue_gauges()
    finally:
        await run.stop()
    text = generate_latest(metrics.registry).decode()
    assert "imagine_interaction_ack_seconds_count 1.0" in text
    assert "imagine_queue_depth 2.0" in text
    assert "imagine_running_jobs 0.0" in text
