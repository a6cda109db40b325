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
        (
            "a fox --ar 9:2",
            "aspect ratio `9:2` is too extreme; allowed ratios range from 1:4 to 4:1",
        ),
        (
            "a fox --ar 1:5",
            "aspect ratio `1:5` is too extreme; allowed ratios range from 1:4 to 4:1",
        ),
        (
            "a fox --seed 4294967296",
            "`--seed` must be a whole number from 0 to 4294967295; got `4294967296`",
        ),
        ("a fox --seed -1", "`--seed` must be a whole number from 0 to 4294967295; got `-1`"),
        ("a fox --c 101", "`--c` must be a whole number from 0 to 100; got `101`"),
        ("a fox --chaos 5.5", "`--chaos` must be a whole number from 0 to 100; got `5.5`"),
        ("a fox --s 1001", "`--s` must be a whole number from 0 to 1000; got `1001`"),
        ("a fox --weird 3001", "`--weird` must be a whole number from 0 to 3000; got `3001`"),
        ("a fox --steps 0", "`--steps` must be a whole number from 1 to 100; got `0`"),
        ("a fox --steps 101", "`--steps` must be a whole number from 1 to 100; got `101`"),
        ("a fox --stop 9", "`--stop` must be a whole number from 10 to 100; got `9`"),
        ("a fox --iw 3.5", "`--iw` must be a number from 0 to 3; got `3.5`"),
        ("a fox --iw high", "`--iw` must be a number from 0 to 3; got `high`"),
        ("a fox --q 3", "`--q` must be one of 0.25, 0.5, 1, 2; got `3`"),
        ("a fox --quality max", "`--quality` must be one of 0.25, 0.5, 1, 2; got `max`"),
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
        ("a fox --style cute", "`--style` supports only `raw` on this server; got `cute`"),
        ("a fox --relax", "`--relax` is not available on this server; use `--fast`"),
        ("a fox --turbo --fast", "`--turbo` and `--fast` are both speed modes; use only one"),
        ("a fox --fast --fast", "`--fast` is given twice"),
        ("a fox --ar 1:1 --ar 2:1", "`--ar` is given twice"),
        ("a fox --c 1 --chaos 2", "`--c` and `--chaos` are the same parameter; give it once"),
        ("a fox --raw --style raw", "`--raw` and `--style` are the same parameter; give it once"),
        ("a fox --v 6 --niji", "`--v` and `--niji` both choose a model; use only one"),
        ("a fox --v 7", "model `7` is not available on this server; available: default, 6, niji"),
        (
            "a fox --model sd15",
            "model `sd15` is not available on this server; available: default, 6, niji",
        ),
        (
            "a fox --niji 5",
            "model `niji-5` is not available on this server; available: default, 6, niji",
        ),
        ("a fox --sref https://x.y/z.png", "`--sref` is not supported on this server"),
        ("a fox --cref x", "`--cref` is not supported on this server"),
        ("a fox --oref x", "`--oref` is not supported on this server"),
        ("a fox --video", "`--video` is not supported on this server"),
        ("a fox --p", "`--p` is not supported on this server"),
        ("a fox --personalize abc", "`--personalize` is not supported on this server"),
        ("a fox --exp 10", "`--exp` is not supported on this server"),
        ("a fox --draft", "`--draft` is not supported on this server"),
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
