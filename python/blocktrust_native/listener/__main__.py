"""``python -m blocktrust_native.listener``: the listener worker (settings from the environment,
see :mod:`blocktrust_native.listener.settings`)."""

import sys

from blocktrust_native.listener.settings import main

sys.exit(main())
