"""The CUDA path checked without a GPU (issue 29): a static step, a dynamic step, a full-image render and an
evaluation view run on the CPU under :class:`tests.placement.PlacementCheck`, which fails on a tensor made without
the device of the step's inputs and on a read of a device value on the host outside
:func:`mononerf.utils.host.host_read`."""

from __future__ import annotations

import pytest
import torch

from mononerf.config import load_config
from mononerf.train.trainer import Trainer
from mononerf.utils.host import host_read
from tests.placement import PlacementCheck
from tests.test_train import scenes, tiny_argv  # noqa: F401 (the scenes fixture)


@pytest.fixture(scope="module")
def trainer(scenes, tmp_path_factory):  # noqa: F811
    from mononerf.eval import renders

    argv = tiny_argv(scenes, tmp_path_factory.mktemp("runs"), extra=["train.N_static_iters=1", "train.N_iters=1"])
    tr = Trainer(load_config(argv), progress=False, renders=renders)
    tr.encode()
    return tr


def _step(tr, stage):
    step_fn = tr.pipeline.step_module()
    opt = torch.optim.Adam(tr._stage_modules(stage), lr=1e-5)
    tr._train_step(stage, 1, step_fn, opt)
    opt.step()


def _checked(work):
    check = PlacementCheck()
    with check:
        work()
    assert not check.violations, "\n".join(check.violations)


@pytest.mark.parametrize("stage", ["static", "dynamic"])
def test_a_training_step_makes_every_tensor_on_its_device_and_reads_the_host_only_where_it_says(trainer, stage):
    _step(trainer, stage)  # warm-up outside the check (lazy state such as Adam's moments)
    _checked(lambda: _step(trainer, stage))


def test_a_full_image_render_and_an_evaluation_view_stay_on_their_device(trainer, tmp_path):
    from mononerf.eval import renders

    p = trainer.pipeline
    d = p.data
    c2w, t = d.poses[:, 1, :, :4], torch.full((d.num_scenes,), 0.25, device=d.device)
    _checked(lambda: renders.render_outputs(p, c2w, t, ("rgb", "depth", "blend", "flow")))
    _checked(lambda: renders.testset_all(p, 0, grid=2, folder=tmp_path / "dump"))


def test_a_training_step_empties_the_renders_projected_maps_and_workspace(trainer):
    # renders keep their projected maps and lookup buffers from one call to the next; a training step drops both
    from mononerf.eval import renders

    p, renderer = trainer.pipeline, trainer.renderer
    d = p.data
    c2w, t = d.poses[:, 1, :, :4], torch.full((d.num_scenes,), 0.25, device=d.device)
    renders.render_outputs(p, c2w, t, ("rgb",))
    assert renderer._projected and renderer.workspace.nbytes > 0
    _step(trainer, "dynamic")
    assert not renderer._projected and renderer.workspace.nbytes == 0


def test_the_check_fails_on_a_tensor_made_on_the_default_device_and_on_a_hidden_host_read():
    x = torch.ones(4)  # made before the check: a tensor of the step's device
    with pytest.raises(AssertionError, match="made without a device"):
        with PlacementCheck():
            x + torch.zeros(4)  # planted: no device=, so it would be on the host of a GPU run
    for planted in (lambda: bool(x.sum() > 0), lambda: x.sum().item(), lambda: x[x > 0], lambda: x.cpu(),
                    lambda: x.to("cpu"), lambda: x + torch.arange(4, device="cpu")):
        check = PlacementCheck()
        with check:
            planted()
        assert check.violations, planted
    check = PlacementCheck()
    with check:
        y = torch.zeros(4, device=x.device) + x  # the step's device: fine
        with host_read("said in the code"):
            n = int(y.sum())
        h = torch.arange(4, device="cpu")  # a host tensor, said as such
        int(h[0])  # reading a host tensor costs no wait
    assert n == 4 and not check.violations, check.violations


def flush_denormals_enabled() -> bool:
    """Whether this thread flushes denormals: 1e-20 squared is 1e-40, a denormal number, or zero when flushed."""
    tiny = torch.tensor([1e-20], dtype=torch.float32)
    return bool((tiny * tiny).item() == 0.0)


def test_flush_denormals_reaches_every_thread_of_the_pool():
    # run.flush_denormal: a product whose inputs are denormal is zero on every thread that computes part of it (the
    # matrix product is split over PyTorch's OpenMP threads; torch.set_flush_denormal alone sets the calling one)
    from mononerf.utils.cpu import flush_denormals

    if torch.get_num_threads() < 2:
        pytest.skip("one thread: nothing to reach beyond the calling one")
    a, b = torch.ones(2048, 256), torch.full((256, 256), 1e-39)  # 1e-39 is below float32's normal range
    try:
        assert flush_denormals(True) and flush_denormals_enabled()
        assert (a @ b).abs().max() == 0
        assert flush_denormals(False) and not flush_denormals_enabled()
        assert ((a @ b) > 0).all()  # IEEE again, on every thread
    finally:
        flush_denormals(False)


def test_flush_denormals_says_when_it_cannot_reach_the_pool(monkeypatch):
    # another OpenMP runtime than GNU's (or none): only the calling thread is set, and the caller is told (the
    # pipeline prints a note for run.flush_denormal = true)
    import mononerf.utils.cpu as cpu

    monkeypatch.setattr(cpu, "_libgomp", lambda: None)
    try:
        assert cpu.flush_denormals(True) is False
        assert flush_denormals_enabled()  # this thread is flushed all the same
    finally:
        monkeypatch.undo()
        cpu.flush_denormals(False)
    assert not flush_denormals_enabled()
