import sys

from mononerf.view.cli import main

sys.exit(main())
