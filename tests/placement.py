"""A check, on the CPU, that a piece of work would run on a GPU as it is: :class:`PlacementCheck`.

A CUDA run fails (or silently waits) where the CPU does not notice:

* a tensor made without a device (``torch.zeros(3)``, ``torch.tensor(x)``) lands on the default device, the host,
  and the first operation that mixes it with the step's tensors raises;
* a read of a device value on the host (``bool(t)``, ``int(t)``, ``.item()``, ``.tolist()``, ``.cpu()``, an index by
  a boolean mask) waits for all queued device work;
* a host tensor of more than one element used in an operation with device tensors raises.

Inside the check the default device is ``meta``, so a tensor made without a device is a meta tensor, caught where it
is made. Every tensor the checked work receives counts as a device tensor; a host tensor is one made by an explicit
copy to the host (``.cpu()``, ``.to("cpu")``), by a factory told ``device="cpu"``, from numpy, or computed from host
tensors alone. Reads of device values, and work mixing host and device tensors, are allowed inside
:func:`mononerf.utils.host.host_read`, where the code says it needs them; every other one is recorded with the line
of the package that made it.
"""

from __future__ import annotations

import sys
import weakref
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from mononerf.utils.host import reading_allowed

PACKAGE = str(Path(__file__).resolve().parents[1] / "mononerf")
_T = torch.Tensor
READS = {_T.item, _T.tolist, _T.__bool__, _T.__int__, _T.__float__, _T.__index__, _T.numpy, _T.cpu}
MASKED = {torch.nonzero, _T.nonzero, torch.masked_select, _T.masked_select, torch.unique, _T.unique}
INDEXING = {_T.__getitem__, _T.__setitem__}  # a host index into a device tensor is allowed by PyTorch
TO_HOST = {_T.to}
FROM_HOST = {torch.from_numpy}


def _where() -> str:
    """The innermost line of the package on the stack (what made the call)."""
    f = sys._getframe(2)
    while f is not None:
        if f.f_code.co_filename.startswith(PACKAGE):
            return f"mononerf{f.f_code.co_filename[len(PACKAGE):]}:{f.f_lineno} ({f.f_code.co_name})"
        f = f.f_back
    return "outside the package"


def _is_cpu(d) -> bool:
    """A device written as the host ("cpu"); ``x.device`` of a CPU run is a torch.device and stands for the step's
    device, which on a GPU run is the GPU."""
    return isinstance(d, str) and torch.device(d).type == "cpu"


class PlacementCheck(TorchFunctionMode):
    """Record what would break or wait on a GPU in the enclosed work (see the module docstring).

    ``violations`` lists one line per finding (kind, the package line, the operation); tensors made on the default
    device raise at once (they are meta tensors, which the rest of the work could not compute with).
    """

    def __init__(self):
        super().__init__()
        self.violations: list[str] = []
        self._host: dict[int, weakref.ref] = {}
        self._meta = torch.device("meta")  # as a context: the default device inside, the previous one restored

    def __enter__(self):
        self._meta.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        out = super().__exit__(*exc)
        self._meta.__exit__(*exc)
        return out

    # -------------------------------------------------------------------------------------------- tags
    def is_host(self, t: torch.Tensor) -> bool:
        ref = self._host.get(id(t))
        return ref is not None and ref() is t

    def _tag(self, out) -> None:
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._host[id(t)] = weakref.ref(t)

    def _note(self, kind: str, func) -> None:
        self.violations.append(f"{kind}: {_where()} [{getattr(func, '__name__', func)}]")

    # -------------------------------------------------------------------------------------------- the mode
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        device_inputs = [t for t in tensors if not self.is_host(t)]
        allowed = reading_allowed()
        if func in READS and tensors and not self.is_host(tensors[0]) and not allowed:
            self._note("host read of a device value", func)
        if func in MASKED and device_inputs and not allowed:
            self._note("data-dependent shape (waits for the device)", func)
        if func in INDEXING and len(args) > 1:
            idx = [t for t in tree_flatten(args[1])[0] if isinstance(t, torch.Tensor)]
            if (not allowed and not self.is_host(args[0])
                    and any(t.dtype == torch.bool and not self.is_host(t) for t in idx)):
                self._note("boolean-mask index of a device tensor (waits for the device)", func)
            mixing = [args[0]] + list(args[2:])
        else:
            mixing = tensors
        host_big = [t for t in mixing if self.is_host(t) and t.dim() > 0 and t.numel() > 1]
        if host_big and any(not self.is_host(t) for t in mixing) and func not in READS | TO_HOST and not allowed:
            self._note("host tensor used with device tensors", func)
        to_host = func in TO_HOST and (_is_cpu(kwargs.get("device")) or any(
            _is_cpu(a) or (isinstance(a, torch.Tensor) and self.is_host(a)) for a in args[1:]))
        if to_host and tensors and not self.is_host(tensors[0]) and not allowed:
            self._note("copy of a device tensor to the host", func)

        out = func(*args, **kwargs)

        made = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if any(t.is_meta for t in made) and not any(t.is_meta for t in tensors):
            raise AssertionError(f"a tensor made without a device (it would be on the host of a GPU run): {_where()} "
                                 f"[{getattr(func, '__name__', func)}]")
        to_device = (func in TO_HOST and not to_host) or func is _T.cuda or (
            kwargs.get("device") is not None and not _is_cpu(kwargs.get("device")))
        if (func is _T.cpu or to_host or func in FROM_HOST or _is_cpu(kwargs.get("device"))
                or (tensors and not device_inputs and not to_device)):
            self._tag(out)
        return out
