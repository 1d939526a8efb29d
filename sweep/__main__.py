"""`python -m sweep ...`: the command line (see sweep.cli)."""
import sys

from sweep.cli import main

sys.exit(main())
