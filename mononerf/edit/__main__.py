import sys

from mononerf.edit.cli import main

sys.exit(main())
