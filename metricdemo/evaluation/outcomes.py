"""The result of evaluating a definition once, and the outcomes it can have."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from metricdemo import validators
from metricdemo.observations import Observations


class Outcome(StrEnum):
    """How an evaluation ended; the value is the self-metrics' `outcome` label."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    CACHED = "cached"
    # Served from the scheduled table: the value a background refresh computed.
    STORED = "stored"
    # The last good value, kept because the batch it ran in overran.
    KEPT = "kept"
    # A scheduled definition not refreshed yet, or refreshed too long ago.
    PENDING = "pending"
    STALE = "stale"


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one definition once."""

    name: str
    #: An Outcome (a plain string only inside the evaluator, for a batch that failed).
    outcome: str
    observations: Observations = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    #: Unix time the served value was computed, when it was not computed now.
    computed_at: float | None = None

    def __post_init__(self) -> None:
        # The error quotes stored text, a database's or a callback's message:
        # a lone surrogate or NUL in it would fail the admin page, the log
        # line or the command that shows it, so it is escaped here, once.
        if self.error and validators.unencodable_text(self.error) is not None:
            escaped = validators.escape_unencodable(self.error).replace("\x00", "\\x00")
            object.__setattr__(self, "error", escaped)

    @property
    def ok(self) -> bool:
        """Return whether the definition produced its series (fresh or kept)."""
        return self.outcome in (
            Outcome.SUCCESS,
            Outcome.CACHED,
            Outcome.STORED,
            Outcome.KEPT,
        )
