"""Download the configured model (the seed's helper): force by default, --no-force to keep a complete one."""

import sys

from sdedge.cli import main

if __name__ == "__main__":
    sys.exit(main(["download", *sys.argv[1:]]))
