"""The Redis-backed limiter on a real redis-server of our own: one EVALSHA per decision (the
script loaded once), every algorithm against the reference model, 4 processes x 16 threads on one
key, the failure policy across a server restart, AUTH, TLS, URL errors, and the ASGI middleware."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fix_redis import SentinelSet
from fix_wait import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ratelimit_middleware import serve_asgi
from test_ratelimit_model import Model

from blocktrust_native.errors import (
    ConfigError,
    RateLimitExceeded,
    RedisConnectionError,
    RedisError,
)
from blocktrust_native.ratelimit import ManualClock, RateLimiter
from blocktrust_native.ratelimit.middleware import RateLimitMiddleware
from blocktrust_native.ratelimit.redis import RedisRateLimiter
from blocktrust_native.redis import RedisClient, key_slot
from validate_all_flows.embedded.postgres import free_port
from validate_all_flows.embedded.redis import TempRedis

US = 1000  # ns


def ns() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def client(redis_server: TempRedis) -> RedisClient:
    return RedisClient(redis_server.url)


def commandstats(client: RedisClient) -> dict[str, int]:
    text = client.execute("INFO", "commandstats").decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[len("cmdstat_") :].split(":", 1)
            out[name] = int(rest.split("calls=")[1].split(",")[0])
    return out


def test_burst_then_exact_denial_on_the_server_clock(client: RedisClient) -> None:
    limiter = RedisRateLimiter(client, "5/15minutes", namespace=ns())
    got = [limiter.hit("login:ann") for _ in range(5)]
    assert [d.allowed for d in got] == [True] * 5
    assert [d.remaining for d in got] == [4, 3, 2, 1, 0]
    denied = limiter.hit("login:ann")
    assert not denied.allowed
    assert not denied.degraded
    assert 170 < denied.retry_after <= 180  # one unit back 180 s after the first hit
    assert 890 < denied.reset_after <= 900
    assert limiter.headers(denied)["Retry-After"] == str(-(-denied.retry_after_ns // 10**9))
    with pytest.raises(RateLimitExceeded):
        limiter.check("login:ann")
    assert limiter.hit("login:bob").remaining == 4
    assert limiter.test("login:bob").remaining == 4  # test consumes nothing
    assert limiter.reset("login:ann") is True
    assert limiter.reset("login:ann") is False
    assert limiter.hit("login:ann").remaining == 4


def test_one_evalsha_per_decision_whatever_the_rules_and_the_script_is_sent_once(
    redis_server: TempRedis,
) -> None:
    client = RedisClient(redis_server.url)
    client.execute("SCRIPT", "FLUSH")
    before = commandstats(client)
    limiter = RedisRateLimiter(client, "2/second;3/hour;100/day", "sliding_window", namespace=ns())
    decisions = [limiter.hit("k") for _ in range(10)]
    after = commandstats(client)
    assert after.get("eval", 0) - before.get("eval", 0) == 1  # NOSCRIPT once, then by hash
    assert after["evalsha"] - before.get("evalsha", 0) == 10
    assert [d.allowed for d in decisions] == [True, True] + [False] * 8
    assert decisions[2].rule_index == 0


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window", "fixed_window"])
def test_state_is_one_string_under_a_hash_tag_that_expires(
    client: RedisClient, algorithm: str
) -> None:
    limiter = RedisRateLimiter(client, "3/minute;10/hour", algorithm, namespace=ns())
    limiter.hit("user:{odd}key")
    key = limiter.redis_key("user:{odd}key")
    assert key.endswith("|{user:{odd}key}")
    assert key_slot(key) == key_slot("{user:{odd}key}")
    assert client.execute("TYPE", key) == "string"
    assert len(client.execute("GET", key).split(b"|")) == 2  # one state per rule
    ttl_ms = client.execute("PTTL", key)
    assert 0 < ttl_ms <= 2 * 3600 * 1000


def test_threads_sharing_one_connection_each_get_their_own_replies(
    redis_server: TempRedis,
) -> None:
    client = RedisClient(redis_server.url, pool_size=1)  # every command through one connection
    prefix = ns()
    got: dict[int, list[int]] = {}

    def count(t: int) -> None:
        got[t] = [client.execute("INCR", f"{prefix}:{t}") for _ in range(200)]

    threads = [threading.Thread(target=count, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {t: list(range(1, 201)) for t in range(16)}
    assert client.stats()["connects"] == 1


def test_concurrent_decisions_gather_on_one_connection_and_share_writes(
    redis_server: TempRedis,
) -> None:
    client = RedisClient(redis_server.url)  # pool_size 4: a second connection only past 16
    limiter = RedisRateLimiter(client, "1000000/hour", "fixed_window", namespace=ns())
    barrier = threading.Barrier(8)

    def run(t: int) -> None:
        barrier.wait()
        for i in range(300):
            assert limiter.hit(f"k{(t * 300 + i) % 50}")

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = client.stats()
    assert stats["requests"] >= 2400  # 2,400 decisions, plus the EVAL after the first NOSCRIPT
    assert stats["connects"] == 1
    # Requests that came while a write was answered went out together in the next one.
    assert stats["writes"] < stats["requests"]


# --- against the reference model, beside the in-process store (both in their own unit)

RULESETS = ["3/second", "5/15minutes", "7/minute", "2/second;5/10seconds", "10/second;3/second"]
OPS = st.tuples(
    st.sampled_from(["hit", "hit", "hit", "test", "reset"]),
    st.sampled_from(["a", "b"]),
    st.integers(1, 3),
    st.one_of(st.just(0), st.integers(0, 3_000_000), st.sampled_from([1, 142_857, 10**6, 6e7])),
)


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window", "fixed_window"])
@settings(max_examples=60, deadline=None)
@given(
    rules=st.sampled_from(RULESETS),
    start=st.integers(0, 10**12),
    ops=st.lists(OPS, min_size=1, max_size=40),
)
def test_decisions_match_the_model_and_the_in_process_store(
    client: RedisClient,
    algorithm: str,
    rules: str,
    start: int,
    ops: list[tuple[str, str, int, int]],
) -> None:
    clock = ManualClock()
    clock.set_ns(start * US)
    redis_limiter = RedisRateLimiter(client, rules, algorithm, namespace=ns(), clock=clock)
    local = RateLimiter(rules, algorithm, clock=clock)
    model = Model(algorithm, [(r.limit, r.period_ns // US) for r in redis_limiter.rules])
    local_model = Model(algorithm, [(r.limit, r.period_ns) for r in local.rules])
    cost_cap = min(r.limit for r in local.rules)
    now = start
    for op, key, cost, advance in ops:
        clock.advance_ns(int(advance) * US)
        now += int(advance)
        cost = min(cost, cost_cap)
        if op == "reset":
            redis_limiter.reset(key)
            local.reset(key)
            model.reset(key)
            local_model.reset(key)
            continue
        consume = op == "hit"
        got = getattr(redis_limiter, op)(key, cost)
        want, index = model.decide(key, cost, now, consume)
        assert (got.allowed, got.limit, got.remaining, got.reset_after_ns, got.retry_after_ns) == (
            want.allowed,
            want.limit,
            want.remaining,
            want.reset_after * US,
            want.retry_after * US,
        ), (op, key, cost, now)
        assert got.rule_index == index
        assert not got.degraded
        mine = getattr(local, op)(key, cost)
        local_want, local_index = local_model.decide(key, cost, now * US, consume)
        assert (mine.allowed, mine.remaining, mine.rule_index) == (
            local_want.allowed,
            local_want.remaining,
            local_index,
        )


# --- contention across processes


def _hammer(
    url: str, namespace: str, algorithm: str, rule: str, out: multiprocessing.Queue
) -> None:
    client = RedisClient(url, pool_size=16)
    limiter = RedisRateLimiter(client, rule, algorithm, namespace=namespace)
    barrier = threading.Barrier(16)
    counts: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        mine = sum(1 for _ in range(10) if limiter.hit("hot"))
        with lock:
            counts.append(mine)

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(sum(counts))


def _server_time_s(client: RedisClient) -> int:
    return int(client.execute("TIME")[0])


def _one_window_rule(client: RedisClient, limit: int) -> str:
    """A fixed-window rule whose current window began a minute ago on the server's clock and
    lasts decades: windows are aligned to the epoch, so a period of (now - 60) seconds puts the
    second boundary 60 s behind now and the next one as far ahead as the epoch is behind."""
    return f"{limit}/{_server_time_s(client) - 60}seconds"


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window", "fixed_window"])
def test_four_processes_of_sixteen_threads_admit_exactly_the_limit(
    redis_server: TempRedis, client: RedisClient, algorithm: str
) -> None:
    namespace = ns()
    # A fixed window admits the limit again once a window boundary passes: the run stays in one.
    rule = _one_window_rule(client, 200) if algorithm == "fixed_window" else "200/hour"
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_hammer, args=(redis_server.url, namespace, algorithm, rule, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    admitted = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    # 640 attempts in far less than the 18 s one unit takes to come back: exactly the limit.
    assert sum(admitted) == 200


# --- failures


def test_a_restart_mid_run_follows_the_failure_policy_and_recovers(
    own_redis: TempRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "blocktrust_native.ratelimit")
    client = RedisClient(own_redis.url, timeout=1.0)
    open_ = RedisRateLimiter(client, "3/minute", namespace="open")
    closed = RedisRateLimiter(client, "3/minute", namespace="closed", fail_open=False)
    mixed = RedisRateLimiter(
        client, "10/second;3/minute", namespace="mixed", fail_open=[True, False]
    )
    for limiter in (open_, closed, mixed):
        assert [limiter.hit("k").remaining for _ in range(3)] == [2, 1, 0]
        assert not limiter.hit("k").allowed
    own_redis.kill()
    d = open_.hit("k")
    assert (d.allowed, d.degraded) == (True, True)
    d = closed.hit("k")
    assert (d.allowed, d.degraded, d.retry_after) == (False, True, 1.0)
    assert closed.headers(d)["Retry-After"] == "1"
    d = mixed.hit("k")
    assert (d.allowed, d.degraded, d.rule_index) == (False, True, 1)
    assert "fail open" in caplog.text or "fail closed" in caplog.text
    own_redis.restart()  # same port, empty data, no scripts cached
    for limiter in (open_, closed, mixed):
        d = limiter.hit("k")
        assert (d.allowed, d.degraded, d.remaining) == (True, False, 2), limiter
    assert client.stats()["broken"] >= 1


def test_threads_hitting_through_a_restart_see_only_policy_or_real_decisions(
    own_redis: TempRedis,
) -> None:
    client = RedisClient(own_redis.url, timeout=1.0, pool_size=4)
    limiter = RedisRateLimiter(client, "1000000/hour", namespace="busy", fail_open=False)
    stop = threading.Event()
    seen: list[tuple[bool, bool]] = []
    lock = threading.Lock()

    def run() -> None:
        while not stop.is_set():
            d = limiter.hit("k")
            assert d.allowed != d.degraded  # real decisions admit, degraded ones deny
            with lock:
                seen.append((d.allowed, d.degraded))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(
            lambda: sum(1 for s in seen if s[0]) > 50,
            timeout=30,
            what="more than 50 admitted hits",
        )
        own_redis.kill()
        wait_until(lambda: any(s[1] for s in seen), timeout=30, what="a degraded decision")
        own_redis.restart()
        mark = len(seen)
        wait_until(
            lambda: sum(1 for s in seen[mark:] if s[0]) > 50,
            timeout=30,
            what="more than 50 admitted hits after the restart",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert all(not t.is_alive() for t in threads)


def test_auth_and_a_wrong_password_never_reach_messages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TempRedis(password="s3cr3t-pw") as server:
        good = RedisRateLimiter(server.url, "2/minute", namespace=ns())
        assert good.hit("k").allowed
        assert "s3cr3t-pw" not in repr(good)
        wrong = f"redis://:n0t-1t@127.0.0.1:{server.port}/0"
        with pytest.raises(RedisConnectionError, match="AUTH") as err:
            RedisClient(wrong).execute("PING")
        assert "n0t-1t" not in str(err.value)
        caplog.set_level(logging.WARNING, "blocktrust_native.ratelimit")
        d = RedisRateLimiter(wrong, "2/minute", fail_open=False).hit("k")
        assert (d.allowed, d.degraded) == (False, True)
        assert "AUTH" in caplog.text
        assert "n0t-1t" not in caplog.text
        with pytest.raises(RedisError, match="NOAUTH"):
            RedisClient(f"redis://127.0.0.1:{server.port}/0").execute("SET", "a", "b")


def test_unreachable_server_fails_by_policy_without_waiting_long() -> None:
    url = f"redis://:pw@127.0.0.1:{free_port()}/0?timeout=0.5"
    d = RedisRateLimiter(url, "1/minute").hit("k")
    assert (d.allowed, d.degraded) == (True, True)
    d = RedisRateLimiter(url, "1/minute", fail_open=False).hit("k")
    assert (d.allowed, d.degraded) == (False, True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://:pw@h:26379", "name the master"),
        ("redis+sentinel://h:26379,h:x/m?sentinel_password=pw", "port"),
        ("redis+sentinel://h/m?sentinel_password=pw&colour=blue", "sentinel_password"),
        ("http://:pw@h:6379", "unknown scheme"),
        ("redis://:pw@h:99999", "port"),
        ("redis://:pw@h:6379/x", "database"),
        ("redis://:pw@h:6379/0?colour=blue", "unknown option 'colour'"),
        ("redis://:pw@h:6379/0?timeout=-1", "timeout"),
        ("redis+cluster://:pw@h:6379/2", "database 0"),
        ("redis://:pw@h/0?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
    ],
)
def test_bad_urls_are_config_errors_naming_the_problem_without_the_password(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        RedisClient(url)
    assert "pw@" not in str(err.value)
    assert "***" in str(err.value)


def test_bad_arguments_are_config_errors() -> None:
    url = "redis://127.0.0.1:1/0"
    with pytest.raises(ConfigError, match="fail_open"):
        RedisRateLimiter(url, "1/second;2/minute", fail_open=[True])
    with pytest.raises(ConfigError, match="algorithm"):
        RedisRateLimiter(url, "1/second", "leaky")
    with pytest.raises(ConfigError, match="cost 3"):
        RedisRateLimiter(url, "2/second").hit("k", 3)
    with pytest.raises(ConfigError, match="redis"):
        RedisRateLimiter(42, "1/second")  # type: ignore[arg-type]


# --- TLS


def _tls_material(root: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl CLI is needed to make test certificates")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=root, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=blocktrust test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (root / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return root


def test_tls_verifies_the_server_and_decides(tmp_path: Path) -> None:
    certs = _tls_material(tmp_path)
    port = free_port()
    extra = [
        "--tls-port", str(port),
        "--tls-cert-file", str(certs / "server.crt"),
        "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", str(certs / "ca.crt"),
        "--tls-auth-clients", "no",
    ]  # fmt: skip
    with TempRedis(password="tls-pw", extra=extra) as server:
        url = f"rediss://:tls-pw@127.0.0.1:{port}/0?ssl_ca_certs={certs / 'ca.crt'}"
        limiter = RedisRateLimiter(url, "2/minute", namespace=ns())
        assert [limiter.hit("k").allowed for _ in range(3)] == [True, True, False]
        assert limiter.client.tls
        # Threads share the TLS connection too (writes and reads take turns on one SSL object).
        many = RedisRateLimiter(limiter.client, "1000/day", namespace=ns())  # 1 back per 86 s
        admitted: list[int] = []

        def run() -> None:
            admitted.append(sum(1 for _ in range(200) if many.hit("hot")))

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(admitted) == 1000  # 1,600 attempts, exactly the limit
        assert limiter.client.stats()["writes"] < limiter.client.stats()["requests"]
        # Without our CA the certificate is refused (never silently trusted).
        with pytest.raises(RedisConnectionError, match="TLS"):
            RedisClient(f"rediss://:tls-pw@127.0.0.1:{port}/0").execute("PING")
        assert RedisClient(f"rediss://:tls-pw@127.0.0.1:{port}/0?ssl_cert_reqs=none").ping()
        # The plain port of the same server still answers plain clients.
        assert RedisClient(server.url).ping()


# --- middleware


def test_asgi_middleware_decides_on_redis_with_headers(client: RedisClient) -> None:
    limiter = RedisRateLimiter(client, "2/minute", namespace=ns())
    app = FastAPI()

    @app.get("/limited")
    async def limited() -> dict:
        return {"ok": True}

    app.add_middleware(RateLimitMiddleware, routes={"/limited": limiter})
    with serve_asgi(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        first = http.get("/limited")
        assert first.status_code == 200
        assert first.headers["ratelimit-remaining"] == "1"
        assert first.headers["ratelimit-policy"] == "2;w=60"
        assert http.get("/limited").status_code == 200
        denied = http.get("/limited")
        assert denied.status_code == 429
        assert 1 <= int(denied.headers["retry-after"]) <= 30


# --- cluster


def test_cluster_follows_moved_redirects_and_remembers_slots() -> None:
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli (Debian redis-tools) is needed to form a cluster")
    nodes = [TempRedis(extra=["--cluster-enabled", "yes"]) for _ in range(3)]
    try:
        for n in nodes:
            n.start()
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        each = [RedisClient(f"redis://127.0.0.1:{n.port}/0") for n in nodes]
        wait_until(
            lambda: all(b"cluster_state:ok" in c.execute("CLUSTER", "INFO") for c in each),
            timeout=30,
            what="cluster_state:ok on every node",
        )
        client = RedisClient(f"redis+cluster://127.0.0.1:{nodes[0].port}")
        assert client.cluster
        limiter = RedisRateLimiter(client, "2/minute;5/hour", "fixed_window", namespace=ns())
        keys = [f"user:{i}" for i in range(12)]  # slots spread over the three nodes
        for k in keys:
            assert [limiter.hit(k).allowed for _ in range(3)] == [True, True, False], k
        redirects = client.stats()["redirects"]
        assert 0 < redirects <= len(keys)  # one per key at most: the slot is remembered
        for k in keys:
            assert not limiter.hit(k).allowed
        assert client.stats()["redirects"] == redirects
        # The state sits on the node that owns the key's slot.
        owners = {
            n.port: RedisClient(f"redis://127.0.0.1:{n.port}/0").execute("DBSIZE") for n in nodes
        }
        assert sum(owners.values()) == len(keys)
        assert sum(1 for v in owners.values() if v) >= 2
    finally:
        for n in nodes:
            n.stop()


# --- Sentinel


def test_no_sentinel_answering_fails_by_policy_and_says_why() -> None:
    url = f"redis+sentinel://:pw@127.0.0.1:{free_port()},127.0.0.1:{free_port()}/mymaster"
    client = RedisClient(url + "?timeout=0.5&sentinel_password=spw")
    d = RedisRateLimiter(client, "1/minute", fail_open=False).hit("k")
    assert (d.allowed, d.degraded) == (False, True)
    with pytest.raises(
        RedisConnectionError, match="no Sentinel named the master 'mymaster'"
    ) as err:
        client.execute("PING")
    assert "pw" not in str(err.value)
    assert "spw" not in repr(client)
    assert client.address == ""


@pytest.mark.slow
def test_sentinel_names_the_master_and_a_failover_after_its_death_follows_the_policy(
    redis_sentinel: SentinelSet,
) -> None:
    s = redis_sentinel
    # Two Sentinels, the first one dead: the second names the master.
    url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{s.port}/{s.name}?timeout=1"
    client = RedisClient(url, pool_size=2)
    assert client.sentinel
    assert client.address == ""  # the Sentinel is asked at the first command
    limiter = RedisRateLimiter(client, "1000000/hour", namespace=ns(), fail_open=False)
    d = limiter.hit("k")
    assert (d.allowed, d.degraded) == (True, False)
    assert client.address == f"127.0.0.1:{s.master.port}"
    s.master.kill()
    s.failover()

    # Until the client has asked again: policy decisions (denied, degraded), never anything else.
    def admitted() -> bool:
        d = limiter.hit("k")
        assert d.allowed != d.degraded
        return d.allowed

    wait_until(admitted, timeout=30, what="decisions to come back on the new master")
    assert client.address == f"127.0.0.1:{s.replica.port}"
    assert client.stats()["discoveries"] >= 2
    assert limiter.hit("k").remaining == 1000000 - 2  # the first hit was lost with the master


@pytest.mark.slow
def test_a_demoted_master_answering_readonly_sends_the_decision_to_the_new_one(
    redis_sentinel: SentinelSet,
) -> None:
    s = redis_sentinel
    client = RedisClient(s.url, pool_size=1)
    limiter = RedisRateLimiter(client, "1000000/hour", namespace=ns(), fail_open=False)
    assert not limiter.hit("k").degraded
    old = RedisClient(s.master.url)
    s.failover()  # the master is alive: the Sentinel turns it into the new master's replica
    wait_until(
        lambda: b"role:slave" in old.execute("INFO", "replication"),
        timeout=30,
        what="the old master to become a replica",
    )
    d = limiter.hit("k")
    assert (d.allowed, d.degraded) == (True, False)
    assert client.address == f"127.0.0.1:{s.replica.port}"
    assert client.stats()["discoveries"] == 2
    # Redis closes its clients' connections when it turns replica: the request went once more on a
    # fresh connection to the old address, met READONLY there, and then went to the new master.
    assert b"errorstat_READONLY:count=1" in old.execute("INFO", "errorstats")
