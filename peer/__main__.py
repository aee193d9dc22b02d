"""``python -m peer`` runs the ``setpeer`` command line."""

import sys

from .cli import main

sys.exit(main())
