import sys

from mononerf.data.cli import check_main

sys.exit(check_main())
