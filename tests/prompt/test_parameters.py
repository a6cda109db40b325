"""Each parameter of the prompt language, with its aliases, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from bot.prompt import ParserOptions, parse, render
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # dashes from phones and Chinese keyboards
        ("a fox \u2014\u2014ar 16:9 \u2014\u2014seed 3", {"aspect": "16:9", "seed": 3}),
        ("a fox \uff0d\uff0dar 2:1", {"aspect": "2:1"}),
        ("a fox \u2013-tile", {"tile": True}),
        # a parameter typed right after the text, in Chinese, Japanese and English
        ("一只猫，--ar 16:9 --seed 3", {"prompt": "一只猫，", "aspect": "16:9", "seed": 3}),
        ("夕焼けの猫。--tile", {"prompt": "夕焼けの猫。", "tile": True}),
        ("猫，\u2014ar 2:1", {"prompt": "猫，", "aspect": "2:1"}),
        ("a fox,--ar 16:9", {"prompt": "a fox,", "aspect": "16:9"}),
        ("a fox.--seed 7", {"prompt": "a fox.", "seed": 7}),
        ("a fox--ar 2:1", {"prompt": "a fox", "aspect": "2:1"}),
        ("a fox (--ar 16:9)", {"prompt": "a fox", "aspect": "16:9"}),
        # ...but not a dash in English prose, a URL or a word
        ("a quiet street\u2014no people", {"prompt": "a quiet street\u2014no people"}),
        ("well--known foxes", {"prompt": "well--known foxes"}),
        (
            "https://x.example/fox--v.png a fox",
            {"prompt": "a fox", "image_urls": ["https://x.example/fox--v.png"]},
        ),
        # colons and spaces in ratios
        ("a fox --ar 16\uff1a9", {"aspect": "16:9"}),
        ("a fox --ar 16 : 9", {"aspect": "16:9"}),
        # punctuation right after a value or a flag
        ("a fox --ar 16:9, --s 250.", {"aspect": "16:9", "stylize": 250}),
        ("a fox --tile. --seed 7;", {"tile": True, "seed": 7}),
        ("a fox --q 2.", {"quality": 2.0}),
        ('"a fox --chaos 5"', {"prompt": '"a fox', "chaos": 5}),
        # a dangling `--` at the end
        ("a fox --ar 3:2 --", {"aspect": "3:2"}),
        # lists for --no, with Chinese and Japanese separators too
        ("a fox --no a, b, c", {"negative_prompt": "a, b, c"}),
        (
            "a fox --no \u6587\u5b57\uff0c\u6c34\u5370\u3001\u4eba",
            {"negative_prompt": "文字, 水印, 人"},
        ),
        # the command copied along from Discord
        ("/imagine prompt: a fox --ar 2:1", {"prompt": "a fox", "aspect": "2:1"}),
        ("/IMAGINE a fox", {"prompt": "a fox"}),
        # prompt text after a parameter, behind `::`
        (
            "https://x.example/a.png --iw 0.75 :: text :: more text",
            {
                "prompt": "text more text",
                "segments": [["text", 1.0], ["more text", 1.0]],
                "image_urls": ["https://x.example/a.png"],
                "image_weight": 0.75,
            },
        ),
        (
            "<https://x.example/a.png> --iw 2:: a cat",
            {"prompt": "a cat", "image_urls": ["https://x.example/a.png"], "image_weight": 2.0},
        ),
        (
            "a dog --ar 2:1 :: a cat::2",
            {
                "prompt": "a dog a cat",
                "segments": [["a dog", 1.0], ["a cat", 2.0]],
                "aspect": "2:1",
            },
        ),
        # `--sref URL::2` keeps its weight inside the value
        (
            "a fox --sref https://x.example/s.png::2 --seed 1",
            {"prompt": "a fox", "seed": 1, "style_refs": ["https://x.example/s.png"]},
        ),
    ],
)
def test_loose_syntax(text: str, expected: dict[str, Any]) -> None:
    data = one(text).to_dict()
    assert {key: data[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("text", "expected", "notes"),
    [
        (
            "a fox --ar 1:1 --ar 2:1",
            {"aspect": "2:1"},
            ["--ar 1:1: replaced by the later --ar 2:1"],
        ),
        ("a fox --c 1 --chaos 2", {"chaos": 2}, ["--c 1: replaced by the later --chaos 2"]),
        ("a fox --fast --fast", {"mode": "fast"}, ["--fast: given twice"]),
        ("a fox --turbo --relax", {"mode": "relax"}, ["--turbo: replaced by the later --relax"]),
        ("a fox --v 6 --niji", {"model": "niji"}, ["--v 6: replaced by the later --niji"]),
        ("a fox --raw --style raw", {"raw": True}, []),
        (
            "a fox --lora a:0.5 --lora a",
            {"loras": [["a", 1.0]]},
            ["--lora a:0.5: replaced by the later --lora a"],
        ),
        ("a fox --SEED 1 --Seed 2", {"seed": 2}, ["--SEED 1: replaced by the later --Seed 2"]),
        ("a fox --no x --no x", {"negative_prompt": "x, x"}, []),
    ],
)
def test_duplicated_parameters_keep_the_last_with_a_note(
    text: str, expected: dict[str, Any], notes: list[str]
) -> None:
    data = one(text).to_dict()
    assert {key: data[key] for key in expected} == expected
    assert data["notes"] == notes


@pytest.mark.parametrize(
    ("aliases", "text", "model", "notes"),
    [
        ({"7"}, "a fox --v 7", "7", []),
        ({"v7"}, "a fox --version 7.0", "v7", []),
        ({"6"}, "a fox --v 6.1", "6", ["--v 6.1: painted with the model `6`"]),
        ({"6.1", "6"}, "a fox --v 6.1", "6.1", []),
        ({"niji"}, "a fox --niji 6", "niji", ["--niji 6: painted with the model `niji`"]),
        ({"niji6"}, "a fox --niji 6", "niji6", []),
        (set(), "a fox --niji", None, ["--niji: painted with the default model"]),
        (set(), "a fox --v 5.2", None, ["--v 5.2: painted with the default model"]),
        ({"photo"}, "a fox --v photo", "photo", []),
        (set(), "a fox --v default", None, []),
    ],
)
def test_versions_map_through_model_aliases(
    aliases: set[str], text: str, model: str | None, notes: list[str]
) -> None:
    request = one(text, options=ParserOptions(models=frozenset(aliases)))
    assert (request.model, list(request.notes)) == (model, notes)


def test_styles_add_their_suffix_to_each_positive_segment_and_their_loras() -> None:
    options = ParserOptions(
        styles={"Ink": "ink wash, sumi-e --lora ink-xl:0.6", "soft": "soft light"}
    )
    request = one("a crane::2 a pond:: fog::-0.5 --style ink --lora ink-xl:0.9", options=options)
    assert request.segments == (
        ("a crane, ink wash, sumi-e", 2.0),
        ("a pond, ink wash, sumi-e", 1.0),
        ("fog", -0.5),
    )
    # The prompt's own `--lora` wins over the style's for the same name.
    assert request.loras == (("ink-xl", 0.9),)
    noted = one("a fox --style cute", options=options)
    assert noted.notes == ("--style cute: no such style here (available: raw, ink, soft)",)
    assert one("a fox --style 1mZxQw7SxQN", options=options).notes == (
        "--style 1mZxQw7SxQN: Midjourney style codes are not available here",
    )


def test_control_with_an_attached_image() -> None:
    request = one("a house --control canny:1.5", image_attached=True)
    assert request.to_dict()["control"] == {"kind": "canny", "scale": 1.5}


@pytest.mark.parametrize(
    ("text", "expected", "notes"),
    [
        (
            "a fox --sref https://x.example/a.png <https://x.example/b.png> --sw 250",
            {
                "style_refs": ["https://x.example/a.png", "https://x.example/b.png"],
                "style_weight": 250,
                "character_refs": [],
            },
            [],
        ),
        # Several --sref (and a repeated URL) gather into one list, each URL once.
        (
            "a fox --sref https://x.example/a.png --sref https://x.example/b.png "
            "https://x.example/a.png",
            {"style_refs": ["https://x.example/a.png", "https://x.example/b.png"]},
            [],
        ),
        (
            "a fox --cref https://x.example/c.png --cw 40",
            {"character_refs": ["https://x.example/c.png"], "character_weight": 40},
            [],
        ),
        # Midjourney's style codes and `random` are noted; the URLs beside them still count.
        (
            "a fox --sref 277118899 https://x.example/a.png random",
            {"style_refs": ["https://x.example/a.png"]},
            ["--sref 277118899 random: Midjourney style codes are not available here"],
        ),
        (
            "a fox --sref random --sw 300",
            {"style_refs": [], "style_weight": 100},
            [
                "--sref random: Midjourney style codes are not available here",
                "--sw 300: ignored; there is no style reference image (--sref URL)",
            ],
        ),
        (
            "a fox --cw 20",
            {"character_refs": [], "character_weight": 100},
            ["--cw 20: ignored; there is no character reference image (--cref URL)"],
        ),
        (
            "a fox --iw .5",
            {"image_weight": 1.0},
            [
                "--iw .5: ignored; there is no image prompt (an image URL at the start of the "
                "prompt, or an attached image)"
            ],
        ),
        ("https://x.example/a.png a fox --iw .5", {"image_weight": 0.5}, []),
        (
            "a fox --sref https://x.example/a.png::2 https://x.example/b.png::1",
            {"style_refs": ["https://x.example/a.png", "https://x.example/b.png"]},
            [
                "--sref https://x.example/a.png::2 https://x.example/b.png::1: weights between "
                "references are ignored here; each counts equally"
            ],
        ),
        # Both paint together, each with its own weight.
        (
            "a fox --sref https://x.example/s.png --sw 500 --cref https://x.example/c.png",
            {
                "style_refs": ["https://x.example/s.png"],
                "style_weight": 500,
                "character_refs": ["https://x.example/c.png"],
                "character_weight": 100,
            },
            [],
        ),
    ],
)
def test_style_and_character_references(
    text: str, expected: dict[str, Any], notes: list[str]
) -> None:
    data = one(text).to_dict()
    assert {key: data[key] for key in expected} == expected
    assert data["notes"] == notes


def test_references_render_back_to_the_same_request() -> None:
    request = one(
        "a fox --cref https://x.example/c.png --cw 40 --sref https://x.example/s.png --seed 3"
    )
    assert render(request) == (
        "a fox --seed 3 --sref https://x.example/s.png --cref https://x.example/c.png --cw 40"
    )
    assert parse(render(request)) == [request]
    styled = one("a fox --sref <https://x.example/s.png> --sw 250")
    assert render(styled) == "a fox --sref https://x.example/s.png --sw 250"
    assert parse(render(styled)) == [styled]
