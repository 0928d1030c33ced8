import sys

from mononerf.eval.video import main

sys.exit(main())
