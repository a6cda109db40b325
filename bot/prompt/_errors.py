"""The one error type the prompt parser raises."""

from __future__ import annotations


class PromptError(ValueError):
    """A prompt the service cannot run; ``str()`` is the one line shown to the user."""
