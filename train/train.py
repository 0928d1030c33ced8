"""Train MonoNeRF: multi-scene, unseen frames or unseen-scene adaptation, as the config says (see mononerf/train)."""

import sys

from mononerf.train.interrupts import install_stop_handlers  # (imports nothing heavy)

if __name__ == "__main__":
    install_stop_handlers()  # before torch is imported: a stop during start-up ends quietly, in the background too
    try:
        from mononerf.train.cli import main
    except KeyboardInterrupt as exc:
        print("stopped while starting: nothing was trained", file=sys.stderr)
        sys.exit(128 + getattr(exc, "signum", 2))
    sys.exit(main())
