"""`python -m benchmarks [--repeat N] [--quick] [--only fanout,chain]`."""

import sys

from benchmarks.suite import main

sys.exit(main())
