"""Service-level objectives judged on a Report, with error budgets across repeated runs.

The judging lives here; what it produces (:class:`Verdict`, :class:`SloResult`) is finished data
in :mod:`blocktrust_native.flows.verdict`, which the report writes without knowing an ``Slo``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from blocktrust_native.errors import ConfigError
from blocktrust_native.flows.report import Report
from blocktrust_native.flows.verdict import SloResult, Verdict

__all__ = ["ErrorBudget", "Slo", "SloResult", "Verdict"]

_PCT = re.compile(r"^p(\d+)_ms$")


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
        """Judges `report`; KeyError when `step` names no step of it. A report with no sample
        (no iteration, or no request of the step) fails every objective."""
        scope = f"step {self.step}" if self.step else "flow"
        verdicts = []
        if self.step:
            st = report.step(self.step)
            hist = st.histogram()
            requests = st.requests
            err = st.failures / requests if requests else None
            avail = None if err is None else 1 - err
            failed, total = st.failures, requests
            timed = requests
        else:
            hist = report.flow_histogram()
            requests = report.requests
            err = report.error_rate
            avail = report.availability
            failed, total = report.failed_iterations, report.iterations
            timed = report.iterations
        for p, target in sorted(self.percentiles.items()):
            n = min(timed, hist.count)
            measured = hist.percentile_us(p) / 1000.0 if n else None
            verdicts.append(
                Verdict.judge(f"{scope} p{p:g} latency", measured, target, samples=n, unit=" ms")
            )
        if self.error_rate is not None:
            verdicts.append(
                Verdict.judge(f"{scope} error rate", err, self.error_rate, samples=requests)
            )
        if self.availability is not None:
            verdicts.append(
                Verdict.judge(
                    f"{scope} availability", avail, self.availability, samples=total, at_least=True
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
