"""``python -m aiograb``: the ``aiograb`` command."""

import sys

from aiograb._cli.main import main

sys.exit(main())
