"""The fake Discord against the real discord.py client, driven by a small bot defined here."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import sys
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from PIL import Image

from tests.fakediscord import (
    MANAGE_GUILD,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    CommandInputError,
    FakeDiscord,
    FakeDiscordTimeout,
    Pings,
)


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, format="PNG")
    return out.getvalue()


PNG = _png(2, 3)


class Again(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"t:again:(?P<n>\d+)"):
    """A stateless button: its count lives in the custom_id."""

    def __init__(self, n: int) -> None:
        super().__init__(
            discord.ui.Button(label=f"Again {n}", emoji="🔄", custom_id=f"t:again:{n}")
        )
        self.n = n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Again:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(Again(self.n + 1))
        await interaction.response.edit_message(content=f"clicked {self.n}", view=view)


class Admin(app_commands.Group):
    """Admin commands, hidden from members without Manage Server."""

    quota = app_commands.Group(name="quota", description="quotas")

    @quota.command(name="set", description="set a quota")
    @app_commands.choices(
        period=[app_commands.Choice(name=p, value=p) for p in ("day", "week", "month", "total")]
    )
    async def set_(
        self,
        interaction: discord.Interaction,
        user: discord.Member,
        images: app_commands.Range[int, 0, 10000],
        period: str,
    ) -> None:
        await interaction.response.send_message(
            f"{user.name}: {images}/{period} by {interaction.user.name}", ephemeral=True
        )


class Feedback(discord.ui.Modal, title="Feedback"):
    """A one-field modal."""

    text: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Text", custom_id="t:text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks for {self.text.value!r}", ephemeral=True)


class Prefilled(discord.ui.Modal):
    """A modal with a prefilled, length-limited input and the title it is given."""

    def __init__(self, title: str) -> None:
        super().__init__(title=title, custom_id="t:prefilled")
        self.name: discord.ui.TextInput[Prefilled] = discord.ui.TextInput(
            label="Name", custom_id="t:name", default="Ada", min_length=3, max_length=10
        )
        self.add_item(self.name)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"name {self.name.value!r}", ephemeral=True)


class TinyBot(discord.Client):
    """Just enough bot to exercise every path of the fake."""

    def __init__(self, guild_id: int, *, slow_ack: float = 0.0) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.01)
        self.guild_id = guild_id
        self.slow_ack = slow_ack
        self.tree = app_commands.CommandTree(self)
        self.resumed = asyncio.Event()
        self.inbox: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.seen_image: bytes | None = None
        self.refused: list[discord.HTTPException] = []
        self.refusal = asyncio.Event()
        self.tree.add_command(
            Admin(
                name="admin",
                description="admin",
                default_permissions=discord.Permissions(manage_guild=True),
            )
        )

        @self.tree.command(description="make a picture")
        async def draw(
            interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
        ) -> None:
            await asyncio.sleep(self.slow_ack)
            await interaction.response.defer()
            if image is not None:
                self.seen_image = await image.read()
            view = discord.ui.View(timeout=None)
            view.add_item(Again(1))
            await interaction.followup.send(
                f"**{prompt}** - {interaction.user.mention}",
                file=discord.File(io.BytesIO(PNG), filename="grid.png"),
                view=view,
            )

        @self.tree.command(description="answer with a file, or fail privately")
        async def echo(interaction: discord.Interaction, text: str) -> None:
            if text == "bad":
                await interaction.response.defer(ephemeral=True, thinking=True)
                await interaction.edit_original_response(content="bad prompt: try again")
                return
            await interaction.response.send_message(
                text, file=discord.File(io.BytesIO(PNG), filename="echo.png")
            )

        @self.tree.command(description="send feedback")
        async def feedback(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(Feedback())

        @self.tree.command(description="open a form with this title")
        async def form(interaction: discord.Interaction, title: str) -> None:
            try:
                await interaction.response.send_modal(Prefilled(title))
            except discord.HTTPException as exc:
                self.refused.append(exc)
                self.refusal.set()

        @self.tree.command(description="choose settings")
        async def settings(interaction: discord.Interaction) -> None:
            view = discord.ui.View(timeout=None)
            select: discord.ui.Select[Any] = discord.ui.Select(
                custom_id="t:aspect",
                options=[discord.SelectOption(label=a, value=a) for a in ("1:1", "16:9")],
            )

            async def chosen(inner: discord.Interaction) -> None:
                await inner.response.send_message(f"aspect {select.values[0]}", ephemeral=True)

            select.callback = chosen  # type: ignore[method-assign,assignment]
            view.add_item(select)
            await interaction.response.send_message("Settings", view=view, ephemeral=True)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Again)
        guild = discord.Object(self.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_message(self, message: discord.Message) -> None:
        await self.inbox.put(message)


@contextlib.asynccontextmanager
async def _run_bot(client: discord.Client, fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    task = asyncio.create_task(client.start(fake.token))
    try:
        await fake.wait_until_connected(timeout=5)
        await asyncio.wait_for(client.wait_until_ready(), 5)
        yield client
    finally:
        await client.close()
        await task


@pytest.fixture
async def bot(discord_to_fake: FakeDiscord) -> AsyncIterator[TinyBot]:
    client = TinyBot(discord_to_fake.guild.id)
    async with _run_bot(client, discord_to_fake):
        yield client


async def test_login_ready_and_guild_create(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    assert bot.user is not None and bot.user.id == fake_discord.bot_user.id
    assert bot.application_id == fake_discord.application_id
    guild = bot.get_guild(fake_discord.guild.id)
    assert guild is not None and guild.name == "Test Guild"
    assert [c.name for c in guild.text_channels] == ["general"]
    assert guild.owner_id == fake_discord.owner.id
    assert guild.me.guild_permissions.attach_files
    session = fake_discord.gateway.live_sessions[0]
    assert [e["t"] for e in session.events[:2]] == ["READY", "GUILD_CREATE"]
    assert session.identify["token"] == fake_discord.token
    # discord.py asks for zlib-stream by default; the events above arrived through it.
    assert session.connection is not None and session.connection.compress == "zlib-stream"


async def test_command_sync_is_recorded(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    names = sorted(c.name for c in fake_discord.synced_commands(guild=True))
    assert names == ["admin", "draw", "echo", "feedback", "form", "settings"]
    admin = fake_discord.find_command("admin")
    assert int(admin.definition["default_member_permissions"]) == 1 << 5
    assert [o["name"] for o in admin.definition["options"]] == ["quota"]
    # The bot sees the same ids the fake assigned.
    fetched = await bot.tree.fetch_commands(guild=discord.Object(fake_discord.guild.id))
    assert {c.name: c.id for c in fetched} == {
        c.name: c.id for c in fake_discord.synced_commands(guild=True)
    }


async def test_slash_command_defer_followup_with_file(
    bot: TinyBot, fake_discord: FakeDiscord
) -> None:
    alice = fake_discord.add_user("alice")
    interaction = await fake_discord.invoke_command(
        "draw", {"prompt": "a red fox"}, user=alice, attachments=[("fox.png", PNG)]
    )
    response = await interaction.wait_acked()
    assert response.type == 5 and not response.ephemeral
    assert interaction.ack_latency is not None and interaction.ack_latency < 1.0
    message = await fake_discord.wait_for_message(lambda m: bool(m.attachments))
    assert message.content == f"**a red fox** - {alice.mention}"
    assert [(a.filename, a.data, a.content_type) for a in message.attachments] == [
        ("grid.png", PNG, "image/png")
    ]
    assert (message.attachments[0].width, message.attachments[0].height) == (2, 3)
    # The first followup replaced the "thinking" message rather than posting another.
    assert message is interaction.original and not message.loading
    assert [b.label for b in message.buttons] == ["Again 1"]
    assert message.buttons[0].emoji == "🔄" and message.buttons[0].custom_id == "t:again:1"
    assert bot.seen_image == PNG
    await fake_discord.wait_all_acked()
    fake_discord.assert_all_acked()


async def test_attachment_urls_are_served(fake_discord: FakeDiscord) -> None:
    attachment = fake_discord.upload(fake_discord.channel.id, "x.png", PNG)
    fake_discord._uploads[attachment.id] = attachment
    async with aiohttp.ClientSession() as session, session.get(attachment.url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/png"
        assert await resp.read() == PNG


async def test_dynamic_button_click_edits_message(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    alice = fake_discord.add_user("alice")
    await fake_discord.invoke_command("draw", {"prompt": "fox"}, user=alice)
    message = await fake_discord.wait_for_message(lambda m: bool(m.buttons))
    click = await fake_discord.click(message, "t:again:1", user=alice)
    await fake_discord.wait_for(lambda: message.content == "clicked 1")
    assert click.response is not None and click.response.type == 7
    assert [b.custom_id for b in message.buttons] == ["t:again:2"]
    assert [r.via for r in message.history] == ["interaction", "followup", "interaction"]
    assert message.edits[-1].content == "clicked 1"
    # The edit kept the file (no attachments key in the update).
    assert [a.filename for a in message.attachments] == ["grid.png"]
    with pytest.raises(CommandInputError, match="no component 't:again:9'"):
        await fake_discord.click(message, "t:again:9", user=alice)


async def test_select_menu_and_ephemeral_response(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    alice = fake_discord.add_user("alice")
    opened = await fake_discord.invoke_command("settings", user=alice)
    await opened.wait_acked()
    assert opened.ephemeral and opened.original is not None
    assert opened.original not in fake_discord.channel_messages()
    assert opened.original.selects[0].values == ["1:1", "16:9"]
    chosen = await fake_discord.select(opened.original, "t:aspect", ["16:9"], user=alice)
    response = await chosen.wait_acked()
    assert response.content == "aspect 16:9" and response.ephemeral


async def test_subcommand_group_with_user_option(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    admin = fake_discord.add_user("boss", manage_guild=True)
    bob = fake_discord.add_user("bob")
    interaction = await fake_discord.invoke_command(
        "admin quota set", {"user": bob, "images": 5, "period": "day"}, user=admin
    )
    response = await interaction.wait_acked()
    assert response.content == "bob: 5/day by boss" and response.ephemeral
    with pytest.raises(CommandInputError, match="hides /admin from bob"):
        await fake_discord.invoke_command(
            "admin quota set", {"user": bob, "images": 5, "period": "day"}, user=bob
        )
    with pytest.raises(CommandInputError, match="must be one of"):
        await fake_discord.invoke_command(
            "admin quota set", {"user": bob, "images": 5, "period": "year"}, user=admin
        )
    with pytest.raises(CommandInputError, match="at most 10000"):
        await fake_discord.invoke_command(
            "admin quota set", {"user": bob, "images": 10001, "period": "day"}, user=admin
        )
    with pytest.raises(CommandInputError, match="needs a subcommand"):
        await fake_discord.invoke_command("admin quota", {}, user=admin)


async def test_late_ack_is_rejected_and_reported(discord_to_fake: FakeDiscord) -> None:
    fake = discord_to_fake
    fake.ack_deadline = 0.2
    client = TinyBot(fake.guild.id, slow_ack=0.4)
    async with _run_bot(client, fake):
        interaction = await fake.invoke_command("draw", {"prompt": "x"}, user=fake.owner)
        with pytest.raises(AssertionError, match=r"not acknowledged within 0\.2s"):
            await interaction.wait_acked()
        await fake.wait_for(lambda: interaction.late_callbacks, what="the late callback")
        assert not interaction.acked_in_time
        with pytest.raises(AssertionError, match="never acknowledged"):
            fake.assert_all_acked()
        with pytest.raises(AssertionError, match="never acknowledged"):
            await fake.wait_all_acked()


async def test_channel_send_and_edit_with_bot_token(
    bot: TinyBot, fake_discord: FakeDiscord
) -> None:
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("job queued (Waiting to start)")
    record = fake_discord.messages[sent.id]
    assert (
        record.content == "job queued (Waiting to start)" and record.author is fake_discord.bot_user
    )
    await channel.get_partial_message(sent.id).edit(
        content="job (50%)", attachments=[discord.File(io.BytesIO(PNG), filename="preview.png")]
    )
    assert record.content == "job (50%)"
    assert [a.filename for a in record.attachments] == ["preview.png"]
    assert record.edited_at is not None and len(record.history) == 2
    fetched = await channel.fetch_message(sent.id)
    assert fetched.content == "job (50%)" and fetched.attachments[0].url.startswith(
        fake_discord.base_url
    )
    assert await fetched.attachments[0].read() == PNG
    await fetched.delete()
    assert record.deleted
    with pytest.raises(discord.NotFound):
        await channel.fetch_message(sent.id)


async def test_invalid_messages_are_rejected_like_discord(
    bot: TinyBot, fake_discord: FakeDiscord
) -> None:
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.status == 400 and too_long.value.code == 50035
    sent = await channel.send("kept")
    with pytest.raises(discord.HTTPException, match="empty message"):
        await sent.edit(content="")
    assert fake_discord.messages[sent.id].content == "kept"
    assert len(fake_discord.messages[sent.id].history) == 1
    view = discord.ui.View()
    for i in range(6):
        view.add_item(discord.ui.Button(label=str(i), custom_id=f"b{i}"))
    payload = {
        "content": "x",
        "components": [{"type": 1, "components": view.to_components()[0]["components"] * 2}],
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{fake_discord.api_base}/channels/{fake_discord.channel.id}/messages",
            json=payload,
            headers={"Authorization": f"Bot {fake_discord.token}"},
        ) as resp:
            assert resp.status == 400
            assert resp.headers["Content-Type"] == "application/json"
            assert "5 in length" in (await resp.json())["message"]
        async with session.get(f"{fake_discord.api_base}/users/@me") as resp:
            assert resp.status == 401
        async with session.get(
            f"{fake_discord.api_base}/stickers/1",
            headers={"Authorization": f"Bot {fake_discord.token}"},
        ) as resp:
            assert resp.status == 404
    assert [r.path for r in fake_discord.unhandled_requests()] == ["/stickers/1"]


async def test_rate_limit_is_retried_by_discord_py(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    rule = fake_discord.rate_limit(
        "POST", "/channels/{channel_id}/messages", times=2, retry_after=0.05
    )
    sent = await channel.send("hello")
    assert rule.hits == 2
    statuses = [
        r.status for r in fake_discord.requests if r.route == "/channels/{channel_id}/messages"
    ]
    assert statuses == [429, 429, 200]
    assert fake_discord.messages[sent.id].content == "hello"


async def test_resume_after_drop_replays_missed_events(
    bot: TinyBot, fake_discord: FakeDiscord
) -> None:
    session = fake_discord.gateway.live_sessions[0]
    alice = fake_discord.add_user("alice")
    await fake_discord.drop_gateway(code=4000)
    # Sent while the bot is disconnected: delivered on RESUME from the buffer.
    interaction = await fake_discord.invoke_command("draw", {"prompt": "after drop"}, user=alice)
    await asyncio.wait_for(bot.resumed.wait(), 5)
    assert session.resumes == 1 and fake_discord.gateway.identifies == 1
    assert fake_discord.gateway.connections[0].path == "/gateway-resume"
    await interaction.wait_acked(timeout=3)
    await fake_discord.wait_for_message(lambda m: "after drop" in m.content)


async def test_zlib_stream_and_plain_json_gateway(fake_discord: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(
            f"{fake_discord.gateway_url}?v=10&encoding=json&compress=zlib-stream"
        ) as ws:
            inflate = zlib.decompressobj()
            hello = await ws.receive_bytes()
            assert hello.endswith(b"\x00\x00\xff\xff")
            assert b'"op":10' in inflate.decompress(hello)
            await ws.send_json(
                {"op": 2, "d": {"token": fake_discord.token, "properties": {}, "intents": 1}}
            )
            ready = inflate.decompress(await ws.receive_bytes())
            create = inflate.decompress(await ws.receive_bytes())
            assert b'"t":"READY"' in ready and b'"s":1' in ready
            assert b'"t":"GUILD_CREATE"' in create and b'"s":2' in create
            await ws.send_json({"op": 1, "d": 2})
            assert b'"op":11' in inflate.decompress(await ws.receive_bytes())
        async with session.ws_connect(f"{fake_discord.gateway_url}?v=10&encoding=json") as ws:
            assert (await ws.receive_json())["op"] == 10
            await ws.send_json({"op": 2, "d": {"token": "wrong", "properties": {}}})
            closed = await ws.receive()
            assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 4004


async def test_wait_for_times_out_with_context(fake_discord: FakeDiscord) -> None:
    with pytest.raises(FakeDiscordTimeout, match="waiting for nine buttons"):
        await fake_discord.wait_for(lambda: False, timeout=0.05, what="nine buttons")


async def test_unsynced_command_cannot_be_invoked(fake_discord: FakeDiscord) -> None:
    with pytest.raises(CommandInputError, match="never synced"):
        await fake_discord.invoke_command("imagine", {"prompt": "x"}, user=fake_discord.owner)


async def test_modal_round_trip(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    alice = fake_discord.add_user("alice")
    opened = await fake_discord.invoke_command("feedback", user=alice)
    response = await opened.wait_acked()
    assert response.type == 9 and opened.modal is not None
    assert opened.modal["title"] == "Feedback"
    submitted = await fake_discord.submit_modal(opened, {"t:text": "lovely"})
    answer = await submitted.wait_acked()
    assert answer.content == "thanks for 'lovely'" and answer.ephemeral


async def test_modal_inputs_are_checked_and_prefilled_values_submitted(
    bot: TinyBot, fake_discord: FakeDiscord
) -> None:
    alice = fake_discord.add_user("alice")
    opened = await fake_discord.invoke_command("form", {"title": "Who"}, user=alice)
    assert (await opened.wait_acked()).type == 9
    with pytest.raises(CommandInputError, match="takes 3 to 10 characters, got 11"):
        await fake_discord.submit_modal(opened, {"t:name": "x" * 11})
    with pytest.raises(CommandInputError, match="is required"):
        await fake_discord.submit_modal(opened, {"t:name": ""})
    untouched = await fake_discord.submit_modal(opened, {})
    assert (await untouched.wait_acked()).content == "name 'Ada'"
    assert opened.submits == [untouched]
    with pytest.raises(CommandInputError, match="was closed"):
        await fake_discord.submit_modal(opened, {})

    too_long = await fake_discord.invoke_command("form", {"title": "T" * 46}, user=alice)
    await asyncio.wait_for(bot.refusal.wait(), 5)
    assert bot.refused[0].status == 400 and "title" in str(bot.refused[0])
    assert too_long.response is None and too_long.modal is None


async def test_messages_reach_the_gateway_with_intents(
    bot: TinyBot, fake_discord: FakeDiscord
) -> None:
    alice = fake_discord.add_user("alice")
    await fake_discord.post_message(alice, "hello there")
    plain = await asyncio.wait_for(bot.inbox.get(), 5)
    # Default intents lack message_content: other users' text arrives blank, like Discord.
    assert plain.author.id == alice.id and plain.content == ""
    await fake_discord.post_message(alice, f"{fake_discord.bot_user.mention} hi")
    mentioned = await asyncio.wait_for(bot.inbox.get(), 5)
    assert mentioned.content.endswith(" hi")
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("own message")
    echoed = await asyncio.wait_for(bot.inbox.get(), 5)
    assert echoed.id == sent.id and echoed.content == "own message"


async def test_expired_token_rejects_webhook_calls(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    interaction = await fake_discord.invoke_command(
        "draw", {"prompt": "x"}, user=fake_discord.owner
    )
    await fake_discord.wait_for(lambda: interaction.followups, what="the followup")
    interaction.expire_token()
    url = f"{fake_discord.api_base}/webhooks/{fake_discord.application_id}/{interaction.token}"
    callback = f"{fake_discord.api_base}/interactions/{interaction.id}/{interaction.token}/callback"
    async with aiohttp.ClientSession() as session:
        async with session.patch(f"{url}/messages/@original", json={"content": "late"}) as resp:
            assert resp.status == 401
            assert (await resp.json())["code"] == 50027
        async with session.post(callback, json={"type": 5}) as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == 40060
    assert interaction.original is not None and interaction.original.content.startswith("**x**")


async def test_auto_sharded_client_uses_gateway_bot(
    fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    import discord.http

    monkeypatch.setattr(discord.http.Route, "BASE", fake_discord.api_base)
    # DEFAULT_GATEWAY stays Discord's: the URL must come from GET /gateway/bot.
    client = discord.AutoShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.01)
    async with _run_bot(client, fake_discord):
        assert client.shard_count == 1
        assert "/gateway/bot" in [r.route for r in fake_discord.requests]
        assert fake_discord.gateway.live_sessions[0].identify["shard"] == [0, 1]
        assert client.get_guild(fake_discord.guild.id) is not None


SUBPROCESS_BOT = """
import asyncio, os, discord, yarl
from discord import app_commands

discord.http.Route.BASE = os.environ["IMAGINE_DISCORD_API_BASE"]
gateway_url = os.environ["IMAGINE_DISCORD_GATEWAY_URL"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
guild = discord.Object(int(os.environ["IMAGINE_GUILD_IDS"].strip("[]")))


class Bot(discord.Client):
    def __init__(self):
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.01)
        self.tree = app_commands.CommandTree(self)

        @self.tree.command(description="ping", guild=guild)
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"pong from pid {os.getpid()}")

    async def setup_hook(self):
        await self.tree.sync(guild=guild)


Bot().run(os.environ["IMAGINE_DISCORD_TOKEN"], log_handler=None)
"""


async def test_bot_in_a_subprocess(fake_discord: FakeDiscord) -> None:
    env = {**os.environ, **fake_discord.environ()}
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", SUBPROCESS_BOT, env=env)
    try:
        await fake_discord.wait_until_connected(timeout=20)
        await fake_discord.wait_for(lambda: fake_discord.synced_commands(), what="the sync")
        interaction = await fake_discord.invoke_command("ping", user=fake_discord.owner)
        response = await interaction.wait_acked()
        assert response.content == f"pong from pid {process.pid}"
    finally:
        process.terminate()
        await process.wait()


async def test_immediate_response_with_file_and_ephemeral_edit_original(
    bot: TinyBot, fake_discord: FakeDiscord
) -> None:
    alice = fake_discord.add_user("alice")
    sent = await fake_discord.invoke_command("echo", {"text": "hi"}, user=alice)
    response = await sent.wait_acked()
    assert response.type == 4 and response.content == "hi" and not sent.ephemeral
    assert sent.original is not None and sent.original.attachments[0].data == PNG
    assert sent.original in fake_discord.channel_messages()

    failed = await fake_discord.invoke_command("echo", {"text": "bad"}, user=alice)
    await fake_discord.wait_for(lambda: failed.original and failed.original.content)
    assert failed.original is not None
    assert failed.original.content == "bad prompt: try again"
    assert failed.ephemeral and not failed.original.loading and failed.original.edited_at is None
    assert failed.original not in fake_discord.channel_messages()


async def test_upload_over_the_limit_is_refused(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    fake_discord.attachment_size_limit = len(PNG) - 1
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send(file=discord.File(io.BytesIO(PNG), filename="big.png"))
    assert refused.value.status == 413 and refused.value.code == 40005
    assert fake_discord.channel_messages() == []


async def test_pings_follow_allowed_mentions(bot: TinyBot, fake_discord: FakeDiscord) -> None:
    alice, bob = fake_discord.add_user("alice"), fake_discord.add_user("bob")
    mods = fake_discord.add_role("mods")
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    text = f"{alice.mention} {bob.mention} <@&{mods.id}> @everyone"
    everything = await channel.send(text)
    assert fake_discord.messages[everything.id].pings == Pings(
        users=(alice.id, bob.id), roles=(mods.id,), everyone=True
    )
    only_bob = await channel.send(
        text,
        allowed_mentions=discord.AllowedMentions.none().merge(
            discord.AllowedMentions(users=[discord.Object(bob.id)])
        ),
    )
    assert fake_discord.messages[only_bob.id].pings == Pings(users=(bob.id,))
    await channel.get_partial_message(only_bob.id).edit(content=f"{alice.mention} now")
    assert fake_discord.messages[only_bob.id].pings == Pings(users=(bob.id,))  # edits never ping


async def test_several_guilds_with_their_own_roles_joins_and_leaves(
    discord_to_fake: FakeDiscord,
) -> None:
    fake = discord_to_fake
    other = fake.add_guild("Other Guild")
    later = fake.add_guild("Later Guild", with_bot=False)
    boss = fake.add_user("boss", manage_guild=True, guild=other)
    fake.add_member(boss, fake.guild)  # a plain member here, Manage Server only in Other Guild
    bob = fake.add_user("bob", guild=other)
    client = TinyBot(fake.guild.id)
    joined: asyncio.Queue[int] = asyncio.Queue()
    removed: asyncio.Queue[int] = asyncio.Queue()

    async def on_guild_join(guild: discord.Guild) -> None:
        await joined.put(guild.id)

    async def on_guild_remove(guild: discord.Guild) -> None:
        await removed.put(guild.id)

    client.event(on_guild_join)
    client.event(on_guild_remove)
    async with _run_bot(client, fake):
        assert sorted(g.name for g in client.guilds) == ["Other Guild", "Test Guild"]
        await client.tree.sync()  # global commands reach every guild
        elsewhere = other.channels[0]
        interaction = await fake.invoke_command(
            "admin quota set",
            {"user": bob, "images": 5, "period": "day"},
            user=boss,
            channel=elsewhere,
        )
        assert (await interaction.wait_acked()).content == "bob: 5/day by boss"
        assert interaction.payload["guild_id"] == str(other.id)
        assert int(interaction.payload["member"]["permissions"]) & MANAGE_GUILD
        with pytest.raises(CommandInputError, match="hides /admin from boss"):
            await fake.invoke_command(
                "admin quota set", {"user": boss, "images": 5, "period": "day"}, user=boss
            )

        gone = client.get_guild(other.id)
        assert gone is not None
        await gone.leave()
        assert fake.left_guilds == [other] and not other.has(fake.bot_user)
        assert await asyncio.wait_for(removed.get(), 5) == other.id
        assert client.get_guild(other.id) is None

        await fake.invite_bot(later)
        assert await asyncio.wait_for(joined.get(), 5) == later.id
        arrived = client.get_guild(later.id)
        assert arrived is not None and [c.name for c in arrived.text_channels] == ["general"]


async def test_channel_permissions_deletion_and_faults_reach_discord_py(
    bot: TinyBot, fake_discord: FakeDiscord
) -> None:
    quiet = fake_discord.add_channel("quiet")
    fake_discord.set_permissions(quiet, fake_discord.bot_role, deny=SEND_MESSAGES)
    with pytest.raises(discord.Forbidden) as refused:
        await bot.get_partial_messageable(quiet.id).send("hello")
    assert (refused.value.status, refused.value.code) == (403, 50013)
    user = fake_discord.add_user("zoe")
    interaction = await fake_discord.invoke_command(
        "admin quota set",
        {"user": user, "images": 1, "period": "day"},
        channel=quiet,
        user=user,
        check_permissions=False,
    )
    app = discord.Permissions(int(interaction.payload["app_permissions"]))
    assert app.view_channel and not app.send_messages

    fake_discord.set_permissions(quiet, fake_discord.bot_role, deny=VIEW_CHANNEL)
    with pytest.raises(discord.Forbidden) as hidden:
        await bot.get_partial_messageable(quiet.id).send("hello")
    assert hidden.value.code == 50001

    general = bot.get_partial_messageable(fake_discord.channel.id)
    sent = await general.send("first")
    fake_discord.fail(
        "PATCH",
        "/channels/{channel_id}/messages/{message_id}",
        status=503,
        code=0,
        message="upstream connect error",
    )
    with pytest.raises(discord.DiscordServerError):
        await general.get_partial_message(sent.id).edit(content="second")
    await general.get_partial_message(sent.id).edit(content="third")
    assert fake_discord.messages[sent.id].content == "third"

    await fake_discord.delete_channel(fake_discord.channel)
    with pytest.raises(discord.NotFound) as gone:
        await general.get_partial_message(sent.id).edit(content="fourth")
    assert gone.value.code == 10003


async def test_an_upload_that_arrives_in_small_pieces_is_read_whole(
    fake_discord: FakeDiscord,
) -> None:
    # A bot in another process under load sends its uploads in pieces; aiohttp's multipart
    # reader then takes a (deprecated, warning) path that must not fail the request.
    boundary = "imagineboundary"
    data = bytes(range(256)) * 256
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="payload_json"\r\n'
            "Content-Type: application/json\r\n\r\n"
            '{"content": "in pieces"}\r\n'
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="files[0]"; filename="pieces.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )

    async def trickle() -> AsyncIterator[bytes]:
        # A few bytes of the file, a few more, then the rest: the reader gets two short reads,
        # then a long one, and pushes back what it read past its chunk.
        start = body.index(data)
        for piece in (body[: start + 3], body[start + 3 : start + 8], body[start + 8 :]):
            yield piece
            for _ in range(20):
                await asyncio.sleep(0)  # let the server read the piece before the next

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake_discord.api_base}/channels/{fake_discord.channel.id}/messages",
            data=trickle(),
            headers={
                "Authorization": f"Bot {fake_discord.token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        sent = await resp.json()
    message = fake_discord.messages[int(sent["id"])]
    assert message.content == "in pieces"
    assert [(a.filename, a.data) for a in message.attachments] == [("pieces.bin", data)]
    assert fake_discord.server_errors == []
