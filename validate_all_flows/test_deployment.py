"""One test per check, for ``pytest --pyargs validate_all_flows`` (see pytest_plugin).

The items come from the ids each check declares (``@check(group, ids=...)``), so they are known
at collection time; each check function runs once per session and every item reports its own id.
"""

from __future__ import annotations

import pytest

from validate_all_flows.checks import Status, all_checks, declared_ids
from validate_all_flows.pytest_plugin import CheckFn, CheckSession, judge

_ITEMS = [
    pytest.param(group, fn, cid, id=cid) for group, fn in all_checks() for cid in declared_ids(fn)
]


@pytest.mark.parametrize(("group", "fn", "cid"), _ITEMS)
def test_check(group: str, fn: CheckFn, cid: str, blocktrust_checks: CheckSession) -> None:
    """The check ``cid``: fails with its evidence and fix, skips with the reason it did not run
    (fails when the profile requires it)."""
    target = blocktrust_checks.target
    results = blocktrust_checks.results(group, fn)
    status, message = judge(cid, group, fn, results, target.profile.require)
    message = target.redact(message)
    if status is Status.FAIL:
        pytest.fail(message, pytrace=False)
    if status is Status.SKIP:
        pytest.skip(message)
