"""What a failed job tells its user, and what it keeps for the operator.

A job's stored ``error`` holds the reason shown in the public job message on its first line and
the full ``Type: message`` after it. Errors about the request itself (a missing source image, a
model the server does not have) are told as they are; anything else (paths, SQL, CUDA) is
"internal error (reference X)", and X is in the worker's log line and in the stored error.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from gpu_worker.errors import InvalidTask, OutOfMemory, UnknownModel

# Their messages are written for users: they name what was wrong with the request.
_TOLD_AS_IS = (InvalidTask, UnknownModel)


@dataclass(frozen=True)
class Failure:
    """One failed attempt: the public reason, the operator's detail and their shared reference."""

    public: str
    detail: str
    reference: str

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        """Classify ``exc``, with a fresh reference."""
        reference = secrets.token_hex(4)
        detail = f"{type(exc).__name__}: {exc}"
        cause = exc.__cause__
        if cause is not None:
            detail += f" (from {type(cause).__name__}: {cause})"
        told = " ".join(str(exc).split())
        if isinstance(exc, _TOLD_AS_IS) and told:
            public = told
        elif isinstance(exc, OutOfMemory):
            public = f"the server ran out of memory for this request (reference {reference})"
        else:
            public = f"internal error (reference {reference})"
        return cls(public, detail, reference)

    def __str__(self) -> str:
        """``(reference X): Type: message``, for the log line."""
        return f"(reference {self.reference}): {self.detail}"

    @property
    def stored(self) -> str:
        """The job's ``error``: the public line, then the detail."""
        return f"{self.public}\n{self.detail}"
