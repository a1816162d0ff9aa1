"""``python -m validate_all_flows.embedded.service``: the reference service on real infrastructure.

Reads its settings from the environment (see ServiceSettings.from_env), applies pending migrations
with ``--migrate``, starts the chain worker when a chain is configured, and serves with uvicorn.
"""

from __future__ import annotations

import argparse
import sys

from validate_all_flows.embedded.service.settings import ServiceSettings, SettingsError


def main(argv: list[str] | None = None) -> int:
    """Runs the service until interrupted; 2 when the environment is not fit to run."""
    p = argparse.ArgumentParser(prog="python -m validate_all_flows.embedded.service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--migrate", action="store_true", help="apply pending migrations first")
    args = p.parse_args(argv)
    try:
        settings = ServiceSettings.from_env()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2

    import uvicorn

    from blocktrust_native.apikeys import ApiKeyCodec
    from blocktrust_native.apikeys.store import PgKeyStore
    from blocktrust_native.pool import Pool
    from validate_all_flows.embedded.chain import BlocktrustContracts, load_contracts_config
    from validate_all_flows.embedded.migrate import apply_migrations
    from validate_all_flows.embedded.service.app import Services, create_app
    from validate_all_flows.embedded.service.worker import ChainWorker
    from validate_all_flows.embedded.web3_client import ChainClient

    with Pool(settings.database_url, min_size=2, max_size=20) as pool:
        if args.migrate:
            apply_migrations(pool, log=print)
        contracts = worker = None
        if settings.chain is not None:
            client = ChainClient.from_settings(settings.chain)
            config = load_contracts_config(settings.chain.contracts_config)
            contracts = BlocktrustContracts(client, config)
            worker = ChainWorker(pool, contracts, settings.worker_interval).start()
        try:
            codec = ApiKeyCodec("btk_live", settings.api_key_salt.encode())
            keys = PgKeyStore(pool, codec)
            app = create_app(Services(settings, pool, contracts, keys))
            # The app takes the client address from TRUSTED_PROXIES only; uvicorn must not
            # rewrite it from X-Forwarded-For on its own.
            uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=False)
        finally:
            if worker is not None:
                worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
