"""`python -m sdedge` runs the command line."""

import sys

from sdedge.cli import main

sys.exit(main())
