"""The stage optimiser and its schedule (method.md §5.2) and the recipe levers of docs/training.md."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mononerf.train.optim import OptimSettings, learning_rate, warmup_factor


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp_dynamic = nn.Module()
        self.mlp_dynamic.ode_fc = nn.Linear(3, 2)
        self.mlp_dynamic.weight_linear = nn.Linear(2, 1)
        self.mlp_dynamic.lin_in = nn.Linear(2, 2)


def test_default_rate_is_the_originals_order():
    # the original: step 0 at lrate, then lr = lrate·0.1^(i/decay) set after step i (so step k runs at lr(k-1))
    s = OptimSettings(lrate=5e-4, lrate_decay=1000)
    assert s.rate(0) == 5e-4 and s.rate(1) == learning_rate(5e-4, 0, 1000) == 5e-4
    assert s.rate(11) == pytest.approx(5e-4 * 0.1 ** (10 / 1000))


def test_warmup_is_linear_then_the_schedule():
    assert [warmup_factor(k, 4) for k in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0
    s = OptimSettings(lrate=1e-3, lrate_decay=100, warmup=4)
    assert s.rate(0) == pytest.approx(2.5e-4) and s.rate(3) == pytest.approx(1e-3 * 0.1 ** (2 / 100))
    net = _Net()
    opt = s.build(net, list(net.parameters()))
    assert opt.param_groups[0]["lr"] == pytest.approx(2.5e-4)
    s.after_step(opt, 0)  # the rate of step 1
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-4)


def test_default_optimiser_is_one_plain_adam_group():
    net = _Net()
    opt = OptimSettings().build(net, list(net.parameters()))
    ref = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.9, 0.999))
    assert len(opt.param_groups) == 1 and "lr_scale" not in opt.param_groups[0]
    assert opt.state_dict()["param_groups"] == ref.state_dict()["param_groups"]


def test_group_scales_split_the_named_parameters():
    net = _Net()
    s = OptimSettings(lrate=1e-3, group_scales={"mlp_dynamic.ode_fc.": 0.1, "mlp_dynamic.weight_linear.": 0.5})
    opt = s.build(net, list(net.parameters()))
    by_id = {id(p): g for g in opt.param_groups for p in g["params"]}
    assert by_id[id(net.mlp_dynamic.ode_fc.weight)]["lr"] == pytest.approx(1e-4)
    assert by_id[id(net.mlp_dynamic.weight_linear.bias)]["lr"] == pytest.approx(5e-4)
    assert by_id[id(net.mlp_dynamic.lin_in.weight)]["lr"] == pytest.approx(1e-3)
    assert sum(len(g["params"]) for g in opt.param_groups) == 6
    s.after_step(opt, 5)
    assert by_id[id(net.mlp_dynamic.ode_fc.weight)]["lr"] == pytest.approx(0.1 * s.rate(6))


def test_settings_from_conf_defaults_and_levers():
    from mononerf.config import parse_config_file

    released = "mononerf_conf/exp/Balloon1_Balloon2/dynamic_temporal_feat_static_mask_flow_loss_multiscenes_discrete2_addition.conf"
    default = OptimSettings.from_conf(parse_config_file(released), dynamic=True)
    conf = "mononerf_conf/exp/synthetic/multiscene.conf"  # includes the recipe (global-code MLP at 0.01x)
    recipe = OptimSettings.from_conf(parse_config_file(conf), dynamic=True)
    assert recipe.warmup == 0 and recipe.group_scales == {"mlp_dynamic.ode_fc.": 0.01}
    assert default == OptimSettings(lrate=5e-4, lrate_decay=300000)
    cfg = parse_config_file(released, ["train.dynamic_lrate_warmup=50", "train.lrate_scale_global_code=0.1",
                                   "train.adam_eps=1e-6"])
    dyn, sta = OptimSettings.from_conf(cfg, dynamic=True), OptimSettings.from_conf(cfg, dynamic=False)
    assert dyn.warmup == 50 and dyn.group_scales == {"mlp_dynamic.ode_fc.": 0.1} and dyn.adam_eps == 1e-6
    assert sta.warmup == 0 and sta.group_scales == {}  # the levers are the dynamic stage's


@pytest.mark.parametrize("item, message", [
    ("train.dynamic_lrate_warmup=-1", ">= 0"), ("train.adam_eps=0", "> 0"),
    ("train.lrate_scale_blending=-0.5", "> 0"), ("train.blending_warmup=1.5", "must be int"),
])
def test_bad_lever_values_are_refused(item, message):
    from mononerf.config import parse_config_file
    from mononerf.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_config_file("mononerf_conf/exp/synthetic/multiscene.conf", [item])
