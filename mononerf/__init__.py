"""MonoNeRF, rebuilt: a generalizable dynamic radiance field learned from monocular videos.

Reimplementation of Tian, Du, Duan, "MonoNeRF: Learning a Generalizable Dynamic Radiance Field
from Monocular Videos", ICCV 2023 (arXiv 2212.13056).

Batch-dimension vocabulary used across the package (shapes in docstrings):
    S  scenes in a batch        T  frames per scene (12 for the Dynamic Scene Dataset)
    R  rays per scene           K  samples per ray
    H, W  image height, width   C  feature channels
"""

__version__ = "0.1.0"
