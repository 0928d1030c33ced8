import sys

from mononerf.config.cli import main

sys.exit(main())
