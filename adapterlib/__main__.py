"""`python -m adapterlib ...`: the command line (adapterlib.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
