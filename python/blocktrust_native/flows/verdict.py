"""One objective's verdict and one evaluation's result: finished data, judged by
:class:`~blocktrust_native.flows.Slo` and carried by a :class:`~blocktrust_native.flows.Report`'s
JSON and JUnit XML."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["SloResult", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """One objective: what was measured over how many samples, the target, and whether it
    passed. Build it with :meth:`judge`, which never passes an objective measured on nothing."""

    objective: str
    measured: float
    target: float
    passed: bool
    unit: str
    #: How many measurements the figure stands on (None: not said by the caller).
    samples: int | None = None

    @classmethod
    def judge(
        cls,
        objective: str,
        measured: float | None,
        target: float,
        *,
        samples: int,
        at_least: bool = False,
        unit: str = "",
    ) -> Verdict:
        """`measured` against `target` (at most it, or at least it with `at_least`). Zero
        samples (or no figure) is a failed verdict: a run that measured nothing proves nothing."""
        if samples <= 0 or measured is None or math.isnan(measured):
            return cls(objective, math.nan, target, False, unit, 0)
        ok = measured >= target if at_least else measured <= target
        return cls(objective, float(measured), target, ok, unit, samples)

    def describe(self) -> str:
        """A one-line human description."""
        t, u = self.target, self.unit
        if self.samples == 0:
            return f"{self.objective}: no samples, target {t:.6g}{u} (FAILED: nothing measured)"
        word = "ok" if self.passed else "FAILED"
        return f"{self.objective}: measured {self.measured:.6g}{u}, target {t:.6g}{u} ({word})"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (``measured`` is null when there were no samples)."""
        return {
            "objective": self.objective,
            "measured": None if math.isnan(self.measured) else self.measured,
            "target": self.target,
            "passed": self.passed,
            "unit": self.unit,
            "samples": self.samples,
        }


@dataclass(frozen=True)
class SloResult:
    """Verdicts of one evaluation plus the error budget of this run."""

    verdicts: list[Verdict]
    budget_remaining: float | None
    burn_rate: float | None

    @property
    def passed(self) -> bool:
        """True when there is at least one verdict and every one passed (an objective measured
        on zero samples never passes)."""
        return bool(self.verdicts) and all(v.passed for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "passed": self.passed,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "budget_remaining": self.budget_remaining,
            "burn_rate": self.burn_rate,
        }
