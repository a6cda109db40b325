"""Properties: parsing fails only with ``PromptError``; render and parse are inverses."""

from __future__ import annotations

import dataclasses
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.prompt import ParserOptions, PromptError, parse, parse_aspect, render
from storage.contract import MAX_SEED, Control, ControlKind, GenerationRequest, SpeedMode

OPTIONS = ParserOptions(models=frozenset({"niji", "6", "5.2", "niji-6", "photo"}), max_repeat=16)

TOKENS = [
    "a", "fox", "red", " ", "  ", "--ar", "16:9", "32:18", "1:5", "0:0", "--aspect", "--no",
    "--seed", "4294967296", "7", "-1", "--c", "--chaos", "--s", "--stylize", "--q", ".25", "3",
    "--steps", "--stop", "--tile", "--raw", "--style", "raw", "--w", "--iw", "1.5", "--r",
    "--repeat", "--v", "6.0", "--niji", "--model", "photo", "--turbo", "--fast", "--relax",
    "--sref", "--ratio", "--x", "--", "-", "\u2014ar", "\u2013seed", "::", "::2", "::-1",
    "::.5", ":", "{", "}", ",", "\\,", "\\{", "\\", "https://example.com/a.png",
    "<http://example.org/b>", "ftp://x/y", "http://", "http://:1/", "99999999999999999999",
    "1e5", "nan", "inf", "\n", "\t", "\u00e9", "\U0001f98a", "\x00",
    "--sref", "--cref", "--sw", "--p", "--exp", "--video", "--hd", "--sameseed", "--h", "--width",
    "--lora", "tiny-style:0.5", "x:3", "--control", "canny", "depth:1.5", "--notr", "--draft",
    "cute", "4a", "random-64", "4", "1250", "\u2014\u2014", "\uff1a", "\uff0c", "16:9,", "250.",
    "/imagine prompt:", "<https://example.com/c.png>", "123::2",
]  # fmt: skip
soup = st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=40).map(" ".join)
squashed = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def _check(text: str) -> None:
    try:
        requests = parse(text, options=OPTIONS)
    except PromptError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return
    assert 1 <= len(requests) <= 16
    for request in requests:
        assert request.width % 64 == 0 and request.height % 64 == 0
        assert 0.9 <= request.width * request.height / 1024**2 <= 1.1
        assert request.prompt and request.segments
        assert all(note.startswith("--") for note in request.notes)
        # Whatever parses renders back to text that parses to the same request; only what
        # is honoured is rendered, so the notes do not come back.
        honoured = dataclasses.replace(request, notes=())
        assert parse(render(request, options=OPTIONS), options=OPTIONS) == [honoured]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | soup | squashed)
def test_parse_raises_only_prompt_error(text: str) -> None:
    _check(text)


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Prompt words: no URL, and no `--name` anywhere (typed right after text it is a parameter).
words = st.text(alphabet="abcxyzABC0129,.!?'-:{}\\\u00e9", min_size=1, max_size=8).filter(
    lambda word: "::" not in word and not _WORD.match(word) and not re.search("--[A-Za-z]", word)
)
texts = st.lists(words, min_size=1, max_size=5).map(" ".join)
# Weights as people type them: decimals with up to three places.
weights = st.integers(-100_000, 100_000).map(lambda n: n / 1000)
urls = st.lists(
    st.text(alphabet="abc019-_./?=&{}", max_size=12).map(
        lambda path: f"https://example.com/{path}"
    ),
    max_size=2,
)
lora_names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,11}", fullmatch=True).filter(
    lambda name: name[-1] not in "."
)
ratios = st.tuples(st.integers(1, 64), st.integers(1, 64)).filter(
    lambda r: r[0] <= 4 * r[1] and r[1] <= 4 * r[0]
)


@st.composite
def requests(draw: st.DrawFn) -> GenerationRequest:
    multi = draw(st.booleans())
    if multi:
        segments = tuple(draw(st.lists(st.tuples(texts, weights), min_size=1, max_size=4)))
    else:
        segments = ((draw(texts), 1.0),)
    negatives = draw(st.lists(texts.filter(lambda t: "," not in t), max_size=3))
    total = sum(weight for _, weight in segments) - (0.5 if negatives else 0.0)
    if total <= 0:
        # Make the sum positive the way a user would: weigh the first segment up.
        text, weight = segments[0]
        segments = ((text, weight - total + 1.0), *segments[1:])
    aspect, width, height = parse_aspect("{}:{}".format(*draw(ratios)))
    image_urls = tuple(draw(urls))
    loras = draw(
        st.lists(
            st.tuples(lora_names, st.integers(0, 200).map(lambda n: n / 100)),
            max_size=4,
            unique_by=lambda lora: lora[0],
        )
    )
    control = None
    if image_urls:
        control = draw(
            st.none()
            | st.builds(
                Control,
                st.sampled_from(list(ControlKind)),
                st.integers(0, 200).map(lambda n: n / 100),
            )
        )
    quality = draw(st.sampled_from(sorted(OPTIONS.steps_per_quality)))
    return GenerationRequest(
        prompt=" ".join(text for text, weight in segments if weight > 0),
        segments=segments,
        negative_prompt=", ".join(negatives) or None,
        image_urls=image_urls,
        # An image weight with no image prompt is noted and dropped, so only with URLs.
        image_weight=draw(st.integers(0, 300).map(lambda n: n / 100)) if image_urls else 1.0,
        aspect=aspect,
        width=width,
        height=height,
        seed=draw(st.none() | st.integers(0, MAX_SEED)),
        chaos=draw(st.integers(0, 100)),
        stylize=draw(st.integers(0, 1000)),
        quality=quality,
        steps=draw(st.sampled_from([OPTIONS.steps_per_quality[quality]]) | st.integers(1, 100)),
        stop=draw(st.integers(10, 100)),
        tile=draw(st.booleans()),
        raw=draw(st.booleans()),
        weird=draw(st.integers(0, 3000)),
        model=draw(st.none() | st.sampled_from(sorted(OPTIONS.models))),
        mode=draw(st.sampled_from(list(SpeedMode))),
        loras=tuple(loras),
        control=control,
        translate=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None)
@given(requests())
def test_render_then_parse_gives_the_request_back(request: GenerationRequest) -> None:
    text = render(request, options=OPTIONS)
    assert parse(text, options=OPTIONS) == [request]
