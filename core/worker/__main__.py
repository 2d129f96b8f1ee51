"""``python -m core.worker``: one task in this process (see ``entry``)."""

import sys

from core.worker.entry import main

sys.exit(main())
