"""``python -m mononerf.render``: the earlier name of ``python -m mononerf.eval.video`` (videos of a trained run),
kept so that commands written for it still run; the command lives in the evaluation layer, mononerf/eval/video.py."""

import runpy
import sys

print("note: `python -m mononerf.render` is now `python -m mononerf.eval.video` (same options)", file=sys.stderr)
runpy.run_module("mononerf.eval.video", run_name="__main__", alter_sys=True)
