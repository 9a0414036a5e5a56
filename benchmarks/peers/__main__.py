"""`python -m benchmarks.peers [--repeat N] [--only airflow,prefect] [--quick]`."""

import sys

from benchmarks.peers.suite import main

sys.exit(main())
