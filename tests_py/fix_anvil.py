"""Chain fixtures: a real anvil per test module, the deployed contracts, account clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from validate_all_flows.embedded.anvil import Anvil
from validate_all_flows.embedded.chain import BlocktrustContracts, ContractsConfig, deploy_contracts
from validate_all_flows.embedded.node_deps import ensure_node_tools
from validate_all_flows.embedded.web3_client import ChainClient


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    """A fresh anvil on 127.0.0.1 (installed by ``npm ci`` if missing), stopped after the module."""
    ensure_node_tools(quiet=True)
    with Anvil() as node:
        yield node


@pytest.fixture(scope="module")
def deployer(anvil: Anvil) -> ChainClient:
    """A client signing with anvil account 0 (admin and operator of the deployed contracts)."""
    return ChainClient(anvil.rpc_url, anvil.private_key(0), chain_id=anvil.chain_id, timeout=30)


@pytest.fixture(scope="module")
def deployed(deployer: ChainClient) -> ContractsConfig:
    """The three contracts deployed and wired once per module."""
    return deploy_contracts(deployer)


@pytest.fixture(scope="module")
def bt(deployer: ChainClient, deployed: ContractsConfig) -> BlocktrustContracts:
    """The deployed contracts bound to the deployer's client."""
    return BlocktrustContracts(deployer, deployed)


@pytest.fixture(scope="module")
def as_account(anvil: Anvil, deployed: ContractsConfig) -> Callable[[int], BlocktrustContracts]:
    """Factory: the deployed contracts bound to a client for anvil account ``i``."""

    def make(i: int) -> BlocktrustContracts:
        client = ChainClient(anvil.rpc_url, anvil.private_key(i), chain_id=anvil.chain_id)
        return BlocktrustContracts(client, deployed)

    return make
