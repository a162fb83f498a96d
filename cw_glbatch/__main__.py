"""``python -m cw_glbatch``: the cw-glbatch command."""

import sys

from ._cli import main

sys.exit(main())
