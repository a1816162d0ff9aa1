"""validate_all_flows: the operator tool that answers GO / NO-GO for a Blocktrust deployment."""

from __future__ import annotations

__all__: list[str] = []
