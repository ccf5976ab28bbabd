"""Run the benchmark: python -m bench [--quick] [--profile]."""

import sys

from bench.run import main

sys.exit(main())
