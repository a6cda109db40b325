"""The editor's pages: the editor (GET), its image (GET) and the submit (POST).

Opening the page only checks the link, so a chat client fetching it for a preview cannot use
it up; the submit does. Before anything is stored the submit checks, in order: the link
(signature, purpose, expiry, the image it is bound to), that the form came from the page (same
origin, the page's CSRF token in the form and in its SameSite=Strict cookie), that the link was
not used, who may edit the image, the prompt, and the mask (size in bytes, PNG, the image's
dimensions, something painted). Then the link is used up, the mask stored, and the job queued
and posted like a button's. A refusal is a page that says why, and changes nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import UTC, datetime

from aiohttp import BodyPartReader, web

from bot.edit_jobs import MessagePoster, check_clicker, queue_edit, source_image
from bot.edits import edited_request, prompt_for_editing
from bot.errors import UserFacingError, message_for
from bot.jobs import Origin
from bot.moderation import banned_refusal
from bot.prompt import MAX_PROMPT_CHARS, PromptError
from bot.services import Services
from bot.web.region._links import PURPOSE, EditorTarget, csrf_token, job_key
from bot.web.region._mask import MAX_MASK_BYTES, MaskRefused, clean_mask
from bot.web.region._pages import HEADERS, STATIC, message, page
from bot.web.server import WebServer
from bot.web.signing import LinkRefused, SignedLink
from storage.contract import ImageRecord, Job
from storage.edits import region
from storage.errors import JobNotFound, StorageError
from storage.weblinks import WebLogins

log = logging.getLogger(__name__)

COOKIE = "imagine_region"
MAX_FIELD_BYTES = 16 * 1024
_FIELDS = {"t": MAX_FIELD_BYTES, "csrf": MAX_FIELD_BYTES, "prompt": MAX_FIELD_BYTES}
NEW_LINK = "Click Vary (Region) under the image again for a new link."


class Refused(Exception):
    """A request the editor turns down with a page (``status``, and why)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class RegionEditor:
    """The editor's routes on one web server."""

    def __init__(self, server: WebServer, client: MessagePoster, services: Services) -> None:
        self.server = server
        self.client = client
        self.services = services
        self.logins = WebLogins(services.db)

    def register(self) -> None:
        """Add the routes and the page's static files."""
        router = self.server.app.router
        router.add_get("/edit/region/{job}/{index}", self.editor)
        router.add_post("/edit/region/{job}/{index}", self.submit)
        router.add_get("/edit/region/{job}/{index}/image", self.image)
        router.add_static("/edit/static", STATIC)

    # -- pages ---------------------------------------------------------------------------------

    async def editor(self, request: web.Request) -> web.StreamResponse:
        """The editor for a valid, unused link."""
        token = request.query.get("t", "")
        try:
            link, target = self._link(request, token)
            await self._unused(link)
            parent, source = await self._image_of(link, target)
        except Refused as exc:
            return message("This link cannot be used", str(exc), status=exc.status)
        csrf = csrf_token(self.server.config.secret, link.nonce)
        response = page(
            "editor.html",
            number=target.index + 1,
            expires=f"{link.expires_at:%H:%M} UTC",
            image=f"{target.path}/image?t={token}",
            width=source.width,
            height=source.height,
            action=target.path,
            token=token,
            csrf=csrf,
            max_prompt=MAX_PROMPT_CHARS,
            prompt=prompt_for_editing(parent.request, self.services.parser),
        )
        response.set_cookie(
            COOKIE,
            csrf,
            max_age=max(1, int((link.expires_at - datetime.now(UTC)).total_seconds())),
            path="/edit/region",
            httponly=True,
            samesite="Strict",
            secure=self.server.secure_cookies,
        )
        return response

    async def image(self, request: web.Request) -> web.StreamResponse:
        """The image being edited, for the page (only with its link)."""
        try:
            link, target = self._link(request, request.query.get("t", ""))
            _, source = await self._image_of(link, target)
        except Refused as exc:
            return message("This link cannot be used", str(exc), status=exc.status)
        data = await self.services.images.get(source.sha256)
        return web.Response(body=data, content_type=_image_type(data), headers=HEADERS)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        """Queue the region edit the form describes, or say why not."""
        try:
            job = await self._submit(request)
        except Refused as exc:
            return message("Nothing was queued", str(exc), status=exc.status)
        return message(
            "Queued",
            f"Queued job #{job.id}: its message is in the channel, and the new grid appears "
            "there when it is painted. You can close this page.",
        )

    # -- the submit ----------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> Job:
        fields, mask = await _read_form(request)
        token = fields.get("t", "")
        link, target = self._link(request, token)
        self._same_page(request, link, fields.get("csrf", ""))
        await self._unused(link)
        parent, source = await self._image_of(link, target)
        services = self.services
        text = fields.get("prompt", "")
        try:
            defaults = await services.users.get_settings(link.user_id)
            edited, _ = edited_request(text, options=services.parser, defaults=defaults)
            # Checked as /imagine checks: permutations join words the typed text keeps apart.
            banned = services.banned.find_in_command(text, [edited])
            if banned is not None:
                raise UserFacingError(banned_refusal(banned))
        except (PromptError, UserFacingError) as exc:
            raise Refused(400, f"{message_for(exc)} Change it and submit again.") from None
        try:
            cleaned = await asyncio.to_thread(clean_mask, mask, (source.width, source.height))
        except MaskRefused as exc:
            raise Refused(400, str(exc)) from None
        try:
            await self.server.signer.redeem(token, self.logins, purpose=PURPOSE)
        except LinkRefused as exc:
            raise Refused(410, f"{exc} {NEW_LINK}") from None
        stored = await services.images.put(cleaned, ".png")
        edit = region(source.sha256, (source.width, source.height), stored.sha256)
        origin = Origin(link.user_id, job_key(link.nonce), target.guild_id, target.channel_id)
        try:
            return await queue_edit(
                self.client, services, origin, parent, source, edit, request=edited
            )
        except (StorageError, UserFacingError) as exc:
            raise Refused(400, f"{message_for(exc)} This link is used up. {NEW_LINK}") from None

    def _link(self, request: web.Request, token: str) -> tuple[SignedLink, EditorTarget]:
        """The link behind ``token``, bound to the image this address names."""
        try:
            link = self.server.signer.verify(token, purpose=PURPOSE)
            target = EditorTarget.parse(link.subject)
        except LinkRefused as exc:
            raise Refused(403, f"{exc} {NEW_LINK}") from None
        named = (request.match_info.get("job"), request.match_info.get("index"))
        if named != (str(target.job_id), str(target.index)):
            raise Refused(403, f"This link was made for another image. {NEW_LINK}")
        return link, target

    async def _unused(self, link: SignedLink) -> None:
        jobs = await self.services.queue.interaction_jobs(job_key(link.nonce))
        if jobs:
            raise Refused(410, f"This link was already used: it queued job #{jobs[0].id}.")

    async def _image_of(self, link: SignedLink, target: EditorTarget) -> tuple[Job, ImageRecord]:
        try:
            parent = await self.services.queue.get(target.job_id)
            check_clicker(link.user_id, self.services, parent)
            return parent, await source_image(self.services, parent, target.index)
        except JobNotFound:
            raise Refused(404, f"Job #{target.job_id} does not exist.") from None
        except UserFacingError as exc:
            raise Refused(403, str(exc)) from None

    def _same_page(self, request: web.Request, link: SignedLink, csrf: str) -> None:
        """Refuse a form that did not come from this link's page on this server."""
        origin = self.server.foreign_origin(request)
        if origin is not None:
            raise Refused(403, f"This form was sent from {origin}, not from the editor.")
        expected = csrf_token(self.server.config.secret, link.nonce)
        cookie = request.cookies.get(COOKIE, "")
        if not (hmac.compare_digest(csrf, expected) and hmac.compare_digest(cookie, expected)):
            raise Refused(403, f"This form is stale or was not sent by the editor. {NEW_LINK}")


async def _read_form(request: web.Request) -> tuple[dict[str, str], bytes]:
    """The form's text fields and the mask file, each read no further than its limit."""
    if request.content_type != "multipart/form-data":
        raise Refused(400, "The form must be sent as multipart/form-data with a mask file.")
    fields: dict[str, str] = {}
    mask = b""
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        limit = MAX_MASK_BYTES if part.name == "mask" else _FIELDS.get(part.name)
        if limit is None:
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > limit:
                what = "mask" if part.name == "mask" else f"field {part.name!r}"
                raise Refused(413, f"The {what} is larger than {limit:,} bytes.")
        if part.name == "mask":
            mask = bytes(data)
        else:
            fields[part.name] = data.decode("utf-8", errors="replace")
    if not mask:
        raise Refused(400, "The form has no mask: paint over the part of the image to change.")
    return fields, mask


def _image_type(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"
