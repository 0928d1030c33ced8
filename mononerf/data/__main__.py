import sys

from mononerf.data.check import main

sys.exit(main())
