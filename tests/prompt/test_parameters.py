"""Each parameter of the prompt language, with its aliases, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from bot.prompt import ParserOptions, parse
from storage.contract import GenerationRequest, SpeedMode, UserSettings

OPTIONS = ParserOptions(models=frozenset({"niji", "6", "niji-6", "photo"}), max_repeat=4)


def one(text: str, **kwargs: Any) -> GenerationRequest:
    requests = parse(text, options=kwargs.pop("options", OPTIONS), **kwargs)
    assert len(requests) == 1
    return requests[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # aspect ratios: reduced, the named SDXL sizes, portrait flipped, other ratios
        ("a fox", {"aspect": "1:1", "width": 1024, "height": 1024}),
        ("a fox --ar 16:9", {"aspect": "16:9", "width": 1344, "height": 768}),
        ("a fox --aspect 32:18", {"aspect": "16:9", "width": 1344, "height": 768}),
        ("a fox --ar 4:3", {"aspect": "4:3", "width": 1152, "height": 896}),
        ("a fox --ar 3:2", {"aspect": "3:2", "width": 1216, "height": 832}),
        ("a fox --ar 21:9", {"aspect": "7:3", "width": 1536, "height": 640}),
        ("a fox --ar 2:1", {"aspect": "2:1", "width": 1408, "height": 704}),
        ("a fox --ar 3:1", {"aspect": "3:1", "width": 1728, "height": 576}),
        ("a fox --ar 9:16", {"aspect": "9:16", "width": 768, "height": 1344}),
        ("a fox --ar 2:3", {"aspect": "2:3", "width": 832, "height": 1216}),
        ("a fox --ar 1:4", {"aspect": "1:4", "width": 512, "height": 2048}),
        ("a fox --ar 4:1", {"aspect": "4:1", "width": 2048, "height": 512}),
        ("a fox --ar 5:2", {"aspect": "5:2", "width": 1600, "height": 640}),
        ("a fox --ar 10:10", {"aspect": "1:1", "width": 1024, "height": 1024}),
        # em and en dashes from phones
        ("a fox \u2014ar 16:9", {"aspect": "16:9"}),
        ("a fox \u2013ar 16:9 \u2014seed 3", {"aspect": "16:9", "seed": 3}),
        ("a fox \u2014-ar 16:9", {"aspect": "16:9"}),
        # seed
        ("a fox", {"seed": None}),
        ("a fox --seed 0", {"seed": 0}),
        ("a fox --seed 4294967295", {"seed": 4294967295}),
        # chaos, stylize, weird
        ("a fox --c 40", {"chaos": 40}),
        ("a fox --chaos 100", {"chaos": 100}),
        ("a fox --s 0", {"stylize": 0}),
        ("a fox --stylize 1000", {"stylize": 1000}),
        ("a fox --w 3000", {"weird": 3000}),
        ("a fox --weird 250", {"weird": 250}),
        # quality and steps
        ("a fox", {"quality": 1.0, "steps": 30}),
        ("a fox --q .25", {"quality": 0.25, "steps": 8}),
        ("a fox --quality 0.5", {"quality": 0.5, "steps": 15}),
        ("a fox --q 2", {"quality": 2.0, "steps": 60}),
        ("a fox --q 2.0", {"quality": 2.0, "steps": 60}),
        ("a fox --steps 12", {"quality": 1.0, "steps": 12}),
        ("a fox --q 2 --steps 100", {"quality": 2.0, "steps": 100}),
        ("a fox --stop 10", {"stop": 10}),
        # flags
        ("a fox --tile", {"tile": True}),
        ("a fox --raw", {"raw": True}),
        ("a fox --style raw", {"raw": True}),
        ("a fox --style RAW", {"raw": True}),
        # image weight
        ("https://example.com/a.png a fox --iw 2.5", {"image_weight": 2.5}),
        ("https://example.com/a.png a fox --iw 0", {"image_weight": 0.0}),
        # models
        ("a fox", {"model": None}),
        ("a fox --v 6", {"model": "6"}),
        ("a fox --version 6.0", {"model": "6"}),
        ("a fox --niji", {"model": "niji"}),
        ("a fox --niji 6", {"model": "niji-6"}),
        ("a fox --model photo", {"model": "photo"}),
        ("a fox --model PHOTO", {"model": "photo"}),
        ("a fox --model default", {"model": None}),
        # speed modes
        ("a fox", {"mode": SpeedMode.FAST}),
        ("a fox --turbo", {"mode": SpeedMode.TURBO}),
        ("a fox --relax", {"mode": SpeedMode.RELAX}),
        ("a fox --fast", {"mode": SpeedMode.FAST}),
        # negative prompt
        ("a fox", {"negative_prompt": None}),
        ("a fox --no trees", {"negative_prompt": "trees"}),
        ("a fox --no trees, snow ,  --no text", {"negative_prompt": "trees, snow, text"}),
        # case-insensitive names, any order
        ("a fox --SEED 5 --AR 2:1", {"seed": 5, "aspect": "2:1"}),
        (
            "a fox --tile --no x --seed 1 --ar 3:2 --c 5",
            {"tile": True, "negative_prompt": "x", "seed": 1, "aspect": "3:2", "chaos": 5},
        ),
    ],
)
def test_parameter(text: str, expected: dict[str, Any]) -> None:
    data = one(text).to_dict()
    assert {key: data[key] for key in expected} == {
        key: str(value) if isinstance(value, SpeedMode) else value
        for key, value in expected.items()
    }


def test_plain_prompt_has_the_contract_defaults() -> None:
    assert one("  a   red fox  ") == GenerationRequest(
        prompt="a red fox", segments=(("a red fox", 1.0),)
    )


@pytest.mark.parametrize(
    ("text", "prompt", "segments"),
    [
        ("space:: ship::2", "space ship", [["space", 1.0], ["ship", 2.0]]),
        ("space::ship", "space ship", [["space", 1.0], ["ship", 1.0]]),
        ("a:: b::2 c::-0.5", "a b", [["a", 1.0], ["b", 2.0], ["c", -0.5]]),
        ("hot dog::1.5 bun::.5", "hot dog bun", [["hot dog", 1.5], ["bun", 0.5]]),
        ("a fox::", "a fox", [["a fox", 1.0]]),
        ("a fox::3", "a fox", [["a fox", 3.0]]),
        ("a::2b", "a 2b", [["a", 1.0], ["2b", 1.0]]),
        ("a::0 b", "b", [["a", 0.0], ["b", 1.0]]),
        ("a::--ar 2:1", "a", [["a", 1.0]]),
        ("a::-1--b c", "a -1--b c", [["a", 1.0], ["-1--b c", 1.0]]),
    ],
)
def test_multi_prompt_segments(text: str, prompt: str, segments: list[list[Any]]) -> None:
    data = one(text).to_dict()
    assert (data["prompt"], data["segments"]) == (prompt, segments)


def test_no_counts_as_minus_half_in_the_weight_sum() -> None:
    assert one("a::1 b::-0.4 --no c").negative_prompt == "c"


@pytest.mark.parametrize(
    ("text", "urls", "prompt"),
    [
        ("https://example.com/a.png a fox", ["https://example.com/a.png"], "a fox"),
        (
            "<https://example.com/a> http://cdn.example.org/b.webp?x=1 a fox",
            ["https://example.com/a", "http://cdn.example.org/b.webp?x=1"],
            "a fox",
        ),
        ("a fox https://example.com/a.png", [], "a fox https://example.com/a.png"),
    ],
)
def test_image_urls_at_the_start(text: str, urls: list[str], prompt: str) -> None:
    data = one(text).to_dict()
    assert (data["image_urls"], data["prompt"]) == (urls, prompt)


@pytest.mark.parametrize(
    ("text", "prompts"),
    [
        ("a {red, blue} bird", ["a red bird", "a blue bird"]),
        ("{a, b} {1, 2}", ["a 1", "a 2", "b 1", "b 2"]),
        ("a {big {red, blue}, small} bird", ["a big red bird", "a big blue bird", "a small bird"]),
        ("a {salt\\, pepper, sugar} mix", ["a salt, pepper mix", "a sugar mix"]),
        ("a \\{literal\\} brace", ["a {literal} brace"]),
        ("a {x} b", ["a x b"]),
        ("{" * 8 + "deep" + "}" * 8, ["deep"]),
    ],
)
def test_permutations(text: str, prompts: list[str]) -> None:
    assert [request.prompt for request in parse(text, options=OPTIONS)] == prompts


def test_permutations_inside_parameter_values() -> None:
    requests = parse("a fox --ar {1:1, 16:9} --seed {1, 2}", options=OPTIONS)
    assert [(r.aspect, r.seed) for r in requests] == [
        ("1:1", 1),
        ("1:1", 2),
        ("16:9", 1),
        ("16:9", 2),
    ]


def test_repeat_multiplies_every_permutation() -> None:
    requests = parse("a {red, blue} fox --r 3", options=OPTIONS)
    assert [r.prompt for r in requests] == ["a red fox"] * 3 + ["a blue fox"] * 3


def test_sixteen_requests_are_allowed() -> None:
    options = ParserOptions(max_repeat=16)
    assert len(parse("{a, b, c, d} fox --r 4", options=options)) == 16
    assert len(parse("a fox --repeat 16", options=options)) == 16


@pytest.mark.parametrize(
    ("defaults", "text", "expected"),
    [
        (UserSettings(aspect="3:2"), "a fox", {"aspect": "3:2", "width": 1216}),
        (UserSettings(aspect="3:2"), "a fox --ar 1:1", {"aspect": "1:1", "width": 1024}),
        (UserSettings(stylize=500), "a fox", {"stylize": 500}),
        (UserSettings(stylize=500), "a fox --s 20", {"stylize": 20}),
        (UserSettings(raw=True), "a fox", {"raw": True}),
        (UserSettings(mode=SpeedMode.RELAX), "a fox", {"mode": "relax"}),
        (UserSettings(mode=SpeedMode.RELAX), "a fox --turbo", {"mode": "turbo"}),
        (UserSettings(mode=SpeedMode.TURBO), "a fox", {"mode": "turbo"}),
    ],
)
def test_user_defaults_apply_where_the_prompt_is_silent(
    defaults: UserSettings, text: str, expected: dict[str, Any]
) -> None:
    data = one(text, defaults=defaults).to_dict()
    assert {key: data[key] for key in expected} == expected


def test_configured_quality_mapping() -> None:
    options = ParserOptions(steps_per_quality={0.5: 10, 1.0: 20, 4.0: 80})
    assert one("a fox", options=options).steps == 20
    assert one("a fox --q 4", options=options).steps == 80


def test_options_from_settings() -> None:
    from imagine.settings import Settings

    settings = Settings.load(
        {
            "IMAGINE_MAX_REPEAT": "2",
            "IMAGINE_ALLOW_RELAX": "false",
            "IMAGINE_MODEL_ALIASES": '{"niji": "cagliostrolab/animagine-xl-3.1"}',
            "IMAGINE_STEPS_PER_QUALITY": '{"1": 25, "2": 50}',
        }
    )
    options = ParserOptions.from_settings(settings)
    assert options == ParserOptions(
        max_repeat=2,
        models=frozenset({"niji"}),
        allow_relax=False,
        steps_per_quality={1.0: 25, 2.0: 50},
    )
