import sys

from mononerf.preprocess.cli import main

sys.exit(main())
