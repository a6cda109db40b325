"""The gateway websocket: HELLO, IDENTIFY/READY, RESUME with replay, heartbeats, compression.

Each IDENTIFY opens a session that outlives its socket: events dispatched while the bot is
disconnected are kept and replayed after RESUME, like Discord's resume buffer.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .server import FakeDiscord

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE, RESUME = 0, 1, 2, 3, 4, 6
RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 7, 8, 9, 10, 11

GUILD_MEMBERS, GUILD_MESSAGES, MESSAGE_CONTENT = 1 << 1, 1 << 9, 1 << 15
# Events a session only gets when it asked for the intent.
INTENT_OF = {
    "MESSAGE_CREATE": GUILD_MESSAGES,
    "MESSAGE_UPDATE": GUILD_MESSAGES,
    "MESSAGE_DELETE": GUILD_MESSAGES,
    "GUILD_MEMBER_ADD": GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": GUILD_MEMBERS,
}


class Connection:
    """One websocket, with its own compression stream."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None, path: str) -> None:
        self.ws = ws
        self.path = path
        self.compress = compress
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None
        self._lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        """Send one JSON payload (compressed chunks must leave in the order they were made)."""
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self._zlib is not None:
                data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(text)


@dataclass(eq=False)
class Session:
    """A gateway session: its sequence numbers and every event sent in it."""

    id: str
    shard: list[int] | None
    identify: dict[str, Any]
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    connection: Connection | None = None
    resumes: int = 0
    ready: bool = False

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Number, keep and (when connected) send an event."""
        self.seq += 1
        payload = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.events.append(payload)
        await self._send(payload)

    async def _send(self, payload: dict[str, Any]) -> None:
        conn = self.connection
        if conn is None or conn.ws.closed:
            return
        try:
            await conn.send(payload)
        except (ConnectionError, RuntimeError):
            # The socket went away under us; the event stays buffered for RESUME.
            self.connection = None


class Gateway:
    """Serves the websocket endpoint for one :class:`FakeDiscord`."""

    def __init__(self, fake: FakeDiscord, heartbeat_interval_ms: int) -> None:
        self.fake = fake
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, Session] = {}
        self.identifies = 0
        self.heartbeats = 0
        self.connections: list[Connection] = []

    @property
    def live_sessions(self) -> list[Session]:
        """The newest session of each shard (older ones were replaced by a new IDENTIFY)."""
        newest: dict[int, Session] = {}
        for session in self.sessions.values():
            shard = session.shard[0] if session.shard else 0
            newest[shard] = session
        return list(newest.values())

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a guild event to the session of the shard that owns the guild."""
        guild_id = data.get("guild_id") or (data.get("id") if event.startswith("GUILD_") else None)
        owner = int(guild_id) if guild_id else self.fake.guild.id
        for session in self.live_sessions:
            count = session.shard[1] if session.shard else 1
            mine = session.shard[0] if session.shard else 0
            if (owner >> 22) % count != mine:
                continue
            intents = session.identify.get("intents")
            if intents is not None and event in INTENT_OF and not intents & INTENT_OF[event]:
                continue
            await session.dispatch(event, self._visible(event, data, intents))

    def _visible(self, event: str, data: dict[str, Any], intents: int | None) -> dict[str, Any]:
        """Without the message content intent, other users' messages arrive blanked."""
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or intents is None:
            return data
        bot_id = str(self.fake.bot_user.id)
        author = (data.get("author") or {}).get("id")
        mentioned = any(u.get("id") == bot_id for u in data.get("mentions", []))
        if intents & MESSAGE_CONTENT or author == bot_id or mentioned:
            return data
        return data | {"content": "", "embeds": [], "attachments": [], "components": []}

    async def close_all(self, code: int) -> None:
        """Close every open socket with ``code`` (sessions stay resumable)."""
        for conn in list(self.connections):
            await conn.ws.close(code=code, message=b"fake gateway closed the connection")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One websocket connection from HELLO to close."""
        encoding = request.query.get("encoding", "json")
        compress = request.query.get("compress")
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        if encoding != "json" or compress not in (None, "zlib-stream"):
            await ws.close(code=4002, message=b"only encoding=json and compress=zlib-stream")
            return ws
        conn = Connection(ws, compress, request.path)
        self.connections.append(conn)
        session: Session | None = None
        try:
            await conn.send({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                session = await self._on_payload(conn, session, payload) or session
        finally:
            self.connections.remove(conn)
            if session is not None and session.connection is conn:
                session.connection = None
            await self.fake._notify()
        return ws

    async def _on_payload(
        self, conn: Connection, session: Session | None, payload: dict[str, Any]
    ) -> Session | None:
        op = payload.get("op")
        data = payload.get("d") or {}
        if op == HEARTBEAT:
            self.heartbeats += 1
            await conn.send({"op": HEARTBEAT_ACK})
            return None
        if op == IDENTIFY:
            return await self._identify(conn, data)
        if op == RESUME:
            return await self._resume(conn, data)
        if op == REQUEST_MEMBERS and session is not None:
            guild = self.fake.guild_by_id(int(data.get("guild_id") or 0)) or self.fake.guild
            await session.dispatch(
                "GUILD_MEMBERS_CHUNK",
                {
                    "guild_id": str(guild.id),
                    "members": [self.fake.member_payload(m, guild=guild) for m in guild.members],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "nonce": data.get("nonce"),
                },
            )
            return None
        if op in (PRESENCE, VOICE):
            return None
        await conn.ws.close(code=4001, message=f"unknown opcode {op}".encode())
        return None

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> Session | None:
        if data.get("token") != self.fake.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return None
        self.identifies += 1
        session = Session(id=secrets.token_hex(16), shard=data.get("shard"), identify=data)
        session.connection = conn
        self.sessions[session.id] = session
        fake = self.fake
        ready: dict[str, Any] = {
            "v": 10,
            "user": fake.bot_user.payload() | {"verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in fake.bot_guilds()],
            "session_id": session.id,
            "resume_gateway_url": fake.resume_gateway_url,
            "application": {"id": str(fake.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        await session.dispatch("READY", ready)
        for guild in fake.bot_guilds():
            await session.dispatch("GUILD_CREATE", fake.guild_create_payload(guild))
        session.ready = True
        await fake._notify()
        return session

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.fake.token:
            await conn.send({"op": INVALID_SESSION, "d": False})
            return None
        # Only the newest session of a shard can resume; older ones were replaced.
        if session not in self.live_sessions:
            await conn.send({"op": INVALID_SESSION, "d": False})
            return None
        since = int(data.get("seq") or 0)
        # Replay until caught up, then attach: events dispatched meanwhile are buffered, so
        # nothing is lost or sent twice.
        while pending := [p for p in session.events if p["s"] > since]:
            for payload in pending:
                await conn.send(payload)
                since = payload["s"]
        session.connection = conn
        session.resumes += 1
        await session.dispatch("RESUMED", {})
        await self.fake._notify()
        return session
