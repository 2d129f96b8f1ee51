"""``python -m core.cli``: the same as the ``tflite-studio`` command."""

import sys

from core.cli import main

sys.exit(main())
