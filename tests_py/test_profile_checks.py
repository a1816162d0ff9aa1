"""Profile-driven checks against small real servers: contracts from v1.4-style address variables
on anvil, the webhook signing schemes, API-key routes from an OpenAPI document, and the monitor
and pytest plugin refusing a bad profile before they start."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import APIKeyHeader
from fix_deployments import serve_asgi
from fix_wsgi import serve_wsgi

from validate_all_flows.checks import Status, run_checks
from validate_all_flows.cli import main
from validate_all_flows.embedded.chain import ContractsConfig
from validate_all_flows.profile import load_profile
from validate_all_flows.target import Target

SECRET = "whsec_" + "7" * 24


def _profile(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "p.yaml"
    f.write_text("schema: blocktrust.profile/1\nname: t\n" + text)
    return f


@pytest.mark.slow
def test_contracts_from_v14_address_variables_and_abi_files(
    deployed: ContractsConfig, anvil: Any, tmp_path: Path
) -> None:
    names = {"IdentityNFT": "IDENTITY_NFT_CONTRACT_ADDRESS",
             "ProofRegistry": "PROOF_REGISTRY_CONTRACT_ADDRESS",
             "FailSafe": "FAILSAFE_CONTRACT_ADDRESS"}  # fmt: skip
    doc = deployed.to_dict()
    for name in names:
        (tmp_path / f"{name}.abi.json").write_text(json.dumps(doc[name]["abi"]))
    env = {var: doc[name]["address"] for name, var in names.items()}
    abi = "{" + ", ".join(f"{n}: {n}.abi.json" for n in names) + "}"
    with_abi = _profile(
        tmp_path, f"extends: blocktrust-v1.4\nchain: {{contracts: {{abi: {abi}}}}}\n"
    )
    for profile, said in ((with_abi, "ABI matches"), ("blocktrust-v1.4", "bytes of code")):
        t = Target(rpc_url=anvil.rpc_url, env=dict(env)).use_profile(load_profile(profile))
        (r,) = run_checks(t, {"chain"})
        assert r.status is Status.PASS, r
        assert all(said in e for e in r.evidence), r.evidence
    # An address variable that names no contract is caught; a missing one skips, naming it.
    env["FAILSAFE_CONTRACT_ADDRESS"] = "0x" + "11" * 20
    t = Target(rpc_url=anvil.rpc_url, env=env).use_profile(load_profile("blocktrust-v1.4"))
    (r,) = run_checks(t, {"chain"})
    assert r.status is Status.FAIL
    assert "FailSafe: no contract code at 0x1111" in r.evidence[0]
    del env["FAILSAFE_CONTRACT_ADDRESS"]
    (r,) = run_checks(t, {"chain"})
    assert (r.status, r.found) == (Status.SKIP, "not given: FAILSAFE_CONTRACT_ADDRESS")


def _webhook_app(scheme: str, verify: bool) -> Any:
    """A WSGI app whose /hook checks (or, ``verify`` False, ignores) the scheme's signature."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        mac = hmac.new(SECRET.encode(), digestmod=hashlib.sha256)
        if scheme == "stripe":
            parts = dict(
                p.split("=", 1)
                for p in environ.get("HTTP_STRIPE_SIGNATURE", "").split(",")
                if "=" in p
            )
            mac.update(parts.get("t", "").encode() + b"." + body)
            ok = hmac.compare_digest(parts.get("v1", ""), mac.hexdigest())
        else:
            mac.update(body)
            got = environ.get("HTTP_X_HUB_SIGNATURE_256", "")
            ok = hmac.compare_digest(got, "sha256=" + mac.hexdigest())
        status = "200 OK" if ok or not verify else "401 Unauthorized"
        if environ["PATH_INFO"] != "/hook":
            status = "404 Not Found"
        start_response(status, [("Content-Type", "application/json")])
        return [b"{}"]

    return app


@pytest.mark.parametrize("scheme", ["stripe", "hmac-sha256"])
def test_webhook_schemes_refuse_and_a_lax_webhook_fails(scheme: str, tmp_path: Path) -> None:
    profile = load_profile(
        _profile(tmp_path, f"security: {{webhook: {{path: /hook, scheme: {scheme}}}}}\n")
    )
    for verify, want in ((True, Status.PASS), (False, Status.FAIL)):
        with serve_wsgi(_webhook_app(scheme, verify)) as url:
            t = Target(base_url=url).use_profile(profile)
            by_id = {r.id: r for r in run_checks(t, {"security"})}
        assert by_id["security.webhook_signature"].status is want, by_id
    # A path the service does not have is the profile's mistake, not the service's weakness.
    profile = load_profile(
        _profile(tmp_path, f"security: {{webhook: {{path: /nope, scheme: {scheme}}}}}\n")
    )
    with serve_wsgi(_webhook_app(scheme, True)) as url:
        by_id = {
            r.id: r for r in run_checks(Target(base_url=url).use_profile(profile), {"security"})
        }
    hook = by_id["security.webhook_signature"]
    assert (hook.status, hook.found) == (
        Status.ERROR,
        "the profile names a path the service does not have",
    )


def _key_service(lax: bool) -> FastAPI:
    app = FastAPI(title="keys", version="1.0")
    key = APIKeyHeader(name="X-API-Key")

    def role(k: str = Depends(key)) -> str:
        if k != "right-key" and not lax:
            raise HTTPException(401, "bad key")
        return "admin"

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> dict[str, str]:
        return {"database": "ok", "redis": "ok"}

    @app.get("/metrics")
    def metrics() -> Any:
        from fastapi.responses import PlainTextResponse

        return PlainTextResponse('# TYPE up gauge\nup 1\nrequests_total{route="/x"} 3\n')

    @app.get("/v1/documents/{doc_id}")
    def document(doc_id: int, r: str = Depends(role)) -> dict[str, int]:
        return {"id": doc_id}

    @app.get("/v1/audit")
    def audit(r: str = Depends(role)) -> list[str]:
        return []

    return app


@pytest.mark.parametrize("lax", [False, True])
def test_api_key_service_probes_the_openapi_routes(lax: bool) -> None:
    with serve_asgi(_key_service(lax)) as url:
        t = Target(base_url=url).use_profile(load_profile("api-key-service"))
        by_id = {r.id: r for r in run_checks(t, {"http", "security"})}
    assert by_id["http.metrics"].status is Status.PASS, by_id["http.metrics"]
    assert by_id["http.metrics"].found.startswith("2 samples parse")
    auth = by_id["security.auth_required"]
    if lax:
        assert auth.status is Status.FAIL
        assert auth.evidence == ["GET /v1/audit with forged API key: 200",
                                 "GET /v1/documents/1 with forged API key: 200"]  # fmt: skip
    else:
        assert auth.status is Status.PASS, auth
        assert auth.found == "/v1/audit, /v1/documents/1 missing and forged API keys"


def test_the_monitor_and_the_pytest_plugin_refuse_a_bad_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _profile(tmp_path, "http: {ready: ready}\n")
    assert (
        main(["monitor", "--once", "--profile", str(bad), "--base-url", "http://127.0.0.1:9"]) == 2
    )
    assert f"--profile {bad}: http.ready: must be a path" in capsys.readouterr().err
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "validate_all_flows.pytest_plugin", "--pyargs",
         "validate_all_flows", "--blocktrust-profile", str(bad), "--blocktrust-url",
         "http://127.0.0.1:9", "-q"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={
            "PYTHONPATH": f"{root / 'python'}:{root}",
            "PATH": "/usr/bin:/bin",
            # -p loads the plugin; an installed package would register it again.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        },
    )  # fmt: skip
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "http.ready: must be a path" in proc.stderr
