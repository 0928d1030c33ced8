"""The two novel-view protocols of this field, by name (docs/evaluation.md).

Both score a multi-view dump (:func:`mononerf.eval.renders.testset_all`) against ``multiview_GT/{t:08d}/cam{p:02d}.jpg``
(camera p-1 at time t-1, read with cv2 as BGR and resized bilinearly to the render's size) with the same metric
calls: ``cv2.PSNR``, scikit-image's SSIM with its defaults (7x7 window, range 255) and LPIPS-alex v0.1 fed the BGR
arrays cv2 reads. They differ in the views they score and in how a scene's mean is taken:

* ``mononerf`` (the released ``evaluation.py``, the default): every camera at every time (T x T views, the
  training view-time pairs included); a scene's score is the mean over them.
* ``dynamicnerf`` (DynamicNeRF's ``utils/evaluation.py``, whose table every later paper copies): the view held at
  camera 0 while the time runs over every frame (T views, ``v000_t{t:03d}.png``); a scene's score is the mean
  over the T times.

Either way the run's score is the mean over scenes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mononerf.errors import MonoNeRFError, SceneFormatError

DUMP_INFO = "dump.json"  # beside scenes.json in a dump: the protocol it was rendered for and its render settings


@dataclass(frozen=True)
class Protocol:
    """A novel-view protocol: which (time, camera) views it renders and scores.

    Attributes:
        name: ``mononerf`` or ``dynamicnerf``.  every_camera: every camera at each time (else camera 0 only).
        results_file: the file evaluation writes in the step dir.  views, source: words for tables and docs.
    """

    name: str
    every_camera: bool
    results_file: str
    views: str
    source: str

    def render_views(self, picked: list[int]) -> list[tuple[int, int]]:
        """0-based (frame, camera) pairs a dump for this protocol renders, given the picked frame indices (every
        frame, or a ``--grid K`` subset): every picked camera at each picked time, or camera 0 at each."""
        return [(e, v) for e in picked for v in (picked if self.every_camera else [0])]

    def cameras(self, rendered: list[int], where: Path) -> list[int]:
        """The 1-based cameras scored out of those a dump rendered at one time (``where`` names it in errors)."""
        if self.every_camera:
            return rendered
        if 1 not in rendered:
            raise SceneFormatError(f"{where}: no render of camera 0 (000_bb.png), which the {self.name} protocol "
                                   "scores; render the dump with --protocol dynamicnerf or mononerf")
        return [1]

    def describe(self) -> dict:
        """What results.json records about the protocol."""
        return {"name": self.name, "views": self.views, "source": self.source,
                "ground_truth": "multiview_GT/{t:08d}/cam{p:02d}.jpg, cv2 (BGR), bilinear resize to the render size",
                "metrics": "cv2.PSNR; skimage structural_similarity (7x7, range 255); LPIPS alex v0.1 on BGR "
                           "(unless --rgb)",
                "scene_mean": "over the views of the scene", "run_mean": "over the scenes"}


PROTOCOLS = {
    "mononerf": Protocol("mononerf", True, "results.json", "every camera at every time",
                         "MonoNeRF's released evaluation.py"),
    "dynamicnerf": Protocol("dynamicnerf", False, "results_dynamicnerf.json", "camera 0 at every time",
                            "DynamicNeRF's utils/evaluation.py (the literature's tables)"),
}


# a third protocol with its own views, images and metrics: DyCheck's validation cameras (mononerf/eval/dycheck.py)
DYCHECK = "dycheck"
PROTOCOL_NAMES = tuple(PROTOCOLS) + (DYCHECK,)


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol of a name; one line naming both when it is neither."""
    if isinstance(name, Protocol):
        return name
    if name not in PROTOCOLS:
        raise MonoNeRFError(f"unknown protocol {name!r}; the protocols are {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def sample_space(pipeline) -> bool | dict[str, bool]:
    """Whether the run renders in NDC: one bool, or per scene name where its scenes differ (``run.world_rays``)."""
    ndc = {name: bool(part.renderer.settings.ndc) for part in pipeline.groups for name in part.data.names}
    return next(iter(ndc.values())) if len(set(ndc.values())) == 1 else ndc


def write_dump_info(folder: Path, protocol: Protocol, **render) -> None:
    """``dump.json``: the protocol a dump was rendered for and its render settings (``render``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DUMP_INFO).write_text(json.dumps({"protocol": protocol.name, "render": render}, indent=1))


def read_dump_info(step_dir: Path) -> dict:
    """A dump's ``dump.json`` ({} for a dump without one, e.g. the original's)."""
    path = Path(step_dir) / DUMP_INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except ValueError as exc:
        raise SceneFormatError(f"{path}: not JSON ({exc})") from exc
    return info if isinstance(info, dict) else {}


def check_dump(protocol: Protocol, step_dir: Path, info: dict) -> None:
    """Refuse to score a dump under a protocol that needs views it did not render (a camera-0-only dump under
    ``mononerf`` would otherwise give a T x 1 grid under that protocol's name)."""
    rendered = info.get("protocol")
    if protocol.every_camera and rendered is not None and not get_protocol(rendered).every_camera:
        raise SceneFormatError(f"{step_dir} was rendered for the {rendered} protocol (camera 0 only); the "
                               f"{protocol.name} protocol scores every camera: render it with --protocol "
                               f"{protocol.name}")
