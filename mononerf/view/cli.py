"""``python -m mononerf.view RUN_DIR [--scene NAME] [--port 8080] [--device auto]``: a space-time viewer in the browser.

Loads the newest checkpoint of a run and serves a page (viser; its web client comes with the Python package) at
http://localhost:PORT showing the training cameras of a scene as frustums with their frames, and the render from
the browser's camera: drag to orbit, scroll to zoom. The panel has the time slider (continuous: in-between times are
rendered too), play/pause, the scene of a multi-scene run, and what to show: the blended colour, the static or the
dynamic part alone, depth (disparity), the blending weight of the dynamic part, the optical flow induced by the scene
flow. Renders are progressive: ``--coarse-height`` pixels high while the camera moves, ``--fine-height`` once it
rests; the status line gives the time of the last render. Clicking a frustum jumps to that camera and its time.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from mononerf.errors import MonoNeRFError, report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mononerf.view", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run folder ({basedir}/{W}gpus{expname}) with config.conf and NNNNNN.tar")
    p.add_argument("--scene", help="scene to show first, by folder name or batch index (default: the first)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="localhost", help="interface to serve on (default localhost)")
    p.add_argument("--device", default="auto", help="cpu, cuda[:N] or auto")
    p.add_argument("--checkpoint", help="a checkpoint file (default: the newest in the run folder)")
    p.add_argument("--n-samples", type=int, help="samples per ray (default: the run's train.N_samples)")
    p.add_argument("--coarse-height", type=int, default=24, help="image height while the camera moves (pixels)")
    p.add_argument("--fine-height", type=int, default=96, help="image height once the camera rests (pixels)")
    p.add_argument("--chunk", type=int, default=512, help="rays per network pass (a moving camera interrupts "
                                                           "a full render between two passes)")
    return p


def check_run_dir(run_dir: Path, checkpoint: str | None) -> None:
    """The cheap checks of :func:`~mononerf.eval.video.load_run`, before anything slow or any port is taken."""
    from mononerf.pipeline import checkpoint as ckpt

    if run_dir.is_file():
        raise MonoNeRFError(f"{run_dir}: is a file, not a run folder")
    if not (run_dir / "config.conf").is_file():
        raise MonoNeRFError(f"{run_dir}: not a run folder (no config.conf)")
    if checkpoint:
        if Path(checkpoint).is_dir():
            raise MonoNeRFError(f"--checkpoint {checkpoint}: is a folder; give a checkpoint file (NNNNNN.tar)")
        if not Path(checkpoint).is_file():
            raise MonoNeRFError(f"--checkpoint {checkpoint}: no such file")
    elif ckpt.latest_dynamic(run_dir) is None:
        raise MonoNeRFError(f"{run_dir}: no checkpoint NNNNNN.tar of the dynamic stage yet (train first: "
                            "python -m mononerf.train …)")


def start_viewer(a: argparse.Namespace, verbose: bool = True):
    """Load the run and start the server (returns the running :class:`~mononerf.view.server.Viewer`)."""
    from mononerf.eval.video import load_run
    from mononerf.view.server import Viewer, check_port_free

    run_dir = Path(a.run_dir)
    check_run_dir(run_dir, a.checkpoint)
    check_port_free(a.host, a.port)
    if a.n_samples is not None and a.n_samples < 2:
        raise MonoNeRFError(f"--n-samples {a.n_samples}: need at least 2 samples per ray")
    pipeline, step = load_run(run_dir, a.device, a.checkpoint)
    pipeline.model.eval()
    scene = pipeline.data.scene_index(a.scene) if a.scene is not None else 0
    try:
        import viser  # noqa: F401
    except ImportError:
        raise MonoNeRFError("the viewer needs the viser package: pip install -e '.[view]'") from None
    return Viewer(pipeline, step, host=a.host, port=a.port, scene=scene, coarse_height=a.coarse_height,
                  fine_height=a.fine_height, n_samples=a.n_samples, chunk=a.chunk, verbose=verbose).start()


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        viewer = start_viewer(a)
    except (MonoNeRFError, OSError) as exc:
        return report(exc)
    print(f"viewer of {a.run_dir} at {viewer.url} (Ctrl-C to stop)", flush=True)
    # Ctrl-C and SIGTERM stop the server cleanly (also when started in the background, where SIGINT is ignored)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: viewer.request_stop())
    viewer.serve_forever()
    print("viewer stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
