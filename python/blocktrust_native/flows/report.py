"""The result of a run: per-step stats, failures, histograms, JSON and JUnit XML."""

from __future__ import annotations

import base64
import json
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

from blocktrust_native._native.flows import Histogram
from blocktrust_native.flows.junit import JUnitCase, junit_xml
from blocktrust_native.flows.verdict import SloResult

__all__ = ["REPORT_SCHEMA_VERSION", "Failure", "Report", "StepStats"]

#: Bumped when a field of Report.to_json() changes meaning or disappears.
REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Failure:
    """One recorded failure: the step, the VU and iteration, the reason and a redacted excerpt."""

    step: str
    vu: int
    iteration: int
    status: int
    reason: str
    excerpt: str


@dataclass(frozen=True)
class StepStats:
    """Counters and latency of one step over the whole run. A step with ``retry`` counts one
    request per execution (its final outcome); ``attempts`` counts every HTTP exchange."""

    name: str
    requests: int
    failures: int
    status_counts: dict[int, int]
    errors: dict[str, int]
    asserts: list[dict[str, Any]]
    latency: dict[str, Any]
    attempts: int = 0
    #: Requests resent after a kept-alive connection closed before any byte of the answer (only
    #: idempotent methods: GET, HEAD, OPTIONS, TRACE, PUT, DELETE); included in ``attempts``.
    retries: int = 0

    def histogram(self) -> Histogram:
        """The step's latency histogram (µs), mergeable with other runs."""
        return Histogram.from_bytes(base64.b64decode(self.latency["histogram"]))

    def percentile_ms(self, p: float) -> float:
        """Latency at percentile `p` in milliseconds."""
        return self.histogram().percentile_us(p) / 1000.0


class _Judge(Protocol):
    """What an ``Slo`` is to a report: something that evaluates it (the deprecated argument)."""

    def evaluate(self, report: Report) -> SloResult: ...


def _result(report: Report, slo: SloResult | _Judge | None, method: str) -> SloResult | None:
    if slo is None or isinstance(slo, SloResult):
        return slo
    warnings.warn(
        f"Report.{method}(slo) takes the finished SloResult (slo.evaluate(report)); "
        "passing the Slo is deprecated and will be removed in the next release",
        DeprecationWarning,
        stacklevel=3,
    )
    return slo.evaluate(report)


class Report:
    """What a run measured; built by run_flow (not meant to be constructed by hand)."""

    def __init__(self, data: dict[str, Any], *, flow_name: str, interrupted: bool = False) -> None:
        #: Values captured by VU 0's last iteration (see FlowSpec.capture_names); kept out of
        #: to_json, to_junit_xml and repr, since captures may hold tokens.
        self.captures: dict[str, Any] = dict(data.pop("captures", None) or {})
        self._d = data
        self.flow_name = flow_name
        #: True when Ctrl-C stopped the run (the report is partial).
        self.interrupted = interrupted
        self.steps = [
            StepStats(
                name=s["name"],
                requests=s["requests"],
                failures=s["failures"],
                status_counts={int(k): v for k, v in s["status_counts"].items()},
                errors=dict(s["errors"]),
                asserts=list(s["asserts"]),
                latency=s["latency"],
                attempts=s.get("attempts", s["requests"]),
                retries=s.get("retries", 0),
            )
            for s in data["steps"]
        ]
        self.failures = [Failure(**f) for f in data["failures"]]

    def __repr__(self) -> str:
        return (
            f"Report(flow={self.flow_name!r}, iterations={self.iterations}, "
            f"failed_iterations={self.failed_iterations}, requests={self.requests}, "
            f"cancelled={self.cancelled})"
        )

    @property
    def model(self) -> str:
        """'closed' (VUs loop) or 'open' (constant arrival rate)."""
        return str(self._d["model"])

    @property
    def cancelled(self) -> bool:
        """True when the run was cancelled (cancel(), Ctrl-C or progress returned False)."""
        return bool(self._d["cancelled"])

    @property
    def elapsed_s(self) -> float:
        """Wall-clock seconds of the run."""
        return float(self._d["elapsed_s"])

    @property
    def iterations(self) -> int:
        """Iterations finished."""
        return int(self._d["iterations"])

    @property
    def failed_iterations(self) -> int:
        """Iterations in which a step failed."""
        return int(self._d["failed_iterations"])

    @property
    def requests(self) -> int:
        """Requests finished."""
        return int(self._d["requests"])

    @property
    def failed_requests(self) -> int:
        """Requests that failed (transport, capture or assert)."""
        return int(self._d["failed_requests"])

    @property
    def retries(self) -> int:
        """Requests resent after a kept-alive connection closed before the answer (see
        StepStats.retries): a run that needed them says so."""
        return sum(s.retries for s in self.steps)

    @property
    def requests_per_s(self) -> float:
        """Requests per second over the run."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_rate(self) -> float | None:
        """Failed requests / requests (None when no request ran: nothing was measured)."""
        return self.failed_requests / self.requests if self.requests else None

    @property
    def availability(self) -> float | None:
        """Share of iterations that passed every step (None when no iteration ran)."""
        return 1 - self.failed_iterations / self.iterations if self.iterations else None

    @property
    def flow_latency(self) -> dict[str, Any]:
        """Summary of whole-iteration latency (open model: from the scheduled start)."""
        return dict(self._d["flow"])

    def flow_histogram(self) -> Histogram:
        """Whole-iteration latency histogram (µs)."""
        return Histogram.from_bytes(base64.b64decode(self._d["flow"]["histogram"]))

    def step(self, name: str) -> StepStats:
        """The stats of the step called `name`; KeyError if there is none."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def status_counts(self) -> dict[int, int]:
        """Status codes over all steps."""
        out: dict[int, int] = {}
        for s in self.steps:
            for k, v in s.status_counts.items():
                out[k] = out.get(k, 0) + v
        return out

    def to_dict(self, slo: SloResult | None = None) -> dict[str, Any]:
        """The report as plain data (see docs/tour_flows.md for the schema), with the SLO
        verdicts of ``slo`` (``Slo.evaluate(report)``) when given."""
        result = _result(self, slo, "to_dict")
        d = {
            "schema": REPORT_SCHEMA_VERSION,
            "flow": self.flow_name,
            "interrupted": self.interrupted,
        }
        d.update(json.loads(json.dumps(self._d)))
        d["flow_latency"] = d.pop("flow")
        d["flow"] = self.flow_name  # the run's "flow" key held the latency, not the name
        d["requests_per_s"] = self.requests_per_s
        d["error_rate"] = self.error_rate
        d["availability"] = self.availability
        d["retries"] = self.retries
        if result is not None:
            d["slo"] = result.to_dict()
        return d

    def to_json(self, slo: SloResult | None = None, *, indent: int | None = 2) -> str:
        """The report as JSON text, with the SLO verdicts of ``slo`` when given."""
        return json.dumps(self.to_dict(_result(self, slo, "to_json")), indent=indent)

    def to_junit_xml(self, slo: SloResult | None = None) -> str:
        """JUnit XML (:func:`~blocktrust_native.flows.junit.junit_xml`): one test case per
        functional assert, one per step with transport errors, one per SLO verdict of ``slo``."""
        result = _result(self, slo, "to_junit_xml")
        cases: list[JUnitCase] = []
        for s in self.steps:
            for a in s.asserts:
                failed = f"failed {a['failed']} of {s.requests} requests" if a["failed"] else ""
                outcome = "failure" if failed else "passed"
                cases.append(JUnitCase(f"{self.flow_name}.asserts", a["label"], outcome, failed))
            if sum(s.errors.values()):
                msg = "; ".join(f"{k} x{v}" for k, v in sorted(s.errors.items()))
                name = f"{s.name}: request completes"
                cases.append(JUnitCase(f"{self.flow_name}.requests", name, "failure", msg))
        for v in result.verdicts if result else []:
            outcome, msg = ("passed", "") if v.passed else ("failure", v.describe())
            cases.append(JUnitCase(f"{self.flow_name}.slo", v.objective, outcome, msg))
        return junit_xml(self.flow_name, cases, seconds=self.elapsed_s)
