"""The original's numerical quirks as one typed object (method.md §8, docs/quirks.md).

Made from the configuration once (:meth:`Quirks.from_conf`, by the :class:`~mononerf.pipeline.pipeline.Pipeline`) and
handed down: the model, the render settings and the losses each read the fields they apply. ``True`` (the default)
behaves as the original; ``False`` as the paper describes. The fields are exactly the keys ``quirks.<name>`` of
:data:`mononerf.config.schema.QUIRKS` (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Quirks:
    discrete_flow_branch_mixup: bool = True  # §8.1, models/trajectory.py
    temporal_feature_ndc_as_world: bool = True  # §8.2, models/mononerf.py
    latent_temporal_reshape: bool = True  # §8.3, models/features.py
    depth_target_in_place: bool = True  # §8.4, losses/total.py
    encoder_clip_stretch: bool = True  # §8.5, models/mononerf.py
    encoder_batchnorm_train: bool = True  # §8.6, models/mononerf.py
    random_static_frame: bool = True  # §8.7, models/mononerf.py
    shared_sigma_noise: bool = True  # §8.8, render settings
    frame_gating_leak: bool = True  # §8.9, losses/total.py
    flow_loss_scene_sum: bool = True  # §8.10, losses/total.py
    img_s_loss_scene_slice: bool = True  # §8.11, losses/total.py
    entropy_batch_normalisation: bool = True  # §8.11, losses/total.py
    neighbour_time_rounding: bool = True  # §8.14, models/mononerf.py
    no_half_pixel_offset: bool = True  # §8.15, data and render settings

    @classmethod
    def from_conf(cls, cfg) -> "Quirks":
        """``quirks.<name>`` of a resolved config, one field each."""
        return cls(**{f.name: bool(cfg.quirks[f.name]) for f in fields(cls)})

    def but(self, **changes: bool) -> "Quirks":
        """A copy with some quirks switched, e.g. ``Quirks().but(random_static_frame=False)``."""
        return replace(self, **changes)
