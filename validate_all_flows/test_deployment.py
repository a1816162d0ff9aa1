"""One test per check group, for ``pytest --pyargs validate_all_flows`` (see pytest_plugin)."""

from __future__ import annotations

import pytest

from validate_all_flows.checks import GROUPS, Status, run_checks
from validate_all_flows.target import Target


@pytest.mark.parametrize("group", GROUPS)
def test_deployment(group: str, blocktrust_target: Target) -> None:
    """Runs the checks of ``group``: fails with their evidence, skips when none could run."""
    results = run_checks(blocktrust_target, {group})
    bad = [r for r in results if r.status in (Status.FAIL, Status.ERROR)]
    if bad:
        lines = []
        for r in bad:
            lines += [f"{r.id}: {r.found}", *(f"  {e}" for e in r.evidence)]
            if r.fix:
                lines.append(f"  fix: {r.fix}")
        pytest.fail(blocktrust_target.redact("\n".join(lines)), pytrace=False)
    if all(r.status is Status.SKIP for r in results):
        pytest.skip("; ".join(sorted({r.found for r in results})))
