"""Bad prompts: one clear line naming what was wrong and what is allowed."""

from __future__ import annotations

import pytest

from bot.prompt import ParserOptions, PromptError, parse
from storage.contract import SpeedMode, UserSettings

OPTIONS = ParserOptions(models=frozenset({"niji", "6"}), max_repeat=4, allow_relax=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the prompt is empty: describe what to imagine"),
        ("   ", "the prompt is empty: describe what to imagine"),
        ("--ar 16:9", "the prompt is empty: describe what to imagine before the parameters"),
        (
            "https://example.com/a.png",
            "the prompt has only image URLs: add text describing what to imagine after them",
        ),
        ("a" * 1501, "the prompt is 1,501 characters long; the limit is 1,500"),
        ("a fox --ratio 2:1", "`--ratio` is not a known parameter; did you mean `--ar`?"),
        ("a fox --stylise 5", "`--stylise` is not a known parameter; did you mean `--stylize`?"),
        ("a fox --ar16:9", "`--ar16:9` is not a known parameter; did you mean `--ar 16:9`?"),
        ("a fox --zzzz", "`--zzzz` is not a known parameter; see the list with /help"),
        ("a fox --ar", "`--ar` needs a value, like `--ar 16:9`"),
        ("a fox --seed --tile", "`--seed` needs a value, like `--seed 1234`"),
        ("a fox --no", "`--no` needs a value, like `--no text, watermark`"),
        ("a fox --no , ,", "`--no` needs a value, like `--no text, watermark`"),
        ("a fox --ar 16x9", "`--ar` expects two whole numbers like `16:9` or `2:3`; got `16x9`"),
        ("a fox --ar 0:1", "`--ar` expects two whole numbers like `16:9` or `2:3`; got `0:1`"),
        ("a fox --ar 1.5:1", "`--ar` expects two whole numbers like `16:9` or `2:3`; got `1.5:1`"),
        ("a fox --ar 9:2", "`--ar 9:2` is too extreme; allowed ratios range from 1:4 to 4:1"),
        ("a fox --ar 1:5", "`--ar 1:5` is too extreme; allowed ratios range from 1:4 to 4:1"),
        ("a cat --ar 5:1", "`--ar 5:1` is too extreme; allowed ratios range from 1:4 to 4:1"),
        (
            "a fox --aspect 1:10",
            "`--aspect 1:10` is too extreme; allowed ratios range from 1:4 to 4:1",
        ),
        (
            "a fox --seed 4294967296",
            "`--seed` must be a whole number from 0 to 4294967295; got `4294967296`",
        ),
        ("a fox --seed -1", "`--seed` must be a whole number from 0 to 4294967295; got `-1`"),
        ("a fox --c 101", "`--c` must be a whole number from 0 to 100; got `101`"),
        ("a fox --chaos 5.5", "`--chaos` must be a whole number from 0 to 100; got `5.5`"),
        (
            "a fox --s 60001",
            "`--s` must be a whole number from 0 to 1000 (Midjourney V3 values up to 60000 are "
            "clamped to 1000); got `60001`",
        ),
        (
            "a fox --stylize -5",
            "`--stylize` must be a whole number from 0 to 1000 (Midjourney V3 values up to "
            "60000 are clamped to 1000); got `-5`",
        ),
        ("a fox --weird 3001", "`--weird` must be a whole number from 0 to 3000; got `3001`"),
        ("a fox --steps 0", "`--steps` must be a whole number from 1 to 100; got `0`"),
        ("a fox --steps 101", "`--steps` must be a whole number from 1 to 100; got `101`"),
        ("a fox --stop 9", "`--stop` must be a whole number from 10 to 100; got `9`"),
        ("a fox --iw 3.5", "`--iw` must be a number from 0 to 3; got `3.5`"),
        ("a fox --iw high", "`--iw` must be a number from 0 to 3; got `high`"),
        (
            "a fox --q 6",
            "`--q` must be a number from 0.25 to 5 (this server offers 0.25, 0.5, 1, 2); got `6`",
        ),
        (
            "a fox --q .1",
            "`--q` must be a number from 0.25 to 5 (this server offers 0.25, 0.5, 1, 2); got `.1`",
        ),
        (
            "a fox --quality max",
            "`--quality` must be a number from 0.25 to 5 (this server offers 0.25, 0.5, 1, 2); "
            "got `max`",
        ),
        ("a fox --r 5", "`--r` must be a whole number from 1 to 4; got `5`"),
        ("a fox --repeat 0", "`--repeat` must be a whole number from 1 to 4; got `0`"),
        (
            "a fox --seed 7 8",
            "`--seed` takes one value; got `7 8` (the prompt text goes before the parameters)",
        ),
        (
            "a fox --tile cat",
            "`--tile` takes no value; got `cat` (the prompt text goes before the parameters)",
        ),
        (
            "a fox --style c*te",
            "`--style` takes a style name like `raw` or a style code; got `c*te`",
        ),
        ("a fox --relax", "`--relax` is not available on this server; use `--fast`"),
        (
            "a fox --model sd15",
            "`--model sd15`: model `sd15` is not available on this server; "
            "available: default, 6, niji",
        ),
        (
            "a fox --v photo",
            "`--v photo`: model `photo` is not available on this server; "
            "available: default, 6, niji",
        ),
        (
            "a fox --v 0",
            "`--v` must be a Midjourney version from 1 to 9, like `6.1` or `7`; got `0`",
        ),
        (
            "a fox --version 12",
            "`--version` must be a Midjourney version from 1 to 9, like `6.1` or `7`; got `12`",
        ),
        ("a fox --niji six", "`--niji` takes nothing or a version number like `6`; got `six`"),
        # A duplicate's value is still checked, though the last one wins.
        (
            "a fox --ar 9:1 --ar 2:1",
            "`--ar 9:1` is too extreme; allowed ratios range from 1:4 to 4:1",
        ),
        ("a fox --cref x", "`--cref` takes image URLs; got `x`"),
        ("a fox --oref x", "`--oref` takes image URLs; got `x`"),
        (
            "a fox --sref a*b",
            "`--sref` takes image URLs, numeric style codes or `random`; got `a*b`",
        ),
        (
            "a fox --sref notaurl",
            "`--sref` takes image URLs, numeric style codes or `random`; got `notaurl`",
        ),
        (
            "a fox --sref https://example.com/a.png style",
            "`--sref` takes image URLs, numeric style codes or `random`; got `style`",
        ),
        ("a fox --sref", "`--sref` needs a value, like `--sref https://example.com/ref.png`"),
        ("a fox --cref", "`--cref` needs a value, like `--cref https://example.com/ref.png`"),
        ("a fox --cref 123", "`--cref` takes image URLs; got `123`"),
        (
            "a fox --cref ftp://example.com/a.png",
            "`--cref` takes image URLs; got `ftp://example.com/a.png`",
        ),
        (
            "a fox --sref https://:80/a.png",
            "`--sref https://:80/a.png`: not a valid image URL (no host name)",
        ),
        ("a fox --sw 1001", "`--sw` must be a whole number from 0 to 1000; got `1001`"),
        ("a fox --sw 2000", "`--sw` must be a whole number from 0 to 1000; got `2000`"),
        ("a fox --sw", "`--sw` needs a value, like `--sw 250`"),
        ("a fox --cw 101", "`--cw` must be a whole number from 0 to 100; got `101`"),
        ("a fox --cw -1", "`--cw` must be a whole number from 0 to 100; got `-1`"),
        ("a fox --cw 50.5", "`--cw` must be a whole number from 0 to 100; got `50.5`"),
        ("a fox --ow 0", "`--ow` must be a whole number from 1 to 1000; got `0`"),
        ("a fox --exp 101", "`--exp` must be a whole number from 0 to 100; got `101`"),
        ("a fox --zoom 3", "`--zoom` must be a number from 1 to 2; got `3`"),
        ("a fox --motion fast", "`--motion` must be one of `low`, `high`; got `fast`"),
        ("a fox --bs 3", "`--bs` must be one of `1`, `2`, `4`; got `3`"),
        (
            "a fox --video cat",
            "`--video` takes no value; got `cat` (the prompt text goes before the parameters)",
        ),
        (
            "a fox --p https://x.y/z",
            "`--p` takes profile codes like `--p abc123`, or nothing; got `https://x.y/z`",
        ),
        (
            "a fox --lora",
            "`--lora` needs a value, like `--lora name:0.8`",
        ),
        (
            "a fox --lora a:b:c",
            "the weight in `--lora a:b:c` must be a number from 0 to 2; got `b:c`",
        ),
        (
            "a fox --lora x:2.5",
            "the weight in `--lora x:2.5` must be a number from 0 to 2; got `2.5`",
        ),
        (
            "a fox --lora :1",
            "`--lora` takes a LoRA name with an optional weight, like `--lora name` or "
            "`--lora name:0.8`; got `:1`",
        ),
        (
            "a fox --lora a --lora b --lora c --lora d --lora e",
            "this prompt asks for 5 LoRAs (`--lora` and `--style` together); at most 4",
        ),
        (
            "a fox --control canny",
            "`--control canny` needs an image: put an image URL at the start of the prompt or "
            "attach an image",
        ),
        (
            "https://x.y/a.png a fox --control pose",
            "`--control` must be `canny` or `depth`, optionally with a scale like `canny:0.8`; "
            "got `pose`",
        ),
        (
            "https://x.y/a.png a fox --control depth:3",
            "the scale in `--control depth:3` must be a number from 0 to 2; got `3`",
        ),
        (
            "https://x.y/a.png a fox --control depth:",
            "the scale in `--control depth:` must be a number from 0 to 2; got ``",
        ),
        (
            "a fox --notr please",
            "`--notr` takes no value; got `please` (the prompt text goes before the parameters)",
        ),
        (
            "a fox --w 4096 --h 512",
            "`--w 4096 --h 512` is too extreme an aspect ratio; allowed ratios range from 1:4 "
            "to 4:1",
        ),
        ("a fox --h 0", "`--h` must be a whole number from 1 to 8192; got `0`"),
        ("a fox --visibility", "`--visibility` is not a known parameter; see the list with /help"),
        ("a fox --sref123", "`--sref123` is not a known parameter; did you mean `--sref 123`?"),
        ("a fox --niji6", "`--niji6` is not a known parameter; did you mean `--niji 6`?"),
        ("a fox --styl raw", "`--styl` is not a known parameter; did you mean `--style`?"),
        (
            "a {red, blue bird",
            "unbalanced `{`: a permutation like `{red, blue}` is missing its closing `}`",
        ),
        (
            "a red} bird",
            "unbalanced `}`: it has no opening `{` (write `\\}` for a literal brace)",
        ),
        (
            "{a, b, c, d, e} {1, 2, 3, 4}",
            "this prompt makes 20 permutations; the limit is 16 requests per command",
        ),
        (
            "{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}",
            "this prompt makes 65,536 permutations; the limit is 16 requests per command",
        ),
        (
            "{a, b, c, d, e, f} fox --r 3",
            "this prompt makes 18 requests (6 permutations with their repeats); "
            "the limit is 16 per command",
        ),
        ("{" * 9 + "a" + "}" * 9, "permutations nest more than 8 levels deep; use fewer `{`"),
        ("{" * 700 + "a" + "}" * 700, "permutations nest more than 8 levels deep; use fewer `{`"),
        ("a::-2 b", "the `::` weights add up to -1; their sum must be positive"),
        ("a::1 b::-1", "the `::` weights add up to 0; their sum must be positive"),
        (
            "a::1 b::-0.6 --no c",
            "the `::` weights add up to -0.1 (`--no` counts as -0.5); their sum must be positive",
        ),
        ("::2 ship", "`::2` needs text before it, like `space::2 ship`"),
        ("a:: ::", "`::` needs text before it, like `space:: ship`"),
        ("a::2000 b", "the weight `::2000` is out of range; weights go from -1000 to 1000"),
        (
            "ftp://example.com/a.png a fox",
            "image URLs must start with http:// or https://; got `ftp://example.com/a.png`",
        ),
        ("https://\uff1a/a.png a fox", "`https://\uff1a/a.png` is not a valid image URL"),
        (
            "https://:80/a.png a fox",
            "`https://:80/a.png` is not a valid image URL: it has no host name",
        ),
    ],
)
def test_error_message(text: str, message: str) -> None:
    with pytest.raises(PromptError) as caught:
        parse(text, options=OPTIONS)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


STRICT = ParserOptions(models=frozenset({"niji", "6"}), strict_models=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a fox --v 7",
            "`--v 7`: model `7` is not available on this server; available: default, 6, niji",
        ),
        (
            "a fox --niji 5",
            "`--niji 5`: model `niji-5` is not available on this server; "
            "available: default, 6, niji",
        ),
        (
            "a fox --v 6.1",
            "`--v 6.1`: model `6.1` is not available on this server; available: default, 6, niji",
        ),
    ],
)
def test_strict_models_refuses_versions_without_an_alias(text: str, message: str) -> None:
    with pytest.raises(PromptError) as caught:
        parse(text, options=STRICT)
    assert str(caught.value) == message
    assert parse("a fox --v 6 --niji", options=STRICT)[0].model == "niji"


def test_prompt_of_exactly_the_limit_is_accepted() -> None:
    assert parse("a" * 1500)[0].prompt == "a" * 1500


def test_relax_from_user_settings_on_a_server_without_relax() -> None:
    with pytest.raises(PromptError) as caught:
        parse("a fox", options=OPTIONS, defaults=UserSettings(mode=SpeedMode.RELAX))
    assert str(caught.value) == (
        "your /settings speed mode is relax, which this server does not offer; "
        "change it in /settings or add `--fast`"
    )
    # An explicit mode in the prompt wins over the setting.
    fast = parse("a fox --fast", options=OPTIONS, defaults=UserSettings(mode=SpeedMode.RELAX))
    assert fast[0].mode is SpeedMode.FAST


def test_invalid_aspect_in_user_settings() -> None:
    with pytest.raises(PromptError, match=r"your /settings aspect ratio `9:1` is no longer valid"):
        parse("a fox", defaults=UserSettings(aspect="9:1"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_repeat": 0},
        {"max_repeat": 17},
        {"steps_per_quality": {0.5: 15}},
        {"steps_per_quality": {1.0: 0}},
        {"steps_per_quality": {1.0: 30, -1.0: 5}},
        {"styles": {"raw": "plain"}},
        {"styles": {"two words": "x"}},
        {"styles": {"empty": "  "}},
        {"styles": {"cute": "kawaii --seed 3"}},
        {"styles": {"cute": "kawaii --lora a:9"}},
        {"styles": {"many": "x --lora a --lora b --lora c --lora d --lora e"}},
    ],
)
def test_invalid_parser_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ParserOptions(**kwargs)  # type: ignore[arg-type]


def test_invalid_stylize_in_user_settings() -> None:
    with pytest.raises(PromptError) as caught:
        parse("a fox", defaults=UserSettings(stylize=5000))
    assert str(caught.value) == (
        "your /settings stylize `5000` is outside 0 to 1000; change it in /settings or add "
        "`--stylize`"
    )
    assert parse("a fox --s 5", defaults=UserSettings(stylize=5000))[0].stylize == 5
