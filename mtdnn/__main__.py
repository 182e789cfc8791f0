"""``python -m mtdnn``: the same entry point as the ``mtdnn`` console script."""

import sys

from mtdnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
