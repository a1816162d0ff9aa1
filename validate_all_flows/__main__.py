"""Entry point of ``python -m validate_all_flows``."""

from __future__ import annotations

import sys

from validate_all_flows.cli import main

if __name__ == "__main__":
    sys.exit(main())
