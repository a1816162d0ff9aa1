"""Smoke suite for an installed wheel (scripts/wheel_test runs it with system libraries hidden).

Runs with the wheel's own venv, from a directory outside the source tree, so only the installed
package is imported. Needs BLOCKTRUST_SMOKE_DSN (a PostgreSQL server) and BLOCKTRUST_SMOKE_HTTPS
(a loopback HTTPS server whose CA only the system store of this environment trusts).
Prints one line per check and closes with "N passed, N failed"; exits 1 on any failure.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import traceback
from collections.abc import Callable

# Import names of the optional extras ([embedded], [listener], [test]): a module that needs one
# of them is reported as such, not as broken. Anything else missing is a failure.
EXTRAS_IMPORTS = {
    "fastapi", "uvicorn", "multipart", "python_multipart", "jwt", "web3", "eth_account",
    "eth_abi", "eth_utils", "pytest", "starlette", "pydantic",
}  # fmt: skip

HIDDEN_LIBS = ("libpq", "libssl", "libcrypto", "argon2", "sodium", "hiredis")
CHECKS: list[tuple[str, Callable[[], str]]] = []


def check(fn: Callable[[], str]) -> Callable[[], str]:
    CHECKS.append((fn.__name__, fn))
    return fn


@check
def installed_not_source() -> str:
    import blocktrust_native

    path = os.path.dirname(blocktrust_native.__file__)
    assert "site-packages" in path, f"imported from {path}, not from the venv"
    return path


@check
def every_module_imports() -> str:
    imported, needs_extra = 0, []
    for top in ("blocktrust_native", "validate_all_flows"):
        pkg = importlib.import_module(top)
        names = [top] + [
            m.name for m in pkgutil.walk_packages(pkg.__path__, top + ".", onerror=lambda n: None)
        ]
        # A __main__ module runs its program when imported: its package's import covers it.
        for name in (n for n in names if not n.endswith(".__main__")):
            try:
                importlib.import_module(name)
                imported += 1
            except ImportError as exc:
                missing = (exc.name or "").split(".")[0]
                if missing not in EXTRAS_IMPORTS:
                    raise AssertionError(f"{name}: {exc}") from exc
                needs_extra.append(f"{name} ({missing})")
    assert imported >= 40, imported
    return f"{imported} modules import; {len(needs_extra)} need an extra: {', '.join(needs_extra)}"


@check
def native_links_nothing_hidden() -> str:
    from blocktrust_native import _native

    with open(f"/proc/{os.getpid()}/maps") as f:
        libs = {line.split()[-1] for line in f if ".so" in line}
    system = [
        p for p in libs
        if any(n in os.path.basename(p) for n in HIDDEN_LIBS)
    ]  # fmt: skip
    assert not system, f"{_native.__file__} loaded {system}"
    return "no libpq/libssl/libcrypto/libargon2/libsodium/libhiredis mapped from the system"


@check
def digest_known_answers() -> str:
    from blocktrust_native import digest

    # FIPS 180-2 "abc"; Keccak-256 of the empty string (Ethereum's, not SHA3-256).
    assert digest.sha256(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert digest.keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert digest.sha3_256(b"").hex() == (
        "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
    )
    return "sha256('abc'), keccak256(''), sha3-256('')"


@check
def apikey_known_answer() -> str:
    from blocktrust_native import apikeys

    # A token made once by this library; its digest is HMAC-SHA256(secret, token), checked here
    # against a fixed value computed with Python's hmac module.
    ring = apikeys.KeyRing("btk_smoke", b"smoke server secret, 32 bytes ok")
    token = "btk_smoke_0AxgMm0GKP1uKLtP70Ej8bplD3t8DH9Z1j9llM4C31it4S"
    digest = "0ba698832291af23e6008630f618a2130a59525019fb5a9de755d46b5f39970b"
    assert ring.parse(token).key_id == "0AxgMm0GKP1u"
    assert ring.digest(token).hex() == digest
    assert ring.verify(token, bytes.fromhex(digest))
    assert not ring.verify(token, bytes(32))
    return "fixed token: checksum parses, digest = HMAC-SHA256 known answer, verify refuses zeros"


@check
def password_known_answer() -> str:
    from blocktrust_native import passwords

    # Made by argon2-cffi (the reference C implementation): an independent known answer.
    phc = (
        "$argon2id$v=19$m=1024,t=2,p=1$c21va2Utc2FsdC0xMjM0NQ"
        "$kDTcXFB+p+tEfWagGDHb6yiXSVvai6s9n24E14OYhGU"
    )
    assert passwords.verify_password("correct horse", phc)
    assert not passwords.verify_password("correct horsf", phc)
    return "an argon2-cffi PHC string verifies; a wrong password does not"


@check
def pool_query() -> str:
    from blocktrust_native.pool import Pool

    with Pool(os.environ["BLOCKTRUST_SMOKE_DSN"], min_size=1, max_size=2) as pool:
        rows = pool.execute("SELECT $1::int + 1 AS n, current_setting('server_version')", (41,))
        assert rows[0][0] == 42, rows
        return f"SELECT 41 + 1 = 42 on PostgreSQL {rows[0][1]}"


@check
def flow_over_https() -> str:
    from blocktrust_native.flows import FlowSpec, run_flow

    spec = FlowSpec.from_dict(
        {
            "name": "smoke",
            "steps": [
                {
                    "name": "hello",
                    "request": {"path": "/hello"},
                    "assert": {"status": 200, "json": {"/ok": True}},
                }
            ],
        }
    )
    report = run_flow(spec, os.environ["BLOCKTRUST_SMOKE_HTTPS"], iterations=2)
    reasons = [f.reason for f in report.failures]
    assert report.requests == 2, reasons
    assert report.failed_requests == 0, reasons
    return f"2 requests to {os.environ['BLOCKTRUST_SMOKE_HTTPS']} verified by the system CA store"


def _hello_with(env: dict[str, str]) -> list[str]:
    """The failure reasons of one request to the HTTPS server with `env` set for the call."""
    from blocktrust_native.flows import FlowSpec, run_flow

    spec = FlowSpec.from_dict(
        {"name": "ca", "steps": [{"name": "hello", "request": {"path": "/hello"}}]}
    )
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        report = run_flow(spec, os.environ["BLOCKTRUST_SMOKE_HTTPS"], iterations=1)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return [f.reason for f in report.failures]


@check
def ssl_cert_file_and_dir_override_the_store() -> str:
    # SSL_CERT_FILE naming a bundle without the test CA: the system store is no longer used ...
    empty = os.path.join(os.environ["HOME"], "empty.pem")
    with open(empty, "w"):
        pass
    refused = _hello_with({"SSL_CERT_FILE": empty, "SSL_CERT_DIR": empty + ".d"})
    assert refused, "trusted the system store despite SSL_CERT_FILE"
    assert "certificate" in refused[0].lower() or "verify" in refused[0].lower(), refused
    # ... and SSL_CERT_DIR holding only the test CA (hashed names) is enough to trust it again.
    accepted = _hello_with(
        {"SSL_CERT_FILE": empty, "SSL_CERT_DIR": os.environ["BLOCKTRUST_SMOKE_CA_DIR"]}
    )
    assert not accepted, accepted
    return f"SSL_CERT_FILE without the CA refused ({refused[0][:50]}); SSL_CERT_DIR with it: ok"


@check
def validator_self_check() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "validate_all_flows", "--self-check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip().splitlines()[-1]


def main() -> int:
    passed = failed = 0
    for name, fn in CHECKS:
        try:
            detail = fn()
            passed += 1
            print(f"PASS {name}: {detail}", flush=True)
        except (Exception, SystemExit):
            failed += 1
            print(f"FAIL {name}:\n{traceback.format_exc()}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
