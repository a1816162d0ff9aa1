"""Synthetic API flows: multi-step HTTP flows run natively by many virtual users, judged by SLOs.

    spec = FlowSpec.load("login.yaml")
    report = run_flow(spec, "http://127.0.0.1:8000", vus=50, duration=30)
    print(Slo(p95_ms=800, error_rate=0.01).evaluate(report).passed)

See docs/tour_flows.md for the spec schema, the report schema and the defaults.
"""

from __future__ import annotations

from typing import Any

from blocktrust_native._native import flows as _native
from blocktrust_native._native.flows import Histogram
from blocktrust_native.errors import ConfigError, FlowSpecError, HistogramFormatError
from blocktrust_native.flows.report import REPORT_SCHEMA_VERSION, Failure, Report, StepStats
from blocktrust_native.flows.run import FlowRun, run_flow, start_flow
from blocktrust_native.flows.slo import ErrorBudget, Slo, SloResult, Verdict
from blocktrust_native.flows.spec import BUILTINS, FlowSpec

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
    "Report",
    "Slo",
    "SloResult",
    "StepStats",
    "Verdict",
    "http_request",
    "run_flow",
    "start_flow",
]


def http_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    connect_timeout: float = 5.0,
    request_timeout: float = 30.0,
    max_response_bytes: int = 8 << 20,
    max_header_bytes: int = 64 << 10,
    verify_tls: bool = True,
    ca_file: str | None = None,
    follow_redirects: bool = False,
    max_redirects: int = 5,
) -> dict[str, Any]:
    """One request with the native client; failures are in ``result['error']`` (never raised).

    Returns ``{status, headers, body, error, latency_s}``; ConfigError for a URL it cannot send.
    """
    return dict(
        _native.http_request(
            method,
            url,
            list((headers or {}).items()),
            body,
            connect_timeout,
            request_timeout,
            max_response_bytes,
            max_header_bytes,
            verify_tls,
            ca_file or "",
            follow_redirects,
            max_redirects,
        )
    )
