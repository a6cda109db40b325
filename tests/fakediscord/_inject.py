"""Injection: slash commands, button clicks, select menus and modal submits as INTERACTION_CREATE.

Every injected interaction is recorded (:class:`Interaction`) with its ack deadline, so tests
can assert how fast and how the bot answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._modals import submit_problem, text_inputs
from ._options import CommandInputError, Resolved, build_options
from .models import Attachment, Channel, Command, Interaction, Message, User

if TYPE_CHECKING:
    from ._gateway import Gateway
    from .models import Guild


class Injector:
    """The part of :class:`FakeDiscord` that plays the Discord users."""

    if TYPE_CHECKING:
        guild: Guild
        channel: Channel
        bot_user: User
        application_id: int
        ack_deadline: float
        attachment_size_limit: int
        commands: dict[tuple[int | None, str, int], Command]
        interactions: list[Interaction]
        messages: dict[int, Message]
        gateway: Gateway
        _uploads: dict[int, Attachment]

        def snowflake(self) -> int: ...
        def upload(
            self, channel_id: int, filename: str, data: bytes, description: str | None = None
        ) -> Attachment: ...
        def channel_by_id(self, channel_id: int) -> Channel | None: ...
        def member_payload(
            self, user: User, *, permissions: bool = False, guild: Guild | None = None
        ) -> dict[str, Any]: ...
        def guild_of(self, channel: Channel) -> Guild: ...
        def message_payload(self, message: Message) -> dict[str, Any]: ...
        async def _notify(self) -> None: ...
        async def announce(self, event: str, message: Message) -> None: ...
        def new_message(self, channel_id: int, author: User, **fields: Any) -> Message: ...
        def store(self, message: Message) -> Message: ...

    async def post_message(
        self,
        user: User,
        content: str = "",
        *,
        channel: Channel | None = None,
        attachments: Sequence[tuple[str, bytes]] = (),
    ) -> Message:
        """A user writes in a channel: stored and sent to the bot as MESSAGE_CREATE."""
        channel = channel or self.channel
        message = self.new_message(channel.id, user, content=content)
        message.attachments = [self.upload(channel.id, name, blob) for name, blob in attachments]
        message.record("user")
        self.store(message)
        await self.announce("MESSAGE_CREATE", message)
        await self._notify()
        return message

    def find_command(
        self, name: str, *, guild: bool | None = None, scope: Guild | None = None
    ) -> Command:
        """The synced command ``name`` as ``scope`` (default: the first guild) offers it: its
        guild commands shadow global ones, like the client."""
        for key in (((scope or self.guild).id, name, 1), (None, name, 1)):
            if guild is False and key[0] is not None:
                continue
            if key in self.commands:
                return self.commands[key]
        synced = sorted({f"/{c.name}" for c in self.commands.values()})
        raise CommandInputError(f"/{name} was never synced; synced commands: {synced or 'none'}")

    async def invoke_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: User,
        channel: Channel | None = None,
        attachments: Sequence[bytes | tuple[str, bytes]] = (),
        check_permissions: bool = True,
    ) -> Interaction:
        """Send a slash command (``"admin quota set"`` for subcommands) as INTERACTION_CREATE."""
        top, *path = name.split()
        channel = channel or self.channel
        guild = self.guild_of(channel)
        command = self.find_command(top, scope=guild)
        values = dict(options or {})
        if attachments:
            free = [
                o["name"]
                for o in _leaf_options(command.definition, path)
                if o["type"] == 11 and o["name"] not in values
            ]
            if len(attachments) > len(free):
                raise CommandInputError(
                    f"/{name} has {len(free)} free attachment options, got {len(attachments)} files"
                )
            values.update(zip(free, attachments, strict=False))
        if check_permissions:
            self._check_command_permissions(command, user, guild)

        def upload(given: Any) -> Attachment:
            filename, blob = given if isinstance(given, tuple) else ("image.png", given)
            if not isinstance(blob, bytes):
                raise CommandInputError(
                    f"attachment options take bytes or (filename, bytes), got {given!r}"
                )
            attachment = self.upload(channel.id, filename, blob)
            self._uploads[attachment.id] = attachment
            return attachment

        # Resolved members carry permissions but not the user (that is under "users").
        resolved = Resolved(
            lambda u: (
                u.member_payload(with_user=False, roles=guild.roles_of(u))
                | {"permissions": str(guild.permissions_of(u))}
                if guild.has(u)
                else None
            )
        )
        data: dict[str, Any] = {
            "id": str(command.id),
            "name": top,
            "type": command.type,
            "options": build_options(command.definition, path, values, resolved, upload),
        }
        if command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        if resolved.payload():
            data["resolved"] = resolved.payload()
        return await self._interact(2, data, user=user, channel=channel, name=name)

    def _check_command_permissions(self, command: Command, user: User, guild: Guild) -> None:
        required = command.definition.get("default_member_permissions")
        if required is None:
            return
        have = guild.permissions_of(user)
        if int(required) & ~have:
            raise CommandInputError(
                f"Discord hides /{command.name} from {user.name}: it needs permissions "
                f"{required} (default_member_permissions) and they have {have}; "
                "pass check_permissions=False to send it anyway"
            )

    async def click(self, message: Message | int, custom_id: str, *, user: User) -> Interaction:
        """Press a button: INTERACTION_CREATE type 3 carrying the message and its components."""
        target = self._clickable(message, custom_id, kinds=(2,))
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, data, user=user, message=target, custom_id=custom_id)

    async def forge_click(
        self, message: Message | int, custom_id: str, *, user: User, shown: bool = False
    ) -> Interaction:
        """Press a button the message does not have: a click a modified client sends.

        The payload carries the message as stored; with ``shown`` its components also carry
        the forged button, as if the client had forged the whole payload.
        """
        target = self.messages.get(message if isinstance(message, int) else message.id)
        if target is None or target.deleted:
            raise CommandInputError(f"message {message!r} does not exist")
        if shown:
            forged = {"type": 2, "style": 2, "label": "forged", "custom_id": custom_id}
            target = dataclasses.replace(
                target, components=[*target.components, {"type": 1, "components": [forged]}]
            )
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, data, user=user, message=target, custom_id=custom_id)

    async def select(
        self, message: Message | int, custom_id: str, values: Sequence[str], *, user: User
    ) -> Interaction:
        """Choose values in a string select menu."""
        target = self._clickable(message, custom_id, kinds=(3,))
        node = target.component(custom_id) or {}
        offered = [str(o["value"]) for o in node.get("options", [])]
        wrong = [v for v in values if v not in offered]
        if wrong:
            raise CommandInputError(f"select {custom_id!r} offers {offered}, not {wrong}")
        low, high = int(node.get("min_values", 1)), int(node.get("max_values", 1))
        if not low <= len(values) <= high:
            raise CommandInputError(
                f"select {custom_id!r} takes {low}..{high} values, got {len(values)}"
            )
        data = {"custom_id": custom_id, "component_type": 3, "values": list(values)}
        return await self._interact(3, data, user=user, message=target, custom_id=custom_id)

    async def submit_modal(
        self, interaction: Interaction, values: Mapping[str, str], *, user: User | None = None
    ) -> Interaction:
        """Submit the modal the bot opened in answer to ``interaction``."""
        modal = interaction.modal
        if modal is None:
            raise CommandInputError(f"interaction {interaction.id} was not answered with a modal")
        if any(submit.response is not None for submit in interaction.submits):
            # Discord closes a modal once its submit is acknowledged; an unanswered one stays.
            raise CommandInputError(
                f"modal {modal['custom_id']!r} was closed: its submit was answered"
            )
        inputs = {node["custom_id"]: node for _, node in text_inputs(modal)}
        unknown = sorted(set(values) - set(inputs))
        if unknown:
            raise CommandInputError(f"modal {modal['custom_id']!r} has no input {unknown[0]!r}")
        # An input the user leaves alone is submitted with the text it was prefilled with.
        typed = {key: values.get(key, node.get("value") or "") for key, node in inputs.items()}
        for custom_id, node in inputs.items():
            problem = submit_problem(node, typed[custom_id])
            if problem is not None:
                raise CommandInputError(problem)

        def submitted(node: dict[str, Any]) -> dict[str, Any]:
            custom_id = node["custom_id"]
            return {"type": 4, "custom_id": custom_id, "value": typed.get(custom_id, "")}

        rows: list[dict[str, Any]] = []
        for row in modal.get("components", []):
            if "component" in row:  # a label (type 18) wraps exactly one input
                rows.append({"type": row["type"], "component": submitted(row["component"])})
            else:
                children = [submitted(n) for n in row.get("components", []) if n["type"] == 4]
                rows.append({"type": row.get("type", 1), "components": children})
        data = {"custom_id": modal["custom_id"], "components": rows}
        submit = await self._interact(
            5,
            data,
            user=user or interaction.user,
            message=interaction.message,
            custom_id=modal["custom_id"],
        )
        interaction.submits.append(submit)
        return submit

    def _clickable(self, message: Message | int, custom_id: str, kinds: tuple[int, ...]) -> Message:
        target = self.messages.get(message if isinstance(message, int) else message.id)
        if target is None or target.deleted:
            raise CommandInputError(
                f"message {message if isinstance(message, int) else message.id} does not exist"
            )
        node = target.component(custom_id)
        if node is None or node.get("type") not in kinds:
            have = [b.custom_id for b in target.buttons] + [s.custom_id for s in target.selects]
            raise CommandInputError(
                f"message {target.id} has no component {custom_id!r}; it has {have}"
            )
        if node.get("disabled"):
            raise CommandInputError(f"component {custom_id!r} on message {target.id} is disabled")
        return target

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user: User,
        channel: Channel | None = None,
        message: Message | None = None,
        name: str | None = None,
        custom_id: str | None = None,
    ) -> Interaction:
        channel = (
            channel
            or self.channel_by_id(message.channel_id if message else self.channel.id)
            or self.channel
        )
        loop = asyncio.get_running_loop()
        now = loop.time()
        interaction = Interaction(
            id=self.snowflake(),
            token=f"itoken.{secrets.token_urlsafe(32)}",
            type=kind,
            user=user,
            channel_id=channel.id,
            payload={},
            created_at=now,
            deadline=now + self.ack_deadline,
            name=name,
            custom_id=custom_id,
            message=message,
        )
        guild = self.guild_of(channel)
        # Like Discord, permissions are the ones in this channel (overwrites applied).
        member_permissions = str(guild.permissions_in(user, channel))
        channel_data = channel.payload() | {"permissions": member_permissions}
        payload: dict[str, Any] = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": kind,
            "token": interaction.token,
            "version": 1,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": channel_data,
            "member": self.member_payload(user, guild=guild) | {"permissions": member_permissions},
            "app_permissions": str(guild.permissions_in(self.bot_user, channel)),
            "locale": user.locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": self.attachment_size_limit,
            "data": data,
        }
        if message is not None:
            payload["message"] = self.message_payload(message)
        interaction.payload = payload
        self.interactions.append(interaction)
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        await self._notify()
        return interaction

    def interaction_by_token(self, token: str) -> Interaction | None:
        """The interaction whose webhook token this is."""
        return next((i for i in self.interactions if i.token == token), None)


def _leaf_options(definition: dict[str, Any], path: list[str]) -> list[dict[str, Any]]:
    level = definition
    for name in path:
        level = next((o for o in level.get("options") or [] if o["name"] == name), {})
    return list(level.get("options") or [])
