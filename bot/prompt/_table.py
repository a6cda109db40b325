"""Every parameter some Midjourney version (V1 to V7, niji 4 to 6) documents, and what we do.

Each parameter is one of:

- **honoured**: it does what it does on Midjourney (``--ar``, ``--seed``, ``--chaos`` ...);
- **mapped**: it goes through configuration or to the nearest value this server supports,
  with a note when the result differs from what was typed (``--v 7`` without a ``7`` alias
  paints with the default model, ``--s 1250`` is clamped to 1000, ``--style cute`` uses the
  ``styles`` table);
- **noted**: the value is checked, then ignored, with a note (``--sv``, ``--exp``, ``--video``).

A name in no version is refused with the nearest name suggested. This table is the source of
the README's parameter table (a test keeps the two in step); ``effect`` of a noted parameter is
the reason its note gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.prompt._values import Check, choice, codes, flag, image_urls, number, whole


class Treatment(StrEnum):
    """What the server does with a parameter."""

    HONOURED = "honoured"
    MAPPED = "mapped"
    NOTED = "noted"


@dataclass(frozen=True)
class Spec:
    """One parameter: its spellings, treatment, allowed values and effect here."""

    names: tuple[str, ...]
    treatment: Treatment
    range: str
    effect: str
    slot: str = ""
    check: Check | None = None
    # Several occurrences all count (`--no a --no b`); otherwise the last one wins.
    many: bool = False

    @property
    def key(self) -> str:
        return self.slot or self.names[0]


_H, _M, _N = Treatment.HONOURED, Treatment.MAPPED, Treatment.NOTED

SPECS: tuple[Spec, ...] = (
    Spec(("ar", "aspect"), _H, "W:H, whole numbers, 1:4 to 4:1", "nearest SDXL size"),
    Spec(("seed",), _H, "0..4294967295", "image i of the grid uses seed+i"),
    Spec(("sameseed",), _M, "0..4294967295", "used as `--seed`", slot="seed"),
    Spec(("no",), _H, "text, `a, b`", "negative prompt; several `--no` merge", many=True),
    Spec(("chaos", "c"), _H, "0..100", "variety between the four grid images"),
    Spec(
        ("stylize", "s"),
        _M,
        "0..1000; V3 values to 60000",
        "guidance and style suffix; above 1000: clamped to 1000",
    ),
    Spec(
        ("quality", "q"),
        _M,
        "0.25..5",
        "steps (`steps_per_quality`); other values: the nearest one offered",
    ),
    Spec(("steps",), _H, "1..100", "explicit step count"),
    Spec(("stop",), _H, "10..100", "stop at that percent of the steps"),
    Spec(("tile",), _H, "flag", "seamless tiling"),
    Spec(("raw",), _H, "flag", "no style suffix, lower guidance"),
    Spec(
        ("style",),
        _M,
        "`raw`, a `styles` name, Midjourney names and codes",
        "`raw`: as `--raw`; a `styles` name: its prompt suffix and LoRAs; others "
        "(`cute`, `4a`, `random-64`, tuner codes): ignored",
    ),
    Spec(("weird", "w"), _H, "0..3000", "per-image prompt-embedding noise"),
    Spec(("iw",), _H, "0..3", "weight of the image prompts"),
    Spec(("repeat", "r"), _H, "1..`max_repeat`", "that many jobs"),
    Spec(
        ("version", "v"),
        _M,
        "a version number, 1 to 9",
        "the `model_aliases` entry `N` (or `vN`, or the major version), else the default model",
        slot="model",
    ),
    Spec(
        ("niji",),
        _M,
        "nothing or a version number",
        "the alias `niji-N` (or `nijiN`, or `niji`), else the default model",
        slot="model",
    ),
    Spec(
        ("model",),
        _H,
        "a `model_aliases` name or `default`",
        "that model; unknown names: error listing the available ones",
    ),
    Spec(("fast",), _H, "flag", "speed mode fast", slot="mode"),
    Spec(("turbo",), _H, "flag", "speed mode turbo (highest priority)", slot="mode"),
    Spec(
        ("relax",), _H, "flag", "speed mode relax (no quota debit) when `allow_relax`", slot="mode"
    ),
    Spec(("draft",), _H, "flag", "draft mode: quick, rougher images", slot="mode"),
    Spec(
        ("lora",),
        _H,
        "`name` or `name:w`, w 0..2, at most 4",
        "add that LoRA (weight 1 when omitted)",
        many=True,
    ),
    Spec(
        ("control",),
        _H,
        "`canny` or `depth`, `:scale` 0..2",
        "ControlNet on the image prompt (scale 0.5 when omitted); needs an image",
    ),
    Spec(("notr",), _H, "flag", "no translation of non-English prompts"),
    Spec(
        ("h", "height"),
        _M,
        "whole number 1..8192",
        "V1-V3 size: with `--w`/`--width`, painted at that aspect ratio; alone, ignored",
        slot="size_h",
    ),
    Spec(
        ("width",),
        _M,
        "whole number 1..8192",
        "V1-V3 size: with `--h`, painted at that aspect ratio; alone, ignored "
        "(`--w` is `--weird` unless `--h` is given)",
        slot="size_w",
    ),
    Spec(
        ("sref",),
        _H,
        "image URLs (`<...>`); Midjourney codes, `random`",
        "style references through the IP-Adapter; codes and `random`: ignored",
        many=True,
    ),
    Spec(("sw",), _H, "0..1000", "weight of the style references (100 when omitted)"),
    Spec(
        ("sv",),
        _N,
        "1..9",
        "Midjourney's style reference versions are not available here",
        check=whole(1, 9, "4"),
    ),
    Spec(
        ("cref",),
        _H,
        "image URLs (`<...>`)",
        "character references through the IP-Adapter",
        many=True,
    ),
    Spec(("cw",), _H, "0..100", "weight of the character references (100 when omitted)"),
    Spec(
        ("oref",),
        _N,
        "an image URL",
        "omni references are not supported yet",
        check=image_urls("omni references are not supported yet"),
        many=True,
    ),
    Spec(
        ("ow",),
        _N,
        "1..1000",
        "omni weight applies to `--oref`, which is not supported yet",
        check=whole(1, 1000, "100"),
    ),
    Spec(
        ("p", "personalize", "profile"),
        _N,
        "nothing or profile codes",
        "Midjourney personalization profiles are not available here",
        check=codes("Midjourney personalization profiles are not available here"),
        many=True,
    ),
    Spec(
        ("exp",),
        _N,
        "0..100",
        "Midjourney's experimental aesthetics are not available here",
        check=whole(0, 100, "10"),
    ),
    Spec(("test",), _N, "flag", "Midjourney's test models are not available here", check=flag()),
    Spec(("testp",), _N, "flag", "Midjourney's test models are not available here", check=flag()),
    Spec(
        ("creative",),
        _N,
        "flag",
        "applies to Midjourney's test models, which are not available here",
        check=flag(),
    ),
    Spec(("beta",), _N, "flag", "Midjourney's 2022 beta model is not available here", check=flag()),
    Spec(
        ("hd",),
        _N,
        "flag",
        "the V1-V3 HD model is not available here; the size follows `--ar`",
        check=flag(),
    ),
    Spec(("uplight",), _N, "flag", "the U buttons use this server's upscaler", check=flag()),
    Spec(("upbeta",), _N, "flag", "the U buttons use this server's upscaler", check=flag()),
    Spec(("upanime",), _N, "flag", "the U buttons use this server's upscaler", check=flag()),
    Spec(
        ("video",),
        _N,
        "flag",
        "videos are not available here; this server paints images",
        check=flag(),
    ),
    Spec(
        ("motion",),
        _N,
        "`low` or `high`",
        "videos are not available here",
        check=choice("low", "high"),
    ),
    Spec(("loop",), _N, "flag", "videos are not available here", check=flag()),
    Spec(
        ("end",),
        _N,
        "an image URL",
        "videos are not available here",
        check=image_urls("videos are not available here"),
    ),
    Spec(("bs",), _N, "1, 2 or 4", "videos are not available here", check=choice("1", "2", "4")),
    Spec(("zoom",), _N, "1..2", "use Custom Zoom under an image", check=number(1.0, 2.0, "1.5")),
    Spec(("remix",), _N, "flag", "remix mode is not available here", check=flag()),
    Spec(("public",), _N, "flag", "every job is posted in its channel here", check=flag()),
    Spec(("stealth",), _N, "flag", "every job is posted in its channel here", check=flag()),
)

BY_NAME: dict[str, Spec] = {name: spec for spec in SPECS for name in spec.names}
