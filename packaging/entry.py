"""What the standalone bundle runs: ``gpt-workbench`` opens the window, ``gpt-workbench train ...``
and every other subcommand run headless, exactly as the ``workbench`` command does."""

import multiprocessing
import sys

from workbench.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app must not re-run itself in worker processes
    sys.exit(main())
