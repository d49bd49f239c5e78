"""`python -m biovae ...` runs the command line (as the `biovae` script does)."""

import sys

from biovae.cli import main

if __name__ == "__main__":
    sys.exit(main())
