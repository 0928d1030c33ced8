"""``python -m mononerf.experiments``: the paper's three claims on the synthetic scenes (mononerf/experiments/claims.py)."""

import sys

from mononerf.experiments.cli import experiments_main

sys.exit(experiments_main())
