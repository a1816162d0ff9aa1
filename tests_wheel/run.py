"""Tests built wheels and the sdist where the system's C libraries are hidden (scripts/wheel_test).

For each wheel: a PostgreSQL cluster and a loopback HTTPS server start here, outside; then, in a
mount namespace where tests_wheel/hide_libs.sh has hidden libpq, libpqxx, OpenSSL, libargon2 and
libsodium (shared libraries and headers) and made a test CA the only system CA bundle, a fresh
venv of the wheel's interpreter installs the wheel and its dependencies from a local wheelhouse
(--no-index) and runs tests_wheel/smoke.py. With --sdist: building the sdist where only the dev
packages are hidden must stop at configure time with the one missing-packages message.
"""

from __future__ import annotations

import argparse
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from validate_all_flows.embedded.postgres import TempPostgres  # noqa: E402

HIDE = ["unshare", "-m", "--propagation", "private", "bash", str(ROOT / "tests_wheel/hide_libs.sh")]


def make_ca(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for localhost/127.0.0.1 signed by it."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=blocktrust wheel test CA", "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf",
            "-out", "server.pem")  # fmt: skip
    return d / "ca.pem", d / "server.pem", d / "server.key"


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"ok": self.path == "/hello"}).encode()
        self.send_response(200 if self.path == "/hello" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def https_server(cert: Path, key: Path) -> ThreadingHTTPServer:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def wheelhouse(python: str, whl: Path) -> Path:
    """The wheel's dependencies for `python`, downloaded once (build/wheels/wheelhouse-<tag>)."""
    tag = subprocess.check_output(
        [python, "-c", "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')"],
        text=True,
    ).strip()
    house = ROOT / "build/wheels" / f"wheelhouse-{tag}"
    reqs = subprocess.check_output(
        [python, "-c", "import sys, zipfile, email; z = zipfile.ZipFile(sys.argv[1]); "
         "m = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA')); "
         "msg = email.message_from_bytes(z.read(m)); "
         "print('\\n'.join(r for r in msg.get_all('Requires-Dist') or [] if 'extra ==' not in r))",
         str(whl)],
        text=True,
    ).split()  # fmt: skip
    stamp = house / ".requirements"
    if not stamp.exists() or stamp.read_text() != "\n".join(reqs):
        house.mkdir(parents=True, exist_ok=True)
        if reqs:
            subprocess.run(
                [
                    python,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--only-binary=:all:",
                    "-d",
                    str(house),
                    *reqs,
                ],
                check=True,
            )
        stamp.write_text("\n".join(reqs))
    return house


def test_wheel(python: str, whl: Path, pg: TempPostgres, https_url: str, ca: Path) -> bool:
    house = wheelhouse(python, whl)
    with tempfile.TemporaryDirectory(prefix="blocktrust-wheel-") as tmp:
        venv = Path(tmp) / "venv"
        ca_dir = Path(tmp) / "ca_dir"  # SSL_CERT_DIR holding only the test CA (c_rehash layout)
        ca_dir.mkdir()
        shutil.copy(ca, ca_dir / "test-ca.pem")
        subprocess.run(["openssl", "rehash", str(ca_dir)], check=True, capture_output=True)
        inner = (
            f"set -e; {python} -m venv {venv}; "
            f"{venv}/bin/python -m pip install -q --no-index --find-links {house} {whl}; "
            f"cd {tmp} && {venv}/bin/python {ROOT}/tests_wheel/smoke.py"
        )
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": tmp,
            "BLOCKTRUST_SYSTEM_CA": str(ca),
            "BLOCKTRUST_SMOKE_DSN": pg.dsn(),
            "BLOCKTRUST_SMOKE_HTTPS": https_url,
            "BLOCKTRUST_SMOKE_CA_DIR": str(ca_dir),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        print(f"== smoke: {whl.name} with {python}", flush=True)
        return subprocess.run([*HIDE, "--runtime", "bash", "-c", inner], env=env).returncode == 0


def test_sdist(sdist: Path) -> bool:
    """The sdist without the dev packages: one configure-time message naming them, no compiler."""
    with tempfile.TemporaryDirectory(prefix="blocktrust-sdist-") as tmp:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
               "--no-index", "-w", tmp, str(sdist)]  # fmt: skip
        print(f"== sdist without dev packages: {sdist.name}", flush=True)
        out = subprocess.run([*HIDE, "--dev", *cmd], capture_output=True, text=True, cwd=tmp)
    text = out.stdout + out.stderr
    flat = " ".join(text.split())  # CMake wraps its messages
    problems = []
    if out.returncode == 0:
        problems.append("the build succeeded")
    if flat.count("these development packages are missing") != 1:
        problems.append("the missing-packages message is not there exactly once")
    names = ["libssl-dev", "libpq-dev", "libpqxx-dev", "libargon2-dev", "libsodium-dev",
             "libhiredis-dev", "openssl-devel", "libpq-devel", "libpqxx-devel",
             "libargon2-devel", "libsodium-static", "hiredis-devel"]  # fmt: skip
    problems += [f"{name} not named" for name in names if name not in flat]
    if "Building CXX object" in text or ".cpp.o" in text:
        problems.append("a compiler ran")
    for p in problems:
        print(f"FAIL sdist: {p}")
    if problems:
        print(text[-4000:])
        return False
    start = text.index("blocktrust-native cannot be built")
    msg = text[start : text.index("Call Stack", start)].rstrip()
    print(f"PASS sdist: stopped at configure time:\n{msg}")
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", action="append", default=[], help="interpreter per wheel, in order")
    ap.add_argument("--sdist", type=Path, help="also check this sdist without dev packages")
    ap.add_argument("wheels", nargs="*", type=Path)
    # Intermixed: scripts/wheels passes "--python PY WHEEL" pairs, which parse_args rejects
    # after the first pair.
    args = ap.parse_intermixed_args()
    if len(args.python) != len(args.wheels):
        ap.error("give one --python per wheel")
    results = []
    if args.wheels:
        with tempfile.TemporaryDirectory(prefix="blocktrust-ca-") as d, TempPostgres() as pg:
            ca, cert, key = make_ca(Path(d))
            srv = https_server(cert, key)
            url = f"https://localhost:{srv.server_address[1]}"
            try:
                for py, whl in zip(args.python, args.wheels, strict=True):
                    results.append(test_wheel(py, whl.resolve(), pg, url, ca))
            finally:
                srv.shutdown()
    if args.sdist:
        results.append(test_sdist(args.sdist.resolve()))
    passed = sum(results)
    print(f"wheel_test: {passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
