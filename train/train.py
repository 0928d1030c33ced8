"""Train MonoNeRF: multi-scene, unseen frames or unseen-scene adaptation, as the config says (see mononerf/train)."""

import sys

from mononerf.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
