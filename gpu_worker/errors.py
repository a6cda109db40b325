"""Errors the engine raises; ``str()`` of each is one clear sentence for logs and users."""

from __future__ import annotations


def short_reason(exc: BaseException) -> str:
    """An exception's message on one line, at most 300 characters (its type when empty)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


class EngineError(Exception):
    """Base class: the job cannot be rendered as asked."""


class ModelLoadError(EngineError):
    """A configured model could not be loaded (names the source, the reason and what to do)."""


class UnknownModel(EngineError):
    """A request named a model alias the server does not have."""


class InvalidTask(EngineError):
    """The job lacks something the engine needs (an input image, a valid size...)."""


class JobCancelled(Exception):
    """Raised from the step callback to abort a render at once."""


class OutOfMemory(EngineError):
    """The device ran out of memory even at the smallest batch."""
