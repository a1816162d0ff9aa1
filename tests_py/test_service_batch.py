"""Batch proofs: signatures anchored as one RFC 6962 Merkle root, each provable on chain."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fix_wait import wait_until
from test_service import PDF, _kyc_approved_user

from validate_all_flows.embedded.stack import Stack

pytestmark = [pytest.mark.pg, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    env = {
        "PROOF_MODE": "batch",
        "RATE_LIMIT_REGISTER": "100/hour",
        "RATE_LIMIT_UPLOAD": "100/hour",
    }
    with Stack(env=env) as s:
        yield s


def test_batch_proofs_verify_on_chain(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=30) as api:
        _, token, _ = _kyc_approved_user(stack, api)
        auth = {"Authorization": f"Bearer {token}"}
        docs = [PDF + uuid.uuid4().bytes for _ in range(5)]
        ids = []
        for doc in docs:
            r = api.post(
                "/api/documents/sign",
                headers=auth,
                data={"password": "normal-pass-1"},
                files={"file": ("d.pdf", doc, "application/pdf")},
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["signature_id"])
        rows = [
            wait_until(
                lambda i=i: (
                    (d := api.get(f"/api/documents/{i}", headers=auth).json())["status"]
                    == "confirmed"
                    and d
                ),
                timeout=30,
                what="the batch",
            )
            for i in ids
        ]
    assert {r["mode"] for r in rows} == {"batch"}
    assert stack.contracts is not None
    for doc, row in zip(docs, rows, strict=True):
        doc_hash = hashlib.sha256(doc).hexdigest()
        assert row["document_sha256"] == doc_hash
        assert stack.contracts.verify_anchored_inclusion(
            row["onchain_batch_id"], "0x" + doc_hash, row["leaf_index"], row["inclusion_path"]
        )
        # Tampering with the path breaks it.
        bad = list(row["inclusion_path"]) or ["0x" + "00" * 32]
        bad[0] = "0x" + "11" * 32
        assert not stack.contracts.verify_anchored_inclusion(
            row["onchain_batch_id"], "0x" + doc_hash, row["leaf_index"], bad
        )
