"""Where the code reads a device value on the host, said in the code.

On a GPU every read of a device tensor's value on the host (``.item()``, ``bool(t)``, ``int(t)``, ``.tolist()``,
``.cpu()``, a boolean-mask index) waits until the device has run all the work queued before it. A training step or
a render may do so only inside :func:`host_read`, which names why (work on tensors gathered on the host, such as a
render's pictures, goes inside it too); ``tests/test_device_placement.py`` runs a static
step, a dynamic step, a full-image render and an evaluation view on the CPU under a check that fails on any other
read and on any tensor made without the device of the step's inputs (docs/architecture.md, "Devices").

Use::

    with host_read("the frame indices choose the maps a lookup reads"):
        frame = tau_frame.cpu()
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

_depth = 0


@contextmanager
def host_read(why: str) -> Iterator[None]:
    """Mark the enclosed reads of device values on the host as intended (``why`` says what needs them)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


def reading_allowed() -> bool:
    """True inside :func:`host_read` (what the placement check asks)."""
    return _depth > 0
