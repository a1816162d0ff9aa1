"""Chain checks: contract code at every configured address, and the config's ABI matches it."""

from __future__ import annotations

from blocktrust_native.digest import keccak256
from blocktrust_native.errors import ContractsConfigError, FileReadError
from blocktrust_native.jsonrpc import JsonRpcClient
from blocktrust_native.listener.contracts import CONTRACT_NAMES
from validate_all_flows.check_model import CheckResult, Status, check
from validate_all_flows.target import Target


def _selectors(abi: list[dict[str, object]]) -> dict[str, bytes]:
    out = {}
    for item in abi:
        if item.get("type") == "function":
            inputs = item.get("inputs")
            params = inputs if isinstance(inputs, list) else []
            types = ",".join(str(i["type"]) for i in params if isinstance(i, dict))
            sig = f"{item['name']}({types})"
            out[sig] = keccak256(sig.encode())[:4]
    return out


@check("chain")
def contracts(t: Target) -> list[CheckResult]:
    """Every configured contract has code, and its ABI's functions exist in that code."""
    title = "contract code at every configured address, matching the config's ABI"
    if t.profile.chain is None:
        why = f"the profile ({t.profile.name}) declares no contracts (chain)"
        return [CheckResult("chain.contracts", title, Status.SKIP, why)]
    missing, rpc_url = t.contracts_missing(), t.rpc_url
    if missing or rpc_url is None:  # contracts_missing() names a missing --rpc-url
        return [CheckResult("chain.contracts", title, Status.SKIP, f"not given: {missing}")]
    try:
        config = t.contracts_config()
    except (ContractsConfigError, FileReadError, OSError, ValueError) as exc:
        return [
            CheckResult(
                "chain.contracts",
                title,
                Status.FAIL,
                str(exc),
                fix="write contracts_config.json with the deploy command "
                "(python -m validate_all_flows.embedded.deploy)",
            )
        ]
    evidence, problems = [], []
    rpc = JsonRpcClient(rpc_url, request_timeout=10.0)
    chain_id = int(str(rpc.call("eth_chainId")), 16)
    if config.chain_id is not None and config.chain_id != chain_id:
        problems.append(f"config is for chain {config.chain_id}, the node serves {chain_id}")
    for name in CONTRACT_NAMES:
        entry = config.entry(name)
        code = str(rpc.call("eth_getCode", [entry.address, "latest"]))
        raw = bytes.fromhex(code[2:]) if code.startswith("0x") else b""
        if not raw:
            problems.append(f"{name}: no contract code at {entry.address}")
            continue
        absent = [sig for sig, sel in _selectors(entry.abi).items() if sel not in raw]
        if absent:
            problems.append(f"{name}: functions of the ABI not in the code: {', '.join(absent)}")
        else:
            evidence.append(f"{name} at {entry.address}: {len(raw)} bytes of code, ABI matches")
    if problems:
        return [
            CheckResult(
                "chain.contracts",
                title,
                Status.FAIL,
                f"{len(problems)} problem(s)",
                evidence=problems + evidence,
                fix="point contracts_config.json at the deployed contracts of this chain, "
                "or redeploy and rewrite it",
            )
        ]
    return [CheckResult("chain.contracts", title, Status.PASS, f"chain {chain_id}", evidence)]
