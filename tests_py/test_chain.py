"""The chain client and the anvil launcher against a real anvil: config files, errors, secrets."""

# Fixtures imported from fix_anvil are parameters of the tests:
# ruff: noqa: F811

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fix_anvil import anvil, bt, deployed, deployer  # noqa: F401

from blocktrust_native.errors import (
    ChainConnectionError,
    ChainIdMismatch,
    ConfigError,
    ContractsConfigError,
    FileReadError,
)
from validate_all_flows.embedded.anvil import Anvil, AnvilError
from validate_all_flows.embedded.chain import (
    CONTRACT_NAMES,
    BlocktrustContracts,
    ContractsConfig,
    IdentityStatus,
    deploy_artifact,
    deploy_contracts,
    load_contracts_config,
)
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.embedded.web3_client import (
    AMOY_CHAIN_ID,
    ChainClient,
    ChainSettings,
    ContractReverted,
    TransactionFailed,
    redact_url,
)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(addr)
    return found


# -- anvil ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_anvils_do_not_collide_and_stop_cleanly() -> None:
    with Anvil() as a, Anvil(chain_id=4242) as b:
        assert a.port != b.port
        assert int(a.rpc("eth_chainId"), 16) == 31337
        assert int(b.rpc("eth_chainId"), 16) == 4242
        assert a.accounts == b.accounts  # same mnemonic, separate chains
        a.mine(3)
        assert int(a.rpc("eth_blockNumber"), 16) == 3
        assert int(b.rpc("eth_blockNumber"), 16) == 0
        # Loopback only: never 0.0.0.0 or ::.
        assert _listening_addresses(a.port) == {"0100007F"}
        assert repr(a).startswith(f"Anvil(rpc_url='http://127.0.0.1:{a.port}'")
        assert a.private_key(0)[2:] not in repr(a)
        assert "Listening on 127.0.0.1" in a.log_tail(100_000)
        assert a.private_key(0)[2:] in a._read_log()  # anvil prints the keys...
        assert a.private_key(0)[2:] not in a.log_tail(100_000)  # ...our error messages do not
        assert "test junk" not in a.log_tail(100_000)
        pid = a.pid
        assert pid is not None
    assert not a.running
    assert not b.running
    assert (
        not Path(f"/proc/{pid}").exists() or "anvil" not in Path(f"/proc/{pid}/cmdline").read_text()
    )
    a.stop()  # a second stop is harmless


@pytest.mark.slow
def test_a_port_taken_meanwhile_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    import validate_all_flows.embedded.anvil as anvil_mod

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        real = anvil_mod.free_port
        # The first pick is a port another process grabbed between our check and anvil's bind.
        monkeypatch.setattr(anvil_mod, "free_port", lambda: next(ports, None) or real())
        with Anvil() as node:
            assert node.port != taken.getsockname()[1]
            assert int(node.rpc("eth_chainId"), 16) == 31337


@pytest.mark.slow
def test_anvil_that_fails_to_start_leaves_nothing_behind(tmp_path: Path) -> None:
    before = set(Path(tempfile.gettempdir()).glob("blocktrust-anvil-*.log"))
    node = Anvil(chain_id=31337, mnemonic="not a valid mnemonic")
    with pytest.raises(AnvilError, match="did not start"):
        node.start()
    assert not node.running
    assert set(Path(tempfile.gettempdir()).glob("blocktrust-anvil-*.log")) <= before
    with pytest.raises(AnvilError, match="chain id must be a positive integer"):
        Anvil(chain_id=0)


def test_missing_anvil_binary_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BLOCKTRUST_ANVIL", str(tmp_path / "no-anvil"))
    with pytest.raises(AnvilError, match=r"BLOCKTRUST_ANVIL=.*no-anvil is not an executable"):
        Anvil()


@pytest.mark.slow
def test_snapshot_and_revert_rewind_the_chain(anvil: Anvil) -> None:
    start = int(anvil.rpc("eth_blockNumber"), 16)
    snap = anvil.snapshot()
    anvil.mine(5)
    assert int(anvil.rpc("eth_blockNumber"), 16) == start + 5
    anvil.revert(snap)
    assert int(anvil.rpc("eth_blockNumber"), 16) == start


# -- client construction and errors --------------------------------------------------------------


@pytest.mark.slow
def test_chain_id_mismatch_is_refused(anvil: Anvil) -> None:
    with pytest.raises(ChainIdMismatch, match=f"serves chain id 31337, configured {AMOY_CHAIN_ID}"):
        ChainClient(anvil.rpc_url, anvil.private_key(0), chain_id=AMOY_CHAIN_ID)
    assert ChainClient(anvil.rpc_url, anvil.private_key(0)).chain_id == 31337


@pytest.mark.slow
def test_unreachable_node_is_a_connection_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v2/provider-secret"
    with pytest.raises(ChainConnectionError) as e:
        ChainClient(url, "0x" + "11" * 32, timeout=2)
    assert "provider-secret" not in str(e.value)
    assert "127.0.0.1" in str(e.value)


@pytest.mark.parametrize(
    "key",
    ["", "0x1234", "zz" * 32, "0x" + "ab" * 33, "0x" + "00" * 32],
)
@pytest.mark.slow
def test_bad_private_key_is_a_config_error_that_hides_it(anvil: Anvil, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        ChainClient(anvil.rpc_url, key)
    if len(key) > 4:
        assert key.removeprefix("0x") not in str(e.value)


@pytest.mark.parametrize("url", ["127.0.0.1:8545", "ws://127.0.0.1:8545", "http://", ""])
def test_bad_rpc_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="RPC URL"):
        ChainClient(url, "0x" + "11" * 32)


def test_redact_url_hides_provider_keys() -> None:
    assert redact_url("https://polygon-amoy.g.alchemy.com/v2/KEY123abcdef") == (
        "https://polygon-amoy.g.alchemy.com/v2/***"
    )
    assert redact_url("https://user:pw@rpc.example:8443?apikey=x") == (
        "https://user:***@rpc.example:8443?apikey=***"
    )
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"


def test_settings_from_env_list_every_problem_and_hide_the_key() -> None:
    with pytest.raises(ConfigError) as e:
        ChainSettings.from_env({"CHAIN_ID": "amoy"})
    msg = str(e.value)
    assert "RPC_URL is not set" in msg
    assert "CHAIN_PRIVATE_KEY is not set" in msg
    assert "CHAIN_ID must be a positive integer" in msg
    key = "0x" + "5a" * 32
    s = ChainSettings.from_env(
        {
            "RPC_URL": "https://rpc-amoy.polygon.technology",
            "CHAIN_ID": "80002",
            "CHAIN_PRIVATE_KEY": key,
        }
    )
    assert s.chain_id == AMOY_CHAIN_ID
    assert "5a5a5a" not in repr(s)
    assert "<redacted>" in repr(s)
    with pytest.raises(ConfigError) as e:
        ChainSettings.from_env(
            {"RPC_URL": "http://x", "CHAIN_ID": "1", "CHAIN_PRIVATE_KEY": "0xabc"}
        )
    assert "0xabc" not in str(e.value)


def test_settings_accept_the_seed_deploy_names() -> None:
    key = "0x" + "5a" * 32
    s = ChainSettings.from_env(
        {"POLYGON_RPC_URL": "http://127.0.0.1:1", "CHAIN_ID": "31337", "DEPLOYER_PRIVATE_KEY": key}
    )
    assert (s.rpc_url, s.private_key) == ("http://127.0.0.1:1", key)


@pytest.mark.slow
def test_private_key_never_reaches_logs_reprs_or_errors(
    anvil: Anvil, caplog: pytest.LogCaptureFixture
) -> None:
    key = anvil.private_key(5)
    bare = key.removeprefix("0x").lower()
    caplog.set_level(logging.DEBUG)  # every logger, web3's included
    client = ChainClient(anvil.rpc_url, key)
    config = deploy_contracts(client)
    contracts = BlocktrustContracts(client, config)
    minted = contracts.mint_identity(anvil.accounts[6])
    with pytest.raises(ContractReverted) as e:
        contracts.mint_identity(anvil.accounts[6])
    texts = [caplog.text, repr(client), repr(contracts), str(e.value), repr(minted)]
    texts += [repr(vars(client)), str(client.__dict__)]
    for text in texts:
        assert bare not in text.lower()
    assert "IdentityNFT.mint mined" in caplog.text  # the client does log, just not the key


@pytest.mark.slow
def test_provider_api_key_in_the_url_never_reaches_logs(
    anvil: Anvil, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "apikey=PROVIDER-SECRET-7f3a"
    caplog.set_level(logging.DEBUG)
    client = ChainClient(f"{anvil.rpc_url}/?{secret}", anvil.private_key(0))
    deploy_contracts(client)
    assert "PROVIDER-SECRET" not in repr(client)
    # web3 and urllib3 did log the requests (so the check below is not vacuous)...
    assert any(r.name.startswith(("web3", "urllib3")) for r in caplog.records)
    # ...without the key.
    assert "PROVIDER-SECRET" not in caplog.text


# -- contracts_config.json -----------------------------------------------------------------------


@pytest.mark.slow
def test_contracts_config_round_trip(
    deployed: ContractsConfig, deployer: ChainClient, tmp_path: Path
) -> None:
    path = deployed.write(tmp_path / "contracts_config.json")
    data = json.loads(path.read_text())
    assert list(data) == list(CONTRACT_NAMES)  # the operators' format: one object per contract
    for name in CONTRACT_NAMES:
        assert set(data[name]) >= {"address", "abi"}
        assert data[name]["chainId"] == 31337
    loaded = load_contracts_config(path)
    assert loaded == deployed
    # A file in the operators' minimal format (no deployBlock / chainId) loads too and works.
    minimal = {n: {"address": data[n]["address"], "abi": data[n]["abi"]} for n in CONTRACT_NAMES}
    (tmp_path / "minimal.json").write_text(json.dumps(minimal))
    old = load_contracts_config(tmp_path / "minimal.json")
    assert old.chain_id is None
    assert old.fail_safe.deploy_block is None
    contracts = BlocktrustContracts(deployer, old)
    assert contracts.status_of(10**6) is IdentityStatus.NONE


def _config_error(tmp_path: Path, text: str) -> str:
    p = tmp_path / "contracts_config.json"
    p.write_text(text)
    with pytest.raises(ContractsConfigError) as e:
        load_contracts_config(p)
    return str(e.value)


@pytest.mark.slow
def test_contracts_config_errors_name_what_is_wrong(
    deployed: ContractsConfig, tmp_path: Path
) -> None:
    good = deployed.to_dict()
    assert "line 1" in _config_error(tmp_path, "{not json")
    assert "expected a JSON object" in _config_error(tmp_path, "[]")
    no_fs = {k: v for k, v in good.items() if k != "FailSafe"}
    assert "missing contract(s) FailSafe" in _config_error(tmp_path, json.dumps(no_fs))
    no_abi = {**good, "ProofRegistry": {"address": good["ProofRegistry"]["address"]}}
    assert "ProofRegistry: missing 'abi'" in _config_error(tmp_path, json.dumps(no_abi))
    bad_addr = {**good, "IdentityNFT": {**good["IdentityNFT"], "address": "0x1234"}}
    assert "IdentityNFT.address" in _config_error(tmp_path, json.dumps(bad_addr))
    two_chains = {**good, "FailSafe": {**good["FailSafe"], "chainId": 80002}}
    assert "disagree on chainId" in _config_error(tmp_path, json.dumps(two_chains))
    with pytest.raises(FileReadError) as e:
        load_contracts_config(tmp_path / "absent.json")
    assert e.value.filename == str(tmp_path / "absent.json")


@pytest.mark.slow
def test_config_for_another_chain_or_without_code_is_refused(
    deployed: ContractsConfig, deployer: ChainClient
) -> None:
    other = ContractsConfig(
        deployed.identity_nft, deployed.proof_registry, deployed.fail_safe, 80002
    )
    with pytest.raises(ContractsConfigError, match="chain id 80002"):
        BlocktrustContracts(deployer, other)
    empty = type(deployed.fail_safe)("0x" + "42" * 20, deployed.fail_safe.abi)
    no_code = ContractsConfig(deployed.identity_nft, deployed.proof_registry, empty, 31337)
    with pytest.raises(ContractsConfigError, match="FailSafe: no contract code"):
        BlocktrustContracts(deployer, no_code)


@pytest.mark.slow
def test_inputs_are_checked_before_anything_is_sent(bt: BlocktrustContracts) -> None:
    sent_before = bt.client.w3.eth.get_transaction_count(bt.client.address)
    with pytest.raises(ConfigError, match="document hash must be 32 bytes"):
        bt.register_proof(b"short")
    with pytest.raises(ConfigError, match="wallet must be a 0x-prefixed"):
        bt.mint_identity("not-an-address")
    with pytest.raises(ConfigError, match="reason hash"):
        bt.trigger_failsafe(1, "0xzz")
    with pytest.raises(ConfigError, match="root must be 32 bytes or hex text, got int"):
        bt.anchor_batch(123, 4)  # type: ignore[arg-type]
    assert bt.client.w3.eth.get_transaction_count(bt.client.address) == sent_before


@pytest.mark.slow
def test_a_transaction_not_mined_in_time_is_reported() -> None:
    with Anvil() as node:
        client = ChainClient(node.rpc_url, node.private_key(0), timeout=1)
        node.rpc("evm_setAutomine", [False])
        with pytest.raises(
            TransactionFailed,
            match=r"deploy IdentityNFT: transaction 0x[0-9a-f]{64} "
            r"not mined within 1",
        ):
            deploy_artifact(client, "IdentityNFT", client.address)
        node.mine(1)
        assert client.w3.eth.get_transaction_count(client.address) == 1  # it was sent, just late


@pytest.mark.slow
def test_node_refusal_is_a_typed_error_without_the_key(anvil: Anvil) -> None:
    from eth_account import Account

    poor = Account.create()
    key = "0x" + bytes(poor.key).hex()
    client = ChainClient(anvil.rpc_url, key)
    with pytest.raises(TransactionFailed, match="refused") as e:
        deploy_artifact(client, "IdentityNFT", client.address)  # no funds for gas
    assert key[2:] not in str(e.value)


@pytest.mark.slow
def test_views_check_their_arguments(bt: BlocktrustContracts) -> None:
    with pytest.raises(ConfigError, match="leaf index"):
        bt.verify_inclusion(b"\1" * 32, -1, 4, [], b"\2" * 32)
    with pytest.raises(ConfigError, match="token id"):
        bt.status_of(True)
    with pytest.raises(ConfigError, match="no role 'OWNER_ROLE'"):
        bt.has_role("IdentityNFT", "OWNER_ROLE", bt.client.address)
    with pytest.raises(ContractsConfigError, match="unknown contract 'Nope'"):
        bt.contract("Nope")


@pytest.mark.slow
def test_full_flow_through_the_client(bt: BlocktrustContracts, anvil: Anvil) -> None:
    wallet = anvil.accounts[9]
    token = bt.mint_identity(wallet).token_id
    doc = "0x" + "ab" * 32
    r = bt.register_proof(doc, signer=wallet)
    proof = bt.get_proof(doc)
    assert proof is not None
    assert proof.signer == wallet
    assert proof.block_number == r.block_number
    bt.trigger_failsafe(token, "0x" + "cd" * 32)
    assert bt.status_of(token) is IdentityStatus.CANCELLED
    with pytest.raises(ContractReverted, match="identity cancelled"):
        bt.register_proof("0x" + "ef" * 32, signer=wallet)


@pytest.mark.slow
def test_concurrent_sends_from_threads_get_distinct_nonces(bt: BlocktrustContracts) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from eth_account import Account

    wallets = [str(Account.create().address) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        minted = list(pool.map(bt.mint_identity, wallets))
    assert len({m.token_id for m in minted}) == len(wallets)
    for m in minted:
        assert bt.token_of(m.wallet) == m.token_id


def _deploy_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parent.parent
    full_env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{root / 'python'}:{root}",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "validate_all_flows.embedded.deploy", *args],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.slow
def test_deploy_command_writes_a_working_config(
    anvil: Anvil, deployer: ChainClient, tmp_path: Path
) -> None:
    key = anvil.private_key(4)
    out = tmp_path / "contracts_config.json"
    env = {"RPC_URL": anvil.rpc_url, "CHAIN_ID": "31337", "CHAIN_PRIVATE_KEY": key}
    proc = _deploy_cli(env, "--out", str(out), "--operator", anvil.accounts[0])
    assert proc.returncode == 0, proc.stderr
    assert key[2:] not in proc.stdout + proc.stderr
    assert f"wrote {out}" in proc.stdout
    config = load_contracts_config(out)
    contracts = BlocktrustContracts(deployer, config)  # account 0 is the operator
    assert contracts.has_role("IdentityNFT", "MINTER_ROLE", anvil.accounts[0])
    assert contracts.has_role("IdentityNFT", "ADMIN_ROLE", anvil.accounts[4])
    assert contracts.mint_identity(anvil.accounts[3]).token_id == 1


@pytest.mark.slow
def test_deploy_command_exit_codes(anvil: Anvil, tmp_path: Path) -> None:
    bad = _deploy_cli({"RPC_URL": anvil.rpc_url, "CHAIN_ID": "31337"})
    assert bad.returncode == 2
    assert "CHAIN_PRIVATE_KEY is not set" in bad.stderr
    env = {"RPC_URL": anvil.rpc_url, "CHAIN_ID": "80002", "CHAIN_PRIVATE_KEY": anvil.private_key(4)}
    wrong_chain = _deploy_cli(env, "--out", str(tmp_path / "c.json"))
    assert wrong_chain.returncode == 1
    assert "serves chain id 31337, configured 80002" in wrong_chain.stderr
    assert not (tmp_path / "c.json").exists()
