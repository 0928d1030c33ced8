"""Pure geometry at the bottom of the package (every layer may import it; it imports only ``utils``): camera rays
and NDC (:mod:`~mononerf.geometry.rays`), LLFF poses, render paths and frame times (:mod:`~mononerf.geometry.poses`),
and the optical flow a scene flow induces (:mod:`~mononerf.geometry.flow`). Shapes are in every docstring."""
