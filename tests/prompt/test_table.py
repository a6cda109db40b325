"""Every parameter of the table in ``bot/prompt/_table.py``: what it does, and a bad value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot.prompt import ParserOptions, PromptError, parse
from bot.prompt._table import BY_NAME, SPECS, Treatment

OPTIONS = ParserOptions(
    models=frozenset({"niji", "6", "niji-6", "photo"}),
    styles={"anime": "anime style --lora anime-xl:0.7"},
)
URL = "https://example.com/a.png"
README = Path(__file__).resolve().parents[2] / "README.md"

# name -> (prompt, request fields it sets, notes). The prompt is `a fox <parameters>` unless it
# starts with a URL.
ACCEPTED: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "ar": ("--ar 16:9", {"aspect": "16:9", "width": 1344, "height": 768}, []),
    "aspect": ("--aspect 2:3", {"aspect": "2:3", "width": 832, "height": 1216}, []),
    "seed": ("--seed 42", {"seed": 42}, []),
    "sameseed": (
        "--sameseed 42",
        {"seed": 42},
        ["--sameseed 42: used as the seed; the four images still use seeds 42 to 45"],
    ),
    "no": ("--no trees, snow", {"negative_prompt": "trees, snow"}, []),
    "chaos": ("--chaos 30", {"chaos": 30}, []),
    "c": ("--c 100", {"chaos": 100}, []),
    "stylize": ("--stylize 750", {"stylize": 750}, []),
    "s": ("--s 1250", {"stylize": 1000}, ["--s 1250: clamped to 1000"]),
    "quality": ("--quality .5", {"quality": 0.5, "steps": 15}, []),
    "q": (
        "--q 4",
        {"quality": 2.0, "steps": 60},
        ["--q 4: painted at quality 2, the nearest offered"],
    ),
    "steps": ("--steps 12", {"steps": 12}, []),
    "stop": ("--stop 80", {"stop": 80}, []),
    "tile": ("--tile", {"tile": True}, []),
    "raw": ("--raw", {"raw": True}, []),
    "style": (
        "--style anime",
        {"prompt": "a fox, anime style", "loras": [["anime-xl", 0.7]], "raw": False},
        [],
    ),
    "weird": ("--weird 250", {"weird": 250}, []),
    "w": ("--w 3000", {"weird": 3000}, []),
    "iw": (f"{URL} a fox --iw 2", {"image_weight": 2.0, "image_urls": [URL]}, []),
    "repeat": ("--repeat 2", {}, []),
    "r": ("--r 3", {}, []),
    "version": ("--version 6.0", {"model": "6"}, []),
    "v": ("--v 7", {"model": None}, ["--v 7: painted with the default model"]),
    "niji": ("--niji 5", {"model": "niji"}, ["--niji 5: painted with the model `niji`"]),
    "model": ("--model photo", {"model": "photo"}, []),
    "fast": ("--fast", {"mode": "fast"}, []),
    "turbo": ("--turbo", {"mode": "turbo"}, []),
    "relax": ("--relax", {"mode": "relax"}, []),
    "draft": ("--draft", {"mode": "draft"}, []),
    "lora": (
        "--lora tiny-style --lora other:0.5",
        {"loras": [["tiny-style", 1.0], ["other", 0.5]]},
        [],
    ),
    "control": (f"{URL} a fox --control depth", {"control": {"kind": "depth", "scale": 0.5}}, []),
    "notr": ("--notr", {"translate": False}, []),
    "h": (
        "--w 768 --h 512",
        {"aspect": "3:2", "weird": 0},
        ["--w 768 --h 512: painted at --ar 3:2 (1216x832)"],
    ),
    "height": (
        "--height 640",
        {"aspect": "1:1"},
        ["--height 640: Midjourney V1-V3 sizes are ignored here; use --ar"],
    ),
    "width": (
        "--width 1024 --height 512 --ar 1:1",
        {"aspect": "1:1"},
        ["--width 1024 --height 512: ignored; --ar sets the size"],
    ),
    "sref": (
        "--sref <https://example.com/s.png> https://example.com/t.png",
        {"style_refs": ["https://example.com/s.png", "https://example.com/t.png"]},
        [],
    ),
    "sw": (
        "--sref https://example.com/s.png --sw 500",
        {"style_refs": ["https://example.com/s.png"], "style_weight": 500},
        [],
    ),
    "sv": (
        "--sv 4",
        {},
        ["--sv 4: Midjourney's style reference versions are not available here"],
    ),
    "cref": (
        "--cref https://example.com/c.png",
        {"character_refs": ["https://example.com/c.png"], "character_weight": 100},
        [],
    ),
    "cw": (
        "--cref https://example.com/c.png --cw 0",
        {"character_refs": ["https://example.com/c.png"], "character_weight": 0},
        [],
    ),
    "oref": (
        "--oref https://example.com/o.png",
        {},
        ["--oref https://example.com/o.png: omni references are not supported yet"],
    ),
    "ow": (
        "--ow 400",
        {},
        ["--ow 400: omni weight applies to `--oref`, which is not supported yet"],
    ),
    "p": ("--p", {}, ["--p: Midjourney personalization profiles are not available here"]),
    "personalize": (
        "--personalize abc123 def456",
        {},
        ["--personalize abc123 def456: Midjourney personalization profiles are not available here"],
    ),
    "profile": (
        "--profile zx9k",
        {},
        ["--profile zx9k: Midjourney personalization profiles are not available here"],
    ),
    "exp": (
        "--exp 25",
        {},
        ["--exp 25: Midjourney's experimental aesthetics are not available here"],
    ),
    "test": ("--test", {}, ["--test: Midjourney's test models are not available here"]),
    "testp": ("--testp", {}, ["--testp: Midjourney's test models are not available here"]),
    "creative": (
        "--creative",
        {},
        ["--creative: applies to Midjourney's test models, which are not available here"],
    ),
    "beta": ("--beta", {}, ["--beta: Midjourney's 2022 beta model is not available here"]),
    "hd": ("--hd", {}, ["--hd: the V1-V3 HD model is not available here; the size follows `--ar`"]),
    "uplight": ("--uplight", {}, ["--uplight: the U buttons use this server's upscaler"]),
    "upbeta": ("--upbeta", {}, ["--upbeta: the U buttons use this server's upscaler"]),
    "upanime": ("--upanime", {}, ["--upanime: the U buttons use this server's upscaler"]),
    "video": ("--video", {}, ["--video: videos are not available here; this server paints images"]),
    "motion": ("--motion high", {}, ["--motion high: videos are not available here"]),
    "loop": ("--loop", {}, ["--loop: videos are not available here"]),
    "end": (
        "--end https://example.com/e.png",
        {},
        ["--end https://example.com/e.png: videos are not available here"],
    ),
    "bs": ("--bs 2", {}, ["--bs 2: videos are not available here"]),
    "zoom": ("--zoom 1.5", {}, ["--zoom 1.5: use Custom Zoom under an image"]),
    "remix": ("--remix", {}, ["--remix: remix mode is not available here"]),
    "public": ("--public", {}, ["--public: every job is posted in its channel here"]),
    "stealth": ("--stealth", {}, ["--stealth: every job is posted in its channel here"]),
}

# name -> a bad use; the message must name the parameter.
REFUSED: dict[str, str] = {
    "ar": "--ar 5:1", "aspect": "--aspect 16x9", "seed": "--seed -1", "sameseed": "--sameseed x",
    "no": "--no ,", "chaos": "--chaos 101", "c": "--c 5.5", "stylize": "--stylize 60001",
    "s": "--s high", "quality": "--quality 6", "q": "--q max", "steps": "--steps 0",
    "stop": "--stop 5", "tile": "--tile yes", "raw": "--raw 1", "style": "--style c*te",
    "weird": "--weird 3001", "w": "--w -1", "iw": "--iw 4", "repeat": "--repeat 5", "r": "--r 0",
    "version": "--version 0", "v": "--v", "niji": "--niji six", "model": "--model nope",
    "fast": "--fast now", "turbo": "--turbo 2", "relax": "--relax x", "draft": "--draft 1",
    "lora": "--lora x:5", "control": "--control pose", "notr": "--notr x", "h": "--h 0",
    "height": "--height tall", "width": "--width 0", "sref": "--sref a*b", "sw": "--sw 1001",
    "sv": "--sv 0", "cref": "--cref 123", "cw": "--cw 101", "oref": "--oref x", "ow": "--ow 0",
    "p": "--p a*b", "personalize": "--personalize <x>", "profile": "--profile a/b",
    "exp": "--exp 101", "test": "--test x", "testp": "--testp x", "creative": "--creative x",
    "beta": "--beta x", "hd": "--hd x", "uplight": "--uplight x", "upbeta": "--upbeta x",
    "upanime": "--upanime x", "video": "--video x", "motion": "--motion fast", "loop": "--loop x",
    "end": "--end loop", "bs": "--bs 3", "zoom": "--zoom 2.5", "remix": "--remix x",
    "public": "--public x", "stealth": "--stealth x",
}  # fmt: skip


def test_the_cases_cover_every_parameter_of_the_table() -> None:
    assert set(ACCEPTED) == set(BY_NAME)
    assert set(REFUSED) == set(BY_NAME)


def _text(case: str) -> str:
    return case if case.startswith("http") else f"a fox {case}"


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_parameter(name: str) -> None:
    text, fields, notes = ACCEPTED[name]
    requests = parse(_text(text), options=OPTIONS)
    repeat = {"repeat": 2, "r": 3}.get(name, 1)
    assert len(requests) == repeat and len(set(requests)) == 1
    data = requests[0].to_dict()
    assert {key: data[key] for key in fields} == fields
    assert data["notes"] == notes
    treatment = BY_NAME[name].treatment
    # Noted parameters change nothing but the notes; honoured ones leave no note.
    if treatment is Treatment.NOTED:
        plain = parse("a fox", options=OPTIONS)[0].to_dict()
        assert {**data, "notes": []} == plain
    elif treatment is Treatment.HONOURED and name not in ("w", "h"):
        assert notes == []


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_value_names_the_parameter(name: str) -> None:
    with pytest.raises(PromptError) as caught:
        parse(_text(REFUSED[name]), options=OPTIONS)
    message = str(caught.value)
    assert f"`--{name}" in message or f"the weight in `--{name}" in message, message
    assert "\n" not in message


def test_the_readme_table_lists_every_parameter() -> None:
    text = README.read_text()
    table = text[text.index("| parameter | range | default | here |") :]
    table = table[: table.index("\n\n")]
    rows = [line for line in table.splitlines() if line.startswith("| `--")]
    listed = {name for row in rows for name in re.findall(r"`--([a-z]+)", row.split(" | ")[0])}
    assert listed == set(BY_NAME)
    treatments = {spec.names[0]: spec.treatment for spec in SPECS}
    for row in rows:
        first = re.findall(r"`--([a-z]+)", row.split(" | ")[0])[0]
        assert str(treatments[BY_NAME[first].names[0]]) in row, row
