"""Synthetic API flows: multi-step HTTP flows run natively by many virtual users, judged by SLOs.

    spec = FlowSpec.load("login.yaml")
    report = run_flow(spec, "http://127.0.0.1:8000", vus=50, duration=30)
    result = Slo(p95_ms=800, error_rate=0.01).evaluate(report)
    print(result.passed, report.to_junit_xml(result))

See docs/tour_flows.md for the spec schema, the report schema and the defaults.
"""

from __future__ import annotations

from blocktrust_native._native.flows import Histogram
from blocktrust_native.errors import ConfigError, FlowSpecError, HistogramFormatError
from blocktrust_native.flows.junit import JUnitCase, junit_xml
from blocktrust_native.flows.report import REPORT_SCHEMA_VERSION, Failure, Report, StepStats
from blocktrust_native.flows.run import FlowRun, run_flow, start_flow
from blocktrust_native.flows.slo import ErrorBudget, Slo
from blocktrust_native.flows.spec import BUILTINS, FlowSpec
from blocktrust_native.flows.verdict import SloResult, Verdict
from blocktrust_native.http import http_request

__all__ = [
    "BUILTINS",
    "REPORT_SCHEMA_VERSION",
    "ConfigError",
    "ErrorBudget",
    "Failure",
    "FlowRun",
    "FlowSpec",
    "FlowSpecError",
    "Histogram",
    "HistogramFormatError",
    "JUnitCase",
    "Report",
    "Slo",
    "SloResult",
    "StepStats",
    "Verdict",
    "http_request",
    "junit_xml",
    "run_flow",
    "start_flow",
]
