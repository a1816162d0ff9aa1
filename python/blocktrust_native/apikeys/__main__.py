"""``python -m blocktrust_native.apikeys``: the key admin command (see :mod:`.cli`)."""

from blocktrust_native.apikeys.cli import main

raise SystemExit(main())
