#!/usr/bin/env python3
"""`python scripts/bench.py [options]` is `kb bench [options]` (see `kb bench --help`)."""

import sys

from kb.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]], prog_name="kb"))
