"""``python -m streams.cli``: the ``mailwindow`` command."""

import sys

from streams.cli import main

sys.exit(main())
