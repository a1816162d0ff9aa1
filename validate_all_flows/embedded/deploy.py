"""Deploys IdentityNFT, ProofRegistry and FailSafe to the chain named by the environment and writes
contracts_config.json (the operators' format).

    RPC_URL=https://rpc-amoy.polygon.technology CHAIN_ID=80002 CHAIN_PRIVATE_KEY=... \\
        python -m validate_all_flows.embedded.deploy [--out FILE] [--operator 0x...]

The private key is read from ``CHAIN_PRIVATE_KEY`` only (never from the command line, where other
users of the machine could read it). Exit status: 0 deployed, 1 the chain refused or failed,
2 bad settings or arguments.

Keys and roles: ``--admin`` (a multisig or a cold key; default the deploying key) holds ADMIN_ROLE;
``--operator`` (the service's hot key) gets only mint, register-proof and trigger roles. When the
deploying key is the admin it sends the grants itself; otherwise it prints each grant (contract,
role, account, calldata) for the admin to sign, e.g. as multisig transactions.
"""

from __future__ import annotations

import argparse
import sys

from blocktrust_native.errors import ChainError, ConfigError
from validate_all_flows.embedded.chain import deploy_contracts, role_grants
from validate_all_flows.embedded.web3_client import ChainClient, ChainSettings

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m validate_all_flows.embedded.deploy",
        description="Deploy the Blocktrust contracts and write contracts_config.json.",
    )
    parser.add_argument("--out", help="where to write the config (default: $CONTRACTS_CONFIG)")
    parser.add_argument("--admin", help="ADMIN_ROLE holder (default: the deploying account)")
    parser.add_argument(
        "--operator", help="backend account for mint/register/trigger (default: the deployer)"
    )
    args = parser.parse_args(argv)
    try:
        settings = ChainSettings.from_env()
        client = ChainClient.from_settings(settings)
        print(f"deploy: {client!r}", file=sys.stderr)
        config = deploy_contracts(client, admin=args.admin, operator=args.operator)
        path = config.write(args.out or settings.contracts_config)
    except ConfigError as e:
        print(f"deploy: {e}", file=sys.stderr)
        return 2
    except ChainError as e:
        print(f"deploy: {e}", file=sys.stderr)
        return 1
    for name in ("IdentityNFT", "ProofRegistry", "FailSafe"):
        entry = config.entry(name)
        print(f"{name:<14} {entry.address} (block {entry.deploy_block})")
    print(f"wrote {path}")
    admin = (args.admin or client.address).lower()
    operator = args.operator or client.address
    if operator.lower() == admin:
        print("deploy: warning: the operator (hot key) is also the admin", file=sys.stderr)
    if admin != client.address.lower():
        print(f"grants for the admin {args.admin} to send (to, data):")
        for g in role_grants(client, config, operator):
            print(
                f"  {g.contract}.grantRole({g.role}, {g.account}): to {g.address} data {g.calldata}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
