"""Service-level objectives judged on a Report, with error budgets across repeated runs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blocktrust_native.errors import ConfigError

if TYPE_CHECKING:
    from blocktrust_native.flows.report import Report

__all__ = ["ErrorBudget", "Slo", "SloResult", "Verdict"]

_PCT = re.compile(r"^p(\d+)_ms$")


@dataclass(frozen=True)
class Verdict:
    """One objective: what was measured, the target, and whether it passed."""

    objective: str
    measured: float
    target: float
    passed: bool
    unit: str

    def describe(self) -> str:
        """A one-line human description."""
        word = "ok" if self.passed else "FAILED"
        m, t, u = self.measured, self.target, self.unit
        return f"{self.objective}: measured {m:.6g}{u}, target {t:.6g}{u} ({word})"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "objective": self.objective,
            "measured": self.measured,
            "target": self.target,
            "passed": self.passed,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class SloResult:
    """Verdicts of one evaluation plus the error budget of this run."""

    verdicts: list[Verdict]
    budget_remaining: float | None
    burn_rate: float | None

    @property
    def passed(self) -> bool:
        """True when every objective passed."""
        return all(v.passed for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "passed": self.passed,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "budget_remaining": self.budget_remaining,
            "burn_rate": self.burn_rate,
        }


@dataclass(frozen=True)
class Slo:
    """Objectives: ``Slo(p95_ms=800, error_rate=0.01, availability=0.995)``; any ``pNN_ms``
    (``p99_ms``, ``p999_ms`` = 99.9th) on the whole flow, or on one step with ``step=``."""

    error_rate: float | None = None
    availability: float | None = None
    step: str | None = None
    percentiles: dict[float, float] = field(default_factory=dict)

    def __init__(
        self,
        *,
        error_rate: float | None = None,
        availability: float | None = None,
        step: str | None = None,
        **latency: float,
    ) -> None:
        pct: dict[float, float] = {}
        for k, v in latency.items():
            m = _PCT.match(k)
            if not m:
                raise ConfigError(
                    f"Slo: unknown objective {k!r} (use pNN_ms, error_rate, availability)"
                )
            digits = m.group(1)
            p = float(digits) if len(digits) <= 2 else float(digits[:2] + "." + digits[2:])
            if not 0 < p < 100 or isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"Slo: {k} must be a positive number of milliseconds")
            pct[p] = float(v)
        for name, ratio in (("error_rate", error_rate), ("availability", availability)):
            if ratio is not None and (isinstance(ratio, bool) or not 0 <= ratio <= 1):
                raise ConfigError(f"Slo: {name} must be between 0 and 1")
        if error_rate is None and availability is None and not pct:
            raise ConfigError("Slo: give at least one objective")
        object.__setattr__(self, "error_rate", error_rate)
        object.__setattr__(self, "availability", availability)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "percentiles", pct)

    def _allowed_failure_ratio(self) -> float | None:
        if self.availability is not None:
            return 1 - self.availability
        return self.error_rate

    def evaluate(self, report: Report) -> SloResult:
        """Judges `report`; KeyError when `step` names no step of it."""
        scope = f"step {self.step}" if self.step else "flow"
        verdicts = []
        if self.step:
            st = report.step(self.step)
            hist = st.histogram()
            err = st.failures / st.requests if st.requests else 0.0
            avail = 1 - err
            failed, total = st.failures, st.requests
        else:
            hist = report.flow_histogram()
            err = report.error_rate
            avail = report.availability
            failed, total = report.failed_iterations, report.iterations
        for p, target in sorted(self.percentiles.items()):
            measured = hist.percentile_us(p) / 1000.0
            verdicts.append(
                Verdict(f"{scope} p{p:g} latency", measured, target, measured <= target, " ms")
            )
        if self.error_rate is not None:
            verdicts.append(
                Verdict(f"{scope} error rate", err, self.error_rate, err <= self.error_rate, "")
            )
        if self.availability is not None:
            verdicts.append(
                Verdict(
                    f"{scope} availability",
                    avail,
                    self.availability,
                    avail >= self.availability,
                    "",
                )
            )
        remaining, burn = _budget(self._allowed_failure_ratio(), failed, total)
        return SloResult(verdicts, remaining, burn)


def _budget(allowed: float | None, failed: int, total: int) -> tuple[float | None, float | None]:
    if allowed is None or total == 0:
        return None, None
    if allowed == 0:
        return (1.0 if failed == 0 else 0.0), (0.0 if failed == 0 else float("inf"))
    burn = (failed / total) / allowed
    return 1 - burn, burn


class ErrorBudget:
    """Error budget over repeated runs (the monitor adds each report); not thread-safe."""

    def __init__(self, slo: Slo) -> None:
        if slo._allowed_failure_ratio() is None:
            raise ConfigError("ErrorBudget: the Slo needs error_rate or availability")
        self.slo = slo
        self.failed = 0
        self.total = 0

    def add(self, report: Report) -> None:
        """Counts a run's iterations (or the SLO step's requests)."""
        if self.slo.step:
            st = report.step(self.slo.step)
            self.failed += st.failures
            self.total += st.requests
        else:
            self.failed += report.failed_iterations
            self.total += report.iterations

    @property
    def remaining(self) -> float | None:
        """Share of the budget left (1 = untouched, 0 = spent, negative = overspent)."""
        return _budget(self.slo._allowed_failure_ratio(), self.failed, self.total)[0]

    @property
    def burn_rate(self) -> float | None:
        """Observed failure ratio / allowed ratio (1 = spending exactly the budget)."""
        return _budget(self.slo._allowed_failure_ratio(), self.failed, self.total)[1]
