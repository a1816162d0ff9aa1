"""``python -m validate_all_flows monitor``: the checks on a schedule, for a deployment that runs.

Every interval (60 s) it runs the read-only checks (database, http, chain, workers; ``--groups``
adds others), records what they measured in ``monitor_metrics``, opens and resolves
``monitor_alerts`` (deduplicated per failing check, a reminder at most every ``--remind-every``,
a notice on recovery) and posts them to Slack-compatible webhooks and Telegram, refreshes its row
in ``monitor_heartbeats`` (which the ``workers.monitor`` check reads), judges uptime, latency,
error rate and listener lag against the objectives over a window with the error budget left and
its burn rate, writes that SLO report every ``--report-every`` (12 min), reads the chain
worker's backlog by kind and its signers' gas, and serves it all to Prometheus on
``--metrics-port``.

    monitor.cli       the command line (options, environment fallbacks, signals)
    monitor.runner    the loop: one cycle from checks to notices
    monitor.store     the tables (metrics buffered while the store is down)
    monitor.alerts    alert state, deduplication, Slack and Telegram channels
    monitor.sloreport the SLO report (text and JSON)
    monitor.slo_html  the SLO report as a self-contained HTML page
    monitor.prometheus the metric catalogue, its text exposition and HTTP server
"""

from __future__ import annotations

from validate_all_flows.monitor.alerts import AlertManager, SlackWebhook, TelegramBot
from validate_all_flows.monitor.runner import DEFAULT_GROUPS, Monitor, MonitorConfig
from validate_all_flows.monitor.sloreport import SloReport, build_report
from validate_all_flows.monitor.store import MonitorStore

__all__ = [
    "DEFAULT_GROUPS",
    "AlertManager",
    "Monitor",
    "MonitorConfig",
    "MonitorStore",
    "SlackWebhook",
    "SloReport",
    "TelegramBot",
    "build_report",
]
