"""Prometheus text exposition (format 0.0.4) of the monitor's last cycle and SLO figures, served
by a stdlib HTTP server on a thread (``--metrics-port``; 127.0.0.1 unless ``--metrics-host``).

Only numbers and check ids leave through here: no URL, evidence text or secret.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["CONTENT_TYPE", "Gauge", "MetricsServer", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: (name, help, type, [(labels, value)]) — one metric family.
Gauge = tuple[str, str, str, list[tuple[dict[str, str], float]]]


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def render(families: Iterable[Gauge]) -> str:
    """The exposition text of ``families`` (families without samples are left out)."""
    out = []
    for name, help_text, kind, samples in families:
        if not samples:
            continue
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_label(str(v))}"' for k, v in sorted(labels.items()))
            out.append(f"{name}{{{lab}}} {_value(value)}" if lab else f"{name} {_value(value)}")
    return "\n".join(out) + "\n"


class MetricsServer:
    """Serves ``GET /metrics`` with whatever ``source()`` renders at that moment.

    ``port`` 0 picks a free one (read it back from ``.port``). Stops with :meth:`stop`.
    """

    def __init__(self, source: Callable[[], str], host: str = "127.0.0.1", port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "see /metrics")
                    return
                try:
                    body = source().encode()
                except Exception:  # a scrape must not take the monitor down
                    self.send_error(500, "rendering failed")
                    return
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would flood the monitor's log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitor-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The scrape URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stops serving and closes the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
