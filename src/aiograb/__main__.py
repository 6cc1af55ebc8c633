"""``python -m aiograb``: the ``aiograb`` command."""

import sys

from aiograb.cli import main

sys.exit(main())
