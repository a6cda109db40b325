"""Server configuration the parser needs, independent of where it comes from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from bot.prompt._styles import Style, parse_styles

DEFAULT_STEPS_PER_QUALITY: Mapping[float, int] = MappingProxyType(
    {0.25: 8, 0.5: 15, 1.0: 30, 2.0: 60}
)


class _ConfigLike(Protocol):
    """The settings attributes ``ParserOptions.from_settings`` reads."""

    @property
    def max_repeat(self) -> int: ...
    @property
    def model_aliases(self) -> Mapping[str, str]: ...
    @property
    def allow_relax(self) -> bool: ...
    @property
    def steps_per_quality(self) -> Mapping[str, int]: ...
    @property
    def strict_models(self) -> bool: ...
    @property
    def styles(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class ParserOptions:
    """Server configuration the parser needs.

    ``strict_models`` refuses ``--v``/``--niji`` values without an alias instead of painting
    them with the default model; ``styles`` maps ``--style NAME`` to a prompt suffix and LoRAs.
    """

    max_repeat: int = 4
    models: frozenset[str] = frozenset()
    allow_relax: bool = True
    steps_per_quality: Mapping[float, int] = field(
        default_factory=lambda: DEFAULT_STEPS_PER_QUALITY
    )
    strict_models: bool = False
    styles: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    style_table: Mapping[str, Style] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.max_repeat <= 16:
            raise ValueError(f"max_repeat must be between 1 and 16, got {self.max_repeat}")
        if 1.0 not in self.steps_per_quality:
            raise ValueError("steps_per_quality needs an entry for quality 1 (the default)")
        for quality, steps in self.steps_per_quality.items():
            if quality <= 0 or not 1 <= steps <= 100:
                raise ValueError(
                    f"steps_per_quality entry {quality}: {steps} is invalid; qualities must be "
                    "positive and step counts between 1 and 100"
                )
        # Parsed once here, so a bad entry stops the process at start-up, not a user's prompt.
        object.__setattr__(self, "style_table", MappingProxyType(parse_styles(self.styles)))

    @classmethod
    def from_settings(cls, settings: _ConfigLike) -> ParserOptions:
        """Options from the process settings (``imagine.settings.Settings``)."""
        try:
            steps = {float(key): int(value) for key, value in settings.steps_per_quality.items()}
        except ValueError:
            raise ValueError(
                f"steps_per_quality keys must be numbers, got {list(settings.steps_per_quality)}"
            ) from None
        return cls(
            max_repeat=settings.max_repeat,
            models=frozenset(settings.model_aliases),
            allow_relax=settings.allow_relax,
            steps_per_quality=MappingProxyType(steps),
            strict_models=settings.strict_models,
            styles=MappingProxyType(dict(settings.styles)),
        )
