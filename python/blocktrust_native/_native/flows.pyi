# Stubs for blocktrust_native._native.flows (see cpp/bindings/flows.cpp).
from typing import Any

from blocktrust_native._native.http import HttpOptions

class Histogram:
    """HDR-style log-linear latency histogram (1 µs, 3 significant digits)."""

    def __init__(self) -> None: ...
    def record_us(self, value_us: int, count: int = 1) -> None:
        """Records a value in microseconds `count` times."""
    def merge(self, other: Histogram) -> None:
        """Adds every count of `other`."""
    def percentile_us(self, p: float) -> int:
        """The value at percentile p (0..100) in microseconds."""
    @property
    def count(self) -> int: ...
    @property
    def min_us(self) -> int: ...
    @property
    def max_us(self) -> int: ...
    @property
    def mean_us(self) -> float: ...
    @property
    def saturated(self) -> int: ...
    def to_bytes(self) -> bytes:
        """Compact binary form (mergeable across processes)."""
    @staticmethod
    def from_bytes(data: bytes) -> Histogram:
        """Rebuilds a histogram from to_bytes(); HistogramFormatError if bad."""

class FlowRun:
    """One run of a compiled flow."""

    def __init__(
        self,
        flow_json: str,
        base_url: str,
        vus: int,
        iterations: int,
        duration: float,
        ramp_up: float,
        rate: float,
        threads: int,
        max_failures: int,
        http: HttpOptions,
    ) -> None: ...
    def start(self) -> None:
        """Starts the worker threads."""
    def cancel(self) -> None:
        """Stops the run; wait() then returns the partial report (thread-safe)."""
    def progress(self) -> dict[str, Any]:
        """Counters so far."""
    def wait_for(self, timeout: float) -> bool:
        """Waits up to `timeout` seconds for the end; True when the run has ended."""
    def report_json(self) -> str:
        """The report as JSON text; waits for the end."""
