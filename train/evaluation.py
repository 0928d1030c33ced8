"""Novel-view evaluation of a run (method.md §6.1); same as ``python -m mononerf.eval`` (see mononerf/eval)."""

import sys

from mononerf.eval.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
