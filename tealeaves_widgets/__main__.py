"""`python -m tealeaves_widgets ...`: the command line (`tealeaves_widgets.batch.cli`)."""

import sys

from tealeaves_widgets.batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
