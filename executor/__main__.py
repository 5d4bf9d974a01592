"""`python -m executor`: see executor/cli.py."""

import sys

from executor.cli import main

sys.exit(main())
