"""run_flow / start_flow: drive a FlowSpec natively and build the Report."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from blocktrust_native._native import flows as _native
from blocktrust_native.errors import ConfigError
from blocktrust_native.flows.report import Report
from blocktrust_native.flows.spec import FlowSpec
from blocktrust_native.http import HttpOptionArgs, HttpOptions, transport_options

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["FlowRun", "run_flow", "start_flow"]

ProgressFn = Callable[[dict[str, Any]], object]


class FlowRun:
    """A started run: ``cancel()`` from any thread, ``wait()`` for the Report."""

    def __init__(self, spec: FlowSpec, native: Any) -> None:
        self._spec = spec
        self._native = native
        self._report: Report | None = None

    def cancel(self) -> None:
        """Stops the run; wait() returns the partial report (thread-safe)."""
        self._native.cancel()

    def progress(self) -> dict[str, Any]:
        """Counters so far (iterations, requests, failures, active, elapsed_s)."""
        return dict(self._native.progress())

    def wait(self, progress: ProgressFn | None = None, interval: float = 1.0) -> Report:
        """Blocks until the end; `progress(dict)` is called every `interval` s (return False to
        cancel). Ctrl-C cancels and returns the partial report (``report.interrupted``)."""
        if self._report is None:
            interrupted = self._wait(progress, interval)
            text = self._native.report_json()
            self._report = Report(
                json.loads(text), flow_name=self._spec.name, interrupted=interrupted
            )
        return self._report

    def _wait(self, progress: ProgressFn | None, interval: float) -> bool:
        """Waits for the end (the native wait releases the GIL, 100 ms at a time); True when
        Ctrl-C cancelled the run. A progress callback that raises cancels the run, which is
        waited for before the exception goes on."""
        interrupted = False
        next_tick = time.monotonic() + interval
        while True:
            try:
                if self._native.wait_for(0.1):
                    return interrupted
                if progress is not None and time.monotonic() >= next_tick:
                    next_tick += interval
                    try:
                        keep_going = progress(self.progress())
                    except BaseException:
                        self._native.cancel()
                        self._native.wait_for(3600.0)
                        raise
                    if keep_going is not None and not keep_going:
                        self._native.cancel()
            except KeyboardInterrupt:
                interrupted = True  # stop cleanly and hand back the partial report
                self._native.cancel()


def start_flow(
    spec: FlowSpec,
    base_url: str,
    *,
    vus: int = 1,
    iterations: int | None = None,
    duration: float | None = None,
    ramp_up: float = 0.0,
    rate: float | None = None,
    threads: int = 0,
    max_failures: int = 100,
    options: HttpOptions | None = None,
    **transport: Unpack[HttpOptionArgs],
) -> FlowRun:
    """Starts a run and returns at once; see run_flow for the arguments."""
    if not isinstance(spec, FlowSpec):
        raise ConfigError("spec must be a FlowSpec (use FlowSpec.load or FlowSpec.from_dict)")
    if iterations is None and duration is None:
        raise ConfigError("give iterations or duration")
    for name, v in (("duration", duration), ("rate", rate), ("ramp_up", ramp_up)):
        if v is not None and (isinstance(v, bool) or not math.isfinite(v) or v < 0):
            raise ConfigError(f"{name} must be a finite number >= 0")
    if rate is not None and rate <= 0:
        raise ConfigError("rate must be > 0 iterations per second")
    if not isinstance(vus, int) or vus < 1:
        raise ConfigError("vus must be an integer >= 1")
    if iterations is not None and (not isinstance(iterations, int) or iterations < 1):
        raise ConfigError("iterations must be an integer >= 1")
    native = _native.FlowRun(
        spec.compiled_json(),
        base_url,
        vus,
        iterations or 0,
        duration or 0.0,
        ramp_up,
        rate or 0.0,
        threads,
        max_failures,
        transport_options(options, transport),
    )
    native.start()
    return FlowRun(spec, native)


def run_flow(
    spec: FlowSpec,
    base_url: str,
    *,
    vus: int = 1,
    iterations: int | None = None,
    duration: float | None = None,
    rate: float | None = None,
    progress: ProgressFn | None = None,
    progress_interval: float = 1.0,
    **options: Any,
) -> Report:
    """Runs `spec` against `base_url` and returns the Report.

    Closed model (default): `vus` users each run `iterations` iterations (or loop for `duration`
    seconds; `ramp_up` spreads their starts). Open model (`rate` given): `rate` iterations start
    per second, at most `vus` in flight; latency counts from each scheduled start. Other options:
    threads, max_failures, ramp_up, and the transport: ``options`` (an HttpOptions) or its fields
    as keywords (connect_timeout, request_timeout, max_response_bytes, max_header_bytes,
    verify_tls, ca_file, max_redirects); a step's own ``follow_redirects`` decides redirects.
    """
    run = start_flow(
        spec, base_url, vus=vus, iterations=iterations, duration=duration, rate=rate, **options
    )
    return run.wait(progress, progress_interval)
