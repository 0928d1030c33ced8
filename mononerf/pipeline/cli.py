"""``python -m mononerf.pipeline.checkpoint export RUN_OR_TAR --to-original OUT.tar``: a checkpoint of ours in the
original's layout (docs/checkpoints.md)."""

from __future__ import annotations

import argparse

from mononerf.errors import MonoNeRFError, report
from mononerf.pipeline import checkpoint as ckpt


def checkpoint_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mononerf.pipeline.checkpoint",
                                description="Checkpoint tools: export a run's checkpoint in the original's layout.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write a checkpoint the original MonoNeRF code loads")
    e.add_argument("source", help="a run folder (its newest NNNNNN.tar) or a checkpoint file")
    e.add_argument("--to-original", required=True, metavar="OUT.tar", help="where to write it")
    a = p.parse_args(argv)
    try:
        out = ckpt.export_original(a.source, a.to_original)
    except (MonoNeRFError, OSError) as exc:  # one line, exit status 2
        return report(exc)
    print(f"wrote {out} (the original's layout: {ckpt.STATE_KEY} with its names and aliases)")
    return 0

