"""``--sref`` and ``--cref`` values: reference image URLs, and the Midjourney codes we only note.

``--sref URL [URL...]`` (style) and ``--cref URL [URL...]`` (character) name images that paint
through the server's IP-Adapter. ``<...>`` around a URL (as Discord writes links) is dropped;
a ``::weight`` after one is accepted and noted, since all references of a role count equally
here. ``--sref`` also takes Midjourney's numeric style codes and ``random``, which are noted and
ignored: those styles live on Midjourney's servers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from bot.prompt._errors import PromptError
from bot.prompt._values import Parameter

STYLE_CODES_REASON = "Midjourney style codes are not available here"
_URL = re.compile(
    r"(?:<(?P<bracketed>https?://[^\s<>]+)>|(?P<bare>https?://[^\s<>]+?))"
    r"(?P<weight>::-?[0-9]+(?:\.[0-9]+)?)?",
    re.IGNORECASE,
)
_STYLE_CODE = re.compile(r"(?:[0-9]+|random)(?:::-?[0-9]+(?:\.[0-9]+)?)?", re.IGNORECASE)
_EXAMPLE = "https://example.com/ref.png"


def parse_references(parameter: Parameter) -> tuple[tuple[str, ...], list[str]]:
    """The image URLs of one ``--sref``/``--cref`` (in order, each once) and its notes."""
    codes_allowed = parameter.slot == "sref"
    if not parameter.value:
        raise PromptError(f"`{parameter.flag}` needs a value, like `{parameter.flag} {_EXAMPLE}`")
    urls: list[str] = []
    codes: list[str] = []
    weighted: list[str] = []
    for token in parameter.value.split():
        match = _URL.fullmatch(token)
        if match is not None:
            url = match["bracketed"] or match["bare"]
            _check_url(parameter, url)
            urls.append(url)
            if match["weight"]:
                weighted.append(token)
        elif codes_allowed and _STYLE_CODE.fullmatch(token):
            codes.append(token)
        elif codes_allowed:
            raise PromptError(
                f"`{parameter.flag}` takes image URLs, numeric style codes or `random`; "
                f"got `{token}`"
            )
        else:
            raise PromptError(f"`{parameter.flag}` takes image URLs; got `{token}`")
    notes = []
    if codes:
        notes.append(f"{parameter.typed} {' '.join(codes)}: {STYLE_CODES_REASON}")
    if weighted:
        notes.append(
            f"{parameter.typed} {' '.join(weighted)}: weights between references are "
            "ignored here; each counts equally"
        )
    return tuple(dict.fromkeys(urls)), notes


def _check_url(parameter: Parameter, url: str) -> None:
    try:
        hostname = urlsplit(url).hostname
    except ValueError:
        raise PromptError(f"`{parameter.flag} {url}`: not a valid image URL") from None
    if not hostname:
        raise PromptError(f"`{parameter.flag} {url}`: not a valid image URL (no host name)")
