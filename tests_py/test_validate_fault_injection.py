"""Faults made from outside a running embedded stack that the validator used to miss or misjudge:
SQL on its database (a job row turned ``failed`` with the revert reason, as a chain worker records
a revert; an INVALID index left by a failed CREATE INDEX CONCURRENTLY; a partial index) and a hung
listener while the chain moves on. One stack for all of them (each test undoes its fault)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fix_proxy import HttpFaultProxy

from validate_all_flows.checks import CheckResult, Status, run_checks
from validate_all_flows.embedded.stack import Stack
from validate_all_flows.target import Target

pytestmark = [pytest.mark.pg, pytest.mark.slow]

REVERT = "execution reverted: {what}: caller is not the operator"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Every flows run registers a probe user: lift the 3-per-hour limit for this module.
    with Stack(env={"RATE_LIMIT_REGISTER": "100/hour"}) as s:
        yield s


def _run(stack: Stack, groups: set[str], **env: str) -> dict[str, CheckResult]:
    t = Target(chain_margin_s=5.0).use_stack(stack)
    assert t.env is not None
    t.env.update(env)
    try:
        return {r.id: r for r in run_checks(t, groups)}
    finally:
        t.close()


def _turn_failed(stack: Stack, table: str, reason: str | None) -> None:
    """SQL: a trigger that records every move of ``table``'s rows past pending as ``failed``
    (with ``reason`` in last_error, as the chain worker records a revert)."""
    assert stack.pool is not None
    note = f"NEW.last_error := '{reason}';" if reason else ""
    stack.pool.execute(
        "CREATE OR REPLACE FUNCTION validator_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.status IN ('active', 'submitted', 'confirmed') THEN "
        f"NEW.status := 'failed'; {note} END IF; RETURN NEW; END $$"
    )
    stack.pool.execute(
        f"CREATE TRIGGER validator_test_fail BEFORE UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION validator_test_fail()"
    )


def _undo(stack: Stack, table: str) -> None:
    assert stack.pool is not None
    stack.pool.execute(f"DROP TRIGGER IF EXISTS validator_test_fail ON {table}")


@pytest.mark.parametrize(
    ("table", "part", "found"),
    [
        (
            "identity_nfts",
            "kyc_mint",
            "the identity NFT mint is failed (no reason recorded)",
        ),
        ("proofs", "sign_normal", "the proof is failed: " + REVERT.format(what="ProofRegistry")),
        (
            "failsafe_events",
            "sign_duress",
            "the fail-safe is failed: " + REVERT.format(what="FailSafe"),
        ),
    ],
)
def test_a_failed_job_ends_the_wait_and_its_reason_is_quoted(
    stack: Stack, table: str, part: str, found: str
) -> None:
    # Before: the flows waited their whole budget (60 s) on a status already failed and
    # reported a timeout; a failed fail-safe row even passed ("failsafe_events row (failed)").
    what = {"proofs": "ProofRegistry", "failsafe_events": "FailSafe"}.get(table)
    _turn_failed(stack, table, REVERT.format(what=what) if what else None)
    try:
        results = _run(stack, {"flows"})
    finally:
        _undo(stack, table)
    r = results[f"flows.{part}"]
    assert (r.status, r.found) == (Status.FAIL, found), r
    if part != "sign_duress":
        assert any("stopped waiting" in e for e in r.evidence), r.evidence
        assert r.seconds < 50  # the budget is 60 s: it did not wait it out
    else:
        assert any("last_error: " + REVERT.format(what="FailSafe") in e for e in r.evidence)


def test_an_invalid_or_partial_lookup_index_is_no_index(stack: Stack) -> None:
    pool = stack.pool
    assert pool is not None
    if not pool.execute("SELECT count(*) FROM proofs")[0][0]:
        assert _run(stack, {"flows"})["flows.sign_normal"].status is Status.PASS
    pool.execute("DROP INDEX proofs_tx_idx")
    try:
        # What a failed CREATE INDEX CONCURRENTLY leaves behind: an INVALID index.
        with pytest.raises(Exception, match="division by zero"):
            pool.execute(
                "CREATE INDEX CONCURRENTLY proofs_tx_half ON proofs (tx_hash, (1 / (id - id)))"
            )
        assert pool.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'proofs_tx_half'::regclass"
        ) == [(False,)]
        schema = _run(stack, {"database"})["database.schema"]
        assert schema.status is Status.FAIL, schema
        assert schema.evidence == [
            "index on proofs (tx_hash): proofs_tx_half is INVALID and not ready "
            "(drop it and CREATE INDEX it again)"
        ]
        pool.execute("DROP INDEX proofs_tx_half")
        pool.execute("CREATE INDEX proofs_tx_none ON proofs (tx_hash) WHERE false")
        schema = _run(stack, {"database"})["database.schema"]
        assert schema.status is Status.FAIL, schema
        assert "proofs_tx_none is partial" in schema.evidence[0]
        pool.execute("DROP INDEX proofs_tx_none")
    finally:
        pool.execute("DROP INDEX IF EXISTS proofs_tx_half")
        pool.execute("DROP INDEX IF EXISTS proofs_tx_none")
        pool.execute(
            "CREATE INDEX IF NOT EXISTS proofs_tx_idx ON proofs (tx_hash) WHERE tx_hash IS NOT NULL"
        )
    assert _run(stack, {"database"})["database.schema"].status is Status.PASS


def test_a_hung_listener_behind_the_chain_head_is_caught(stack: Stack) -> None:
    # Before: "lag 0 s, updated 1 s ago": PASS while the chain was 12 blocks ahead.
    assert stack.listener is not None
    assert stack.anvil is not None
    assert _run(stack, {"workers"})["workers.listener"].status is Status.PASS
    stack.listener.stop()  # hung: it neither moves nor writes
    stack.anvil.mine(12)
    r = _run(stack, {"workers"}, LISTENER_POLL_INTERVAL="1")["workers.listener"]
    assert r.status is Status.FAIL, r
    assert "12 block(s) past 0 confirmation(s) not processed" in r.evidence[0], r.evidence
    assert "no progress in 12 s" in r.evidence[0]


def test_a_failed_mint_seen_through_the_api_alone_ends_the_wait(stack: Stack) -> None:
    # No --database-url: the profile's API path (/api/identity /nft/status) is watched instead.
    _turn_failed(stack, "identity_nfts", None)
    t = Target(chain_margin_s=5.0).use_stack(stack)
    t.database_url = None
    try:
        results = {r.id: r for r in run_checks(t, {"flows"})}
    finally:
        _undo(stack, "identity_nfts")
        t.close()
    r = results["flows.kyc_mint"]
    assert (r.status, r.found) == (
        Status.FAIL,
        "the identity NFT mint is failed (no reason recorded)",
    )
    assert r.seconds < 50  # the budget is 60 s: it did not wait it out


def test_a_reset_webhook_is_not_blamed_on_the_webhook_secret(stack: Stack) -> None:
    # A proxy in front resets the KYC webhook. Before: "check that the service's SUMSUB_SECRET_KEY
    # is the one given", for a request that never got an answer.
    with HttpFaultProxy(str(stack.base_url), {"/api/kyc/webhook": "reset"}) as proxy:
        t = Target(chain_margin_s=5.0).use_stack(stack)
        t.base_url = proxy.url
        try:
            results = {r.id: r for r in run_checks(t, {"flows"})}
        finally:
            t.close()
        assert proxy.hits >= 1
    r = results["flows.kyc_mint"]
    assert r.status is Status.FAIL, r
    assert "SUMSUB_SECRET_KEY" not in r.found + r.fix
    assert r.found.startswith("step kyc_mint/webhook (POST "), r.found
    assert "did not answer" in r.fix


def test_the_listener_is_judged_by_its_age_when_the_rpc_is_down(stack: Stack) -> None:
    # The node stopped answering (a closed port here): the listener check reports what it can
    # (the checkpoint's age) and says why the chain head is unknown, instead of raising.
    from validate_all_flows.embedded.postgres import free_port

    t = Target(chain_margin_s=5.0).use_stack(stack)
    t.rpc_url = f"http://127.0.0.1:{free_port()}"
    try:
        r = {x.id: x for x in run_checks(t, {"workers"})}["workers.listener"]
    finally:
        t.close()
    assert r.status is not Status.ERROR, r
    assert "chain head unknown (" in r.evidence[0], r.evidence
