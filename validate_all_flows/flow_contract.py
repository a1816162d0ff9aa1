"""The contract between the validator and a flows spec (the built-in one or ``--flows FILE``).

The spec (a :class:`blocktrust_native.flows.FlowSpec` file) defines one sub-flow per flows check,
named after it: ``register``, ``kyc_mint``, ``sign_normal``, ``sign_duress``. The validator runs
them one by one in that order (``FlowSpec.subflow``), giving every sub-flow the values in
:data:`INPUTS` plus everything the sub-flows before it exported, and reads back the exports in
:data:`EXPORTS` for its database and chain checks. README.md ("Overriding the flows") says the same
for operators.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the native library loads only when a spec does (target.py imports this)
    from blocktrust_native.flows import FlowSpec

__all__ = ["BUILTIN_FLOWS", "EXPORTS", "INPUTS", "PARTS", "check_flows_file", "load_flows"]

#: The spec for the reference service's API paths.
BUILTIN_FLOWS = Path(__file__).resolve().parent / "flows" / "blocktrust.yaml"

#: The sub-flows, in the order they run; each is the check ``flows.<name>``.
PARTS = ("register", "kyc_mint", "sign_normal", "sign_duress")

#: The values the validator gives every sub-flow (as variables; the spec may refer to any).
INPUTS = {
    "user_email": "the probe user's e-mail (fresh per run)",
    "password": "its normal password",
    "duress_password": "its duress password",
    "webhook_secret": "the KYC webhook secret (SUMSUB_SECRET_KEY)",
    "document": "a fresh PDF document (text) for sign_normal; its SHA-256 is checked",
    "failsafe_wait_s": "FAILSAFE_DELAY_MAX plus the chain margin, in seconds",
}

#: What each sub-flow must export (the validator's database and chain checks read them).
EXPORTS = {
    "register": ("wallet_address",),
    "kyc_mint": ("token_id",),
    "sign_normal": ("signature_id", "document_sha256"),
    "sign_duress": (
        "normal_status",
        "normal_body",
        "normal_headers",
        "duress_status",
        "duress_body",
        "duress_headers",
    ),
}


def load_flows(path: str | os.PathLike[str], inputs: dict[str, Any]) -> FlowSpec:
    """Loads the spec at `path` with `inputs` (see INPUTS) and checks the contract: every part is
    a sub-flow exporting what EXPORTS names, and each part compiles with the inputs and the
    exports of the parts before it. FlowSpecError names the file and the place."""
    from blocktrust_native.errors import FlowSpecError
    from blocktrust_native.flows import FlowSpec

    try:
        spec = FlowSpec.load(path, vars=inputs)
        available = dict(inputs)
        for part in PARTS:
            if part not in spec.subflow_names:
                raise FlowSpecError(
                    f"flows.{part}: missing (the validator runs sub-flows {', '.join(PARTS)})"
                )
            _, exports = spec.subflow_interface(part)
            for name in EXPORTS[part]:
                if name not in exports:
                    raise FlowSpecError(
                        f"flows.{part}.exports: must export {name!r} (the validator reads it)"
                    )
            # Compiles the part as the check will run it (unknown variables show up here).
            spec.subflow(part, vars=available)
            available.update(dict.fromkeys(exports, ""))
    except FlowSpecError as exc:
        text = str(exc)
        raise FlowSpecError(text if text.startswith(str(path)) else f"{path}: {text}") from None
    return spec


def check_flows_file(path: str | os.PathLike[str]) -> None:
    """Validates a flows file against the contract before anything starts (placeholder inputs);
    FlowSpecError names the place."""
    load_flows(path, {name: "x" for name in INPUTS} | {"failsafe_wait_s": 1})
