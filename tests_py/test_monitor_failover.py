"""Two monitors of one instance on one store: one leads (a PostgreSQL advisory lock), so each
alert and each recovery is sent once; when the leader dies the other takes its open alerts over
without announcing them again."""

from __future__ import annotations

import pytest
from fix_wait import wait_until
from test_monitor import Deployment, Receiver, _close, _monitor, db, deployment, dsn, slack

from blocktrust_native.pool import Pool
from validate_all_flows.monitor.alerts import SlackWebhook

pytestmark = pytest.mark.pg

__all__ = ["db", "deployment", "dsn", "slack"]  # fixtures shared with test_monitor


def test_two_monitors_on_one_store_send_each_alert_once(
    dsn: str, db: Pool, deployment: Deployment, slack: Receiver
) -> None:
    first = _monitor(dsn, deployment, [SlackWebhook(slack.url)])
    second = _monitor(dsn, deployment, [SlackWebhook(slack.url)])
    first.start()
    second.start()
    try:
        deployment.mode = "500"
        for _ in range(3):
            a, b = first.run_cycle(), second.run_cycle()
            assert a.failing == ["http.health"]
            assert b.results == []  # the standby runs nothing
        assert second.standby
        assert len(slack.texts) == 1
        assert "FAILING http.health" in slack.texts[0]
        # The leader dies: PostgreSQL ends its sessions, the lock's among them. The standby
        # takes over the open alert as the leader saved it, and does not announce it again.
        assert first.leader is not None
        pid = first.leader.pid
        db.execute("SELECT pg_terminate_backend($1)", [pid])
        wait_until(
            lambda: not db.execute("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]),
            timeout=30,
            what="the leader's session to end",
        )
        c = second.run_cycle()
        assert c.failing == ["http.health"]
        assert not second.standby
        assert len(slack.texts) == 1
        deployment.mode = "ok"
        second.run_cycle()
        second.run_cycle()
        assert len(slack.texts) == 2
        assert "RECOVERED http.health" in slack.texts[1]
    finally:
        first.target.close()
        _close(second)
    rows = db.execute("SELECT status, count(*) FROM monitor_alerts GROUP BY 1")
    assert rows == [("resolved", 1)]
