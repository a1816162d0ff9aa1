"""What a coercer holding the victim's token can see, after a normal and after a duress signature.

The ``sign_duress`` sub-flow captures each surface right after the normal signature and again right
after the duress one, long before the fail-safe's earliest time: ``surface_<side>_<name>_status``,
``_body`` and ``_headers`` for side ``normal`` / ``duress`` and the names in :data:`SURFACES`.
:func:`surface_differences` says what differs; a service whose duress path moves anything there
(a counter, a field, a header) gives the duress away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SURFACES", "captured_surfaces", "surface_differences"]

#: Surface name -> what it is (the path the built-in spec reads).
SURFACES = {
    "failsafe": "GET /api/failsafe/status",
    "identity": "GET /api/identity",
    "events": "GET /api/explorer/events",
    "document": "GET /api/documents/{id} of the signature just made",
}

# Headers whose values legitimately differ between any two answers.
_VOLATILE_HEADERS = {"date", "content-length", "x-request-id", "etag"}
# Chain events a normal signature may add meanwhile (the proof of the normal document).
_ORDINARY_EVENTS = {"ProofRegistered", "BatchAnchored", "IdentityMinted", "Transfer", "Locked"}


def captured_surfaces(values: Mapping[str, Any]) -> list[str]:
    """The surfaces captured on both sides in ``values`` (the sub-flow's exports)."""
    return [
        n
        for n in SURFACES
        if all(f"surface_{side}_{n}_status" in values for side in ("normal", "duress"))
    ]


def _headers(value: Any) -> dict[str, str]:
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list):
        items = [tuple(x) for x in value if isinstance(x, list | tuple) and len(x) == 2]
    else:
        items = []
    return {str(k).lower(): str(v) for k, v in items}


def _events(body: Any) -> list[Any]:
    events = body.get("events") if isinstance(body, Mapping) else None
    return events if isinstance(events, list) else []


def surface_differences(values: Mapping[str, Any]) -> list[str]:
    """Every difference between the normal and the duress capture of each captured surface."""
    out = []
    for name in captured_surfaces(values):
        side = {s: {k: values.get(f"surface_{s}_{name}_{k}") for k in ("status", "body", "headers")}
                for s in ("normal", "duress")}  # fmt: skip
        a, b = side["normal"], side["duress"]
        what = SURFACES[name]
        if a["status"] != b["status"]:
            out.append(
                f"{what}: status {a['status']} after a normal signature, {b['status']} after"
            )
        ha, hb = _headers(a["headers"]), _headers(b["headers"])
        if sorted(ha) != sorted(hb):
            out.append(f"{what}: header names {sorted(ha)} vs {sorted(hb)}")
        for h in sorted(set(ha) & set(hb) - _VOLATILE_HEADERS):
            if ha[h] != hb[h] and not h.startswith(("x-ratelimit", "ratelimit", "retry-after")):
                out.append(f"{what}: header {h}: {ha[h]!r} vs {hb[h]!r}")
        out += _body_differences(name, what, a["body"], b["body"])
    return out


def _body_differences(name: str, what: str, a: Any, b: Any) -> list[str]:
    if name == "events":
        seen = {str(e) for e in _events(a)}
        new = [e for e in _events(b) if str(e) not in seen]
        odd = sorted(
            {str(e.get("event_name")) for e in new if isinstance(e, Mapping)} - _ORDINARY_EVENTS
        )
        return [f"{what}: new events after the duress signature: {', '.join(odd)}"] if odd else []
    if name == "document":
        if not isinstance(a, Mapping) or not isinstance(b, Mapping):
            return [] if type(a) is type(b) else [f"{what}: body {a!r} vs {b!r}"]
        # Values move on their own (the normal proof may be mined meanwhile): fields only.
        return [] if sorted(a) == sorted(b) else [f"{what}: fields {sorted(a)} vs {sorted(b)}"]
    if a != b:
        return [f"{what}: {_short(a)} after a normal signature, {_short(b)} after duress"]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."
