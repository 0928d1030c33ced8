"""The names of the renderers' outputs, in one place (method.md §3.2-3.3: the original's ``ret`` keys).

Per sample or per ray, keyed by name: what compositing returns (:data:`BLENDED_OUTPUT_KEYS`), what the static and
the dynamic ray renderers return (:data:`STATIC_OUTPUT_KEYS`, :data:`DYNAMIC_OUTPUT_KEYS`), and the per-ray maps a
full-image render keeps (:data:`PER_RAY_KEYS`). Every consumer (losses, videos, evaluation dumps, edits, the
viewer) selects from these; ``tests/test_render.py`` checks that each selection names only outputs that exist.
"""

from __future__ import annotations

BLENDED_OUTPUT_KEYS = (
    "rgb_map_full", "depth_map_full", "acc_map_full", "weights_full",
    "rgb_map_s", "depth_map_s", "acc_map_s", "weights_s",
    "rgb_map_d", "depth_map_d", "acc_map_d", "weights_d",
    "dynamicness_map", "blending_map", "rgb_map_dyreg_d",
)  # fmt: skip
STATIC_OUTPUT_KEYS = ("rgb_map_s", "weights_s", "depth_map_s", "acc_map_s", "alpha_s", "rgb_s")
DYNAMIC_OUTPUT_KEYS = BLENDED_OUTPUT_KEYS + (
    "z_vals",
    "sceneflow_b", "sceneflow_f", "raw_pts", "raw_pts_f", "raw_pts_b", "blending",
    "sceneflow_b_f", "rgb_map_d_b", "acc_map_d_b", "blending_b",
    "sceneflow_f_b", "rgb_map_d_f", "acc_map_d_f", "blending_f",
    "raw_pts_b_b", "raw_pts_f_f",
)  # fmt: skip
# Keys that an inference pass does not compute (method.md §3.2 step 9 returns before step 10).
INFERENCE_SKIPPED_KEYS = ("raw_pts_b_b", "raw_pts_f_f")
# Per-ray maps made from the per-sample outputs by a full-image render (FieldRenderer.render_image): name →
# (weights, per-sample values), accumulated along each ray (render/composite.py accumulate_along_rays). The expected
# flowed points at t±1 (the induced flow's, method.md §3.5) and the composited forward scene flow, under the dynamic
# weights. A new per-ray map of a render is one entry here (docs/architecture.md, "Adding a render output").
DERIVED_MAPS = {
    "expected_pts_f": ("weights_d", "raw_pts_f"),
    "expected_pts_b": ("weights_d", "raw_pts_b"),
    "sceneflow_map_f": ("weights_d", "sceneflow_f"),
}
DERIVED_MAP_KEYS = tuple(DERIVED_MAPS)
# Per-ray maps kept by full-image renders (per-sample tensors would not fit in memory at full resolution).
PER_RAY_KEYS = ("rgb_map_full", "depth_map_full", "acc_map_full", "rgb_map_s", "depth_map_s", "acc_map_s",
                "rgb_map_d", "depth_map_d", "acc_map_d", "dynamicness_map", "rgb_map_dyreg_d") + DERIVED_MAP_KEYS
