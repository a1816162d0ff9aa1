"""pytest plugin (entry point ``pytest11``): the deploy checks and the embedded stack as fixtures.

Options name the deployment (``--blocktrust-url``, ``--blocktrust-database-url``,
``--blocktrust-rpc-url``, ``--blocktrust-contracts``, ``--blocktrust-env-file``); without
``--blocktrust-url`` the ``blocktrust_target`` fixture brings the embedded stack up once per
session. ``pytest --pyargs validate_all_flows`` runs every check group as a test
(``validate_all_flows/test_deployment.py``): a group fails with the evidence and the fix, and is
skipped when every check in it lacked an input. The plugin does nothing unless these are used.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from validate_all_flows.target import Target

__all__ = ["blocktrust_stack", "blocktrust_target"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Registers the --blocktrust-* options."""
    g = parser.getgroup("blocktrust", "Blocktrust deployment checks (validate_all_flows)")
    g.addoption("--blocktrust-url", help="the service to check (default: the embedded stack)")
    g.addoption("--blocktrust-database-url", help="its PostgreSQL URL")
    g.addoption("--blocktrust-rpc-url", help="its EVM JSON-RPC URL")
    g.addoption("--blocktrust-contracts", help="its contracts_config.json")
    g.addoption("--blocktrust-env-file", help="its .env file")


@pytest.fixture(scope="session")
def blocktrust_stack(request: pytest.FixtureRequest) -> Iterator[object | None]:
    """The embedded stack (started once per session), or None when --blocktrust-url is given."""
    if request.config.getoption("--blocktrust-url"):
        yield None
        return
    from validate_all_flows.embedded.stack import Stack

    with Stack() as stack:
        yield stack


@pytest.fixture(scope="session")
def blocktrust_target(
    request: pytest.FixtureRequest, blocktrust_stack: object | None
) -> Iterator[Target]:
    """The deployment under test as a Target (from the options, or the embedded stack)."""
    from validate_all_flows.envcheck import parse_env_file

    opt = request.config.getoption
    target = Target(
        base_url=opt("--blocktrust-url"),
        database_url=opt("--blocktrust-database-url"),
        rpc_url=opt("--blocktrust-rpc-url"),
        contracts=opt("--blocktrust-contracts"),
    )
    if opt("--blocktrust-env-file"):
        target.env = parse_env_file(opt("--blocktrust-env-file"))
    stack = blocktrust_stack
    if stack is not None:
        target.embedded = stack
        target.base_url = stack.base_url  # type: ignore[attr-defined]
        target.database_url = stack.database_url  # type: ignore[attr-defined]
        target.rpc_url = stack.rpc_url  # type: ignore[attr-defined]
        target.contracts = stack.contracts_config  # type: ignore[attr-defined]
        target.env = dict(stack.service_env)  # type: ignore[attr-defined]
    target.webhook_secret = (target.env or {}).get("SUMSUB_SECRET_KEY")
    yield target
    target.close()
