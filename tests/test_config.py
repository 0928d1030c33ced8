"""Tests of the mononerf/config/ package: loading, precedence, validation, save/load, docs."""

from __future__ import annotations

import copy
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mononerf.config import Config, Section, build_arg_parser, load_config, main, parse_config_file, read_hocon
from mononerf.config.docs import config_table_markdown
from mononerf.config.schema import ALL_KEYS, FLAGS, KEYS, QUIRKS
from mononerf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "mononerf_conf"
EXP = CONF / "exp"
MAIN_EXP = EXP / "Balloon1_Balloon2" / "dynamic_temporal_feat_static_mask_flow_loss_multiscenes_discrete2_addition.conf"
GEN = ["Jumping", "Playground", "Skating", "Truck", "Umbrella"]
QUARTER = ["Balloon1", "Balloon2", "Jumping", "Playground", "Skating", "Truck", "Umbrella"]
PORTED = sorted(
    ["default.conf", "default_mv.conf",
     "exp/Balloon1_Balloon2/dynamic_temporal_feat_static_mask_flow_loss_multiscenes_discrete2_addition.conf",
     "exp/Balloon2_Umbrella/Balloon2_Umbrella.conf", "exp/your_own_scene/your_own_scene.conf"]
    + [f"exp/generation_from_Balloon1_Balloon2/{s}.conf" for s in GEN]
    + [f"exp/quarter_frame_training/{s}.conf" for s in QUARTER])

# Every flag of the original's src/util/args.py (the mirror is not available in CI, so the list is written out).
ORIGINAL_FLAGS = """--expname --basedir --datadir --add_features --netdepth --netwidth --netdepth_fine --netwidth_fine
--N_rand --lrate --lrate_decay --chunk --netchunk --no_reload --ft_path --random_seed --N_samples --N_importance
--perturb --use_viewdirs --use_viewdirsDyn --i_embed --multires --multires_views --raw_noise_std --render_only
--dataset_type --factor --no_ndc --lindisp --spherify --i_print --i_log --i_img --i_weights --i_testset --i_video
--i_testset_all --N_iters --N_static_iters --dynamic_loss_lambda --static_loss_lambda --full_loss_lambda
--depth_loss_lambda --feature_loss_lambda --order_loss_lambda --flow_loss_lambda --slow_loss_lambda
--smooth_loss_lambda --consistency_loss_lambda --mask_loss_lambda --sparse_loss_lambda --DyNeRF_blending --pretrain
--ft_path_S --ft_S --frame2dolly --x_trans_multiplier --y_trans_multiplier --z_trans_multiplier --num_novelviews
--focal_decrease --dataset_file_lists --blending_thickness --launcher --backend --world_size --master_addr
--master_port --gpus_ids --local_rank --deterministic --gpu_id --name -n --dataset_format -F --exp_group_name -G
--logs_path --visual_path --epochs --gamma --batch_size -B --eval_only --fast_render_iter
--fast_render_basename""".split()

# The original's configs/config_Balloon2.txt (auto-loaded by its parser), verbatim values.
BALLOON2_TXT = """\
expname = tfr_Balloon2_H270_DyNeRF_pretrain
basedir = ./logs
datadir = ./data/Balloon2/

dataset_type = llff

factor = 2
N_rand = 1024
N_samples = 64
N_importance = 0
netwidth = 256

raw_noise_std = 1e0
no_ndc = False
lindisp = False

dynamic_loss_lambda = 1.0
static_loss_lambda = 1.0
full_loss_lambda = 3.0
depth_loss_lambda = 0.04
order_loss_lambda = 0.1
flow_loss_lambda = 0.02
slow_loss_lambda = 0.01
smooth_loss_lambda = 0.1
consistency_loss_lambda = 1.0
mask_loss_lambda = 0.1
sparse_loss_lambda = 0.001
DyNeRF_blending = True
pretrain = True
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def chdir_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture
def exp_tree(tmp_path):
    """tmp/base.conf includes the real default_mv.conf; tmp/exp/x.conf includes ../base.conf."""
    base = _write(tmp_path / "base.conf", f"""\
        include required("{CONF / 'default_mv.conf'}")
        model.mlp_dynamic {{ n_blocks = 4, discrete_steps = 2 }}
        info {{ N_rand = 256, expname = "from_base" }}
        """)
    exp = _write(tmp_path / "exp" / "x.conf", """\
        include required("../base.conf")
        model { mlp_dynamic { n_blocks = 7 } }
        info.expname = "from_exp"
        """)
    return base, exp


# ------------------------------------------------------------------------------------------- include / precedence
def test_include_chain_merges_and_records_sources(exp_tree):
    base, exp = exp_tree
    cfg = parse_config_file(str(exp))
    assert cfg.model.mlp_dynamic.n_blocks == 7  # the including file wins
    assert cfg.model.mlp_dynamic.discrete_steps == 2  # from base
    assert cfg.model.mlp_dynamic.combine_layer == 3  # from default_mv.conf
    assert cfg.model.mlp_dynamic.n_global_blocks == 0  # from default.conf
    assert cfg.model.mlp_dynamic.flow_mode == "discrete"  # code default
    assert cfg.info.N_rand == 256 and cfg.info.expname == "from_exp"
    assert os.path.samefile(cfg.source("model.mlp_dynamic.n_blocks"), exp)
    assert os.path.samefile(cfg.source("info.N_rand"), base)
    assert cfg.source("model.mlp_dynamic.combine_layer").endswith("default_mv.conf")
    assert cfg.source("info.chunk").endswith("default.conf")
    assert cfg.source("model.mlp_dynamic.flow_mode") == "default"
    assert [Path(f).name for f in cfg.files] == ["default.conf", "default_mv.conf", "base.conf", "x.conf"]


def test_original_flags_map_onto_one_key_each(exp_tree):
    _, exp = exp_tree
    cfg = load_config(["-c", str(exp), "--N_static_iters=100001", "--ft_path=x", "--lrate", "1e-3",
                       "--launcher=pytorch", "--local_rank=3", "--no_reload", "--pretrain=false",
                       "--deterministic", "False", "-B", "2", "--dataset_file_lists", "data/a", "data/b"])
    assert cfg.train.N_static_iters == 100001 and cfg.source("train.N_static_iters") == "command line"
    assert cfg.train.ft_path == "x"
    assert cfg.train.lrate == pytest.approx(1e-3) and isinstance(cfg.train.lrate, float)
    assert cfg.run.launcher == "pytorch" and cfg.run.local_rank == 3
    assert cfg.train.no_reload is True and cfg.train.pretrain is False
    assert cfg.train.deterministic is False  # the original's type=bool read "False" as True
    assert cfg.train.batch_size == 2
    assert cfg.info.dataset_file_lists == ["data/a", "data/b"]
    assert cfg.train.N_iters == 150001 and cfg.source("train.N_iters") == "default"


def test_fast_render_flag_with_generalization_conf(chdir_root):
    conf = "mononerf_conf/exp/generation_from_Balloon1_Balloon2/Jumping.conf"
    cfg = load_config(["-c", conf, "--launcher=pytorch", "--ft_path=logs/x/010000.tar", "--fast_render_iter=2000"])
    assert cfg.train.fast_render_iter == 2000 and cfg.train.ft_path == "logs/x/010000.tar"
    with pytest.raises(ConfigError, match="train.fast_render_iter needs info.fast_render"):
        load_config(["-c", str(MAIN_EXP), "--fast_render_iter=2000"])


def test_command_line_beats_conf_for_info_keys(exp_tree):
    _, exp = exp_tree
    assert load_config(["-c", str(exp)]).info.N_rand == 256
    cfg = load_config(["-c", str(exp), "--N_rand", "512", "--expname", "cli", "--blending_thickness=0.5"])
    assert (cfg.info.N_rand, cfg.info.expname, cfg.info.blending_thickness) == (512, "cli", 0.5)
    assert cfg.source("info.N_rand") == "command line"


def test_set_overrides_are_parsed_as_hocon_and_applied_last(exp_tree):
    _, exp = exp_tree
    cfg = load_config(["-c", str(exp), "--N_rand", "512", "--set", "info.N_rand=128",
                       "--set", "model.mlp_dynamic.discrete_steps=4", "--set", "info.dataset_file_lists=[a, b/c]",
                       "--set", "train.ft_path=null", "--set", "info.evaldir=\"my dir\""])
    assert cfg.info.N_rand == 128
    assert cfg.model.mlp_dynamic.discrete_steps == 4
    assert cfg.info.dataset_file_lists == ["a", "b/c"]
    assert cfg.train.ft_path is None and cfg.info.evaldir == "my dir"
    assert cfg.source("model.mlp_dynamic.discrete_steps") == "command line"


def test_config_txt_gives_the_same_effective_values_as_the_defaults(tmp_path, chdir_root):
    txt = _write(tmp_path / "config_Balloon2.txt", BALLOON2_TXT)
    plain = load_config(["-c", str(MAIN_EXP)])
    with_txt = load_config(["-c", str(MAIN_EXP), "--config", str(txt)])
    assert with_txt == plain  # the original auto-loaded this file: our defaults equal its effective values
    assert with_txt.info.expname == "Balloon1_Balloon2"  # the conf beats the txt file for info.* keys
    assert with_txt.train.datadir == "./data/Balloon2/"
    assert os.path.samefile(with_txt.source("train.N_samples"), txt)


def test_config_txt_values_apply_and_the_command_line_beats_them(tmp_path, chdir_root):
    txt = _write(tmp_path / "c.txt", "N_iters = 500001\ni_img = 500\nuse_viewdirsDyn = True\n")
    cfg = load_config(["-c", str(MAIN_EXP), "--config", str(txt), "--i_img=7"])
    assert (cfg.train.N_iters, cfg.train.i_img, cfg.train.use_viewdirsDyn) == (500001, 7, True)
    bad = _write(tmp_path / "bad.txt", "N_iter = 5\n")
    with pytest.raises(ConfigError, match=r"bad\.txt: unknown option N_iter \(did you mean N_iters\?\)"):
        load_config(["-c", str(MAIN_EXP), "--config", str(bad)])


def test_every_original_flag_is_accepted():
    assert set(ORIGINAL_FLAGS) <= set(FLAGS)
    parser = build_arg_parser()
    for flag in ORIGINAL_FLAGS:
        key = FLAGS[flag]
        value = {"bool": [], "list[str]?": ["data/x"]}.get(key.type, ["1"])
        ns = vars(parser.parse_args([flag, *value]))
        assert list(ns) == [f"key:{key.name}"], flag


# ------------------------------------------------------------------------------------------- ported conf files
def test_every_original_conf_file_is_ported():
    ours = ("exp/synthetic", "exp/real_video")  # this project's own experiments, not the original's
    ported = sorted(str(p.relative_to(CONF)) for p in CONF.rglob("*.conf") if not any(o in str(p) for o in ours))
    assert ported == PORTED


@pytest.mark.parametrize("name", ["multiscene", "unseen_frames", "adaptation"])
def test_synthetic_confs_load(name, chdir_root):
    cfg = parse_config_file(f"mononerf_conf/exp/synthetic/{name}.conf")
    assert cfg.model.encoder.pretrained is False and cfg.model.encoder_2d.pretrained is False
    assert cfg.model.mlp_dynamic.discrete_steps == 2 and all(str(p).startswith("data/synthetic_")
                                                              for p in cfg.info.dataset_file_lists)


@pytest.mark.parametrize("rel", PORTED)
def test_ported_conf_loads_and_keeps_the_original_values(rel, chdir_root):
    cfg = parse_config_file(f"mononerf_conf/{rel}")
    assert cfg.model.use_ndc is True and cfg.info.no_ndc is False
    assert cfg.model.encoder.type == "slowonly" and cfg.model.encoder_2d.type == "resnet18"
    assert cfg.info.slow_loss_lambda == 0.01 and cfg.info.flow_loss_lambda == 0.02 and cfg.info.chunk == 65536
    assert all(cfg.get(f"quirks.{name}") is True for name, *_ in QUIRKS)
    assert cfg.info.ft_path_S == "None"  # a bare None is the string "None" in HOCON, as the original relied on
    if rel.startswith("default"):
        assert cfg.model.mlp_dynamic.n_blocks == 5 and cfg.model.encoder.num_layers == 4
        assert cfg.info.blending_thickness == 0.06 and cfg.info.dataset_file_lists == ["data/Balloon2"]
        assert cfg.model.encoder_2d.normalize is True
        assert cfg.model.mlp_dynamic.combine_layer == (3 if rel == "default_mv.conf" else 1000)
        return
    assert cfg.model.mlp_dynamic.discrete_steps == 2
    assert cfg.model.mlp_dynamic.n_blocks == 3 and cfg.model.mlp_dynamic.n_global_blocks == 2
    assert cfg.model.mlp_dynamic.use_temporal_feature is True
    assert cfg.model.mlp_static.pixelnerf_mode is True and cfg.model.mlp_dynamic.pixelnerf_mode is True
    assert cfg.model.mlp_dynamic.combine_layer == 3 and cfg.model.mlp_static.combine_layer == 3  # default_mv
    assert cfg.model.encoder.num_layers == [0, 1, 2]
    assert cfg.model.encoder_2d.normalize == "Ture"  # kept verbatim (ignored by the model, method.md §2.0)
    assert cfg.info.blending_thickness == 0.03 and cfg.info.decay_iteration == 0
    assert cfg.info.use_depth_blending_loss and cfg.info.use_static_flow_loss and cfg.info.use_mask_flow_loss
    assert cfg.info.static_flow_loss_lambda == 0.5 and cfg.info.testset_all and cfg.info.use_clip_grad_norm
    scene = Path(rel).stem
    if "generation_from" in rel:
        assert cfg.info.mask_flow_loss_lambda == 0.01 and cfg.info.fast_render is True
        assert cfg.info.basedir == "./logs/generalization/" and cfg.info.expname == scene
        assert cfg.info.dataset_file_lists == [f"data/{scene}"]
    elif "quarter_frame" in rel:
        assert cfg.info.mask_flow_loss_lambda == 0.01 and cfg.info.quarter_frame is True
        assert cfg.model.unseen_frame_rendering is True
        assert cfg.model.training_frames == (3 if scene == "Truck" else 5)
        assert cfg.info.use_unseen_frame_pretrain is (scene != "Truck")
        assert cfg.info.fast_render is False
    elif scene == "Balloon2_Umbrella":
        assert cfg.info.dataset_file_lists == ["data/Balloon2", "data/Umbrella"]
        assert cfg.info.mask_flow_loss_lambda == 0.1
    elif scene == "your_own_scene":
        assert cfg.info.dataset_file_lists == ["data/your_own_data"] and cfg.info.mask_flow_loss_lambda == 0.1
    else:
        assert cfg.info.expname == "Balloon1_Balloon2" and cfg.info.basedir == "./logs/multiscenes/"
        assert cfg.info.dataset_file_lists == ["data/Balloon1", "data/Balloon2"]
        assert cfg.info.mask_flow_loss_lambda == 0.1 and cfg.info.N_rand == 1024


def test_read_hocon_merges_like_pyhocon_includes(tmp_path):
    from pyhocon import ConfigFactory

    from mononerf.config.values import _flatten

    for rel in PORTED:  # our include walk gives exactly pyhocon's own include result
        assert read_hocon(str(CONF / rel))[0] == dict(_flatten(ConfigFactory.parse_file(str(CONF / rel)))), rel
    _write(tmp_path / "a.conf", "a { x = 3 }\n")
    values, sources, _ = read_hocon(str(_write(tmp_path / "b.conf", 'include required("a.conf")\nb = ${a.x}\n')))
    assert values == {"a.x": 3, "b": 3} and Path(sources["a.x"]).name == "a.conf"


def test_parsed_texts_are_kept_per_process_and_handed_out_as_copies(tmp_path, monkeypatch):
    from mononerf.config import values

    conf = _write(tmp_path / "a.conf", "a { x = [1, 2] }\nb = ${a.x}\n")
    first = values._own_trees(str(conf), None)[-1][1]
    first.put("a.y", 99)  # a caller that changes its tree changes no later read
    assert read_hocon(str(conf))[0] == {"a.x": [1, 2], "b": [1, 2]}
    hits = values._parsed.cache_info().hits
    assert read_hocon(str(conf))[0] == {"a.x": [1, 2], "b": [1, 2]} and values._parsed.cache_info().hits > hits
    conf.write_text("a { x = 5 }\n")  # the text is the key: an edited file is read anew
    assert read_hocon(str(conf))[0] == {"a.x": 5}
    cfg = load_config(["-c", str(MAIN_EXP), "--set", "model.encoder.num_layers=[0, 1]"])
    cfg.model.encoder.num_layers.append(2)
    assert load_config(["-c", str(MAIN_EXP), "--set", "model.encoder.num_layers=[0, 1]"]).model.encoder.num_layers \
        == [0, 1]
    # a substitution may read the environment: parsed each time
    monkeypatch.setenv("MONONERF_TEST_NAME", "one")
    assert values._literal("${MONONERF_TEST_NAME}", "here") == "one"
    monkeypatch.setenv("MONONERF_TEST_NAME", "two")
    assert values._literal("${MONONERF_TEST_NAME}", "here") == "two"
    # a text that fails is not kept, and each failure names its own caller
    for where in ("first place", "second place"):
        with pytest.raises(ConfigError, match=f"^{where}: cannot parse value"):
            values._literal("[1, 2", where)
    for where in ("x.conf", "y.conf"):
        with pytest.raises(ConfigError, match=f"^{where}: include url"):
            with values._no_hocon_includes(where):
                values._parse('include url("http://example.com/a.conf")\n', resolve=False)


def test_quarter_conf_expnames_and_the_fixed_truck_include(chdir_root):
    cfg = parse_config_file("mononerf_conf/exp/quarter_frame_training/Balloon2.conf")
    assert (cfg.info.basedir, cfg.info.expname) == ("./logs/unseen_motion_training/", "Balloon2")
    truck = parse_config_file("mononerf_conf/exp/quarter_frame_training/Truck.conf")
    assert truck.info.expname == "Truck_fixed_model_part_wo_pretrain"
    assert truck.source("model.mlp_dynamic.combine_layer") == "mononerf_conf/default_mv.conf"


# ------------------------------------------------------------------------------------------- validation
def _error(fn, *args) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_key_names_file_key_and_suggestion(tmp_path, chdir_root):
    conf = _write(tmp_path / "x.conf", f"""\
        include required("{CONF / 'default_mv.conf'}")
        model.mlp_dynamic.n_blokcs = 3
        """)
    msg = _error(parse_config_file, str(conf))
    assert str(conf) in msg or os.path.relpath(conf) in msg
    assert "unknown key model.mlp_dynamic.n_blokcs (did you mean n_blocks?)" in msg
    msg = _error(load_config, ["-c", str(MAIN_EXP), "--set", "info.N_rnd=4"])
    assert msg == "command line: unknown key info.N_rnd (did you mean N_rand?)"
    assert "is a section" in _error(load_config, ["-c", str(MAIN_EXP), "--set", "model.mlp_static=3"])


def test_wrong_type_names_key_and_file(tmp_path):
    conf = _write(tmp_path / "x.conf", f"""\
        include required("{CONF / 'default_mv.conf'}")
        model.mlp_dynamic.n_blocks = "three"
        """)
    msg = _error(parse_config_file, str(conf))
    assert "x.conf: model.mlp_dynamic.n_blocks must be int, got str 'three'" in msg
    assert "info.use_flow must be bool" in _error(load_config, ["-c", str(MAIN_EXP), "--set", "info.use_flow=1"])
    assert "must be int" in _error(load_config, ["-c", str(MAIN_EXP), "--N_rand=lots"])
    assert "must be one of ['discrete', 'ode']" in _error(
        load_config, ["-c", str(MAIN_EXP), "--set", "model.mlp_dynamic.flow_mode=rk4"])
    assert "run.device" in _error(load_config, ["-c", str(MAIN_EXP), "--device", "gpu"])
    assert load_config(["-c", str(MAIN_EXP), "--device", "cuda:1"]).run.device == "cuda:1"


def test_int_is_accepted_where_float_is_expected(exp_tree):
    _, exp = exp_tree
    cfg = parse_config_file(str(exp), overrides={"info.blending_thickness": 1, "train.lrate": 2})
    assert cfg.info.blending_thickness == 1.0 and isinstance(cfg.info.blending_thickness, float)
    assert isinstance(cfg.train.lrate, float)


def test_missing_files_are_named(tmp_path):
    msg = _error(parse_config_file, str(tmp_path / "nope.conf"))
    assert "nope.conf: conf file not found" in msg
    conf = _write(tmp_path / "exp" / "x.conf", 'include required("../../../default_mv.conf")\n')
    msg = _error(parse_config_file, str(conf))
    assert "x.conf: include required file '../../../default_mv.conf' not found" in msg
    assert "conf file not found" in _error(load_config, ["-c", str(tmp_path / "none.conf")])
    assert "no conf file given" in _error(load_config, [])


def test_missing_required_value_names_the_key(tmp_path):
    conf = _write(tmp_path / "bare.conf", "model { use_ndc = true }\n")
    msg = _error(parse_config_file, str(conf))
    assert "bare.conf: missing required value model.encoder.config_path" in msg
    enc = _write(tmp_path / "enc.conf", """\
        model.encoder { config_path = a.py, pretrained = false, pretrained_path = w.pth, num_layers = [0] }
        """)
    msg = _error(parse_config_file, str(enc))
    assert "enc.conf: missing required value info.add_features" in msg and "or pass --add_features" in msg
    assert "(and 13 more: info.basedir" in msg
    full = _write(tmp_path / "x.conf", f'include required("{CONF / "default_mv.conf"}")\n')
    assert "info.N_rand must be int, got NoneType" in _error(parse_config_file, str(full), ["info.N_rand=null"])


def test_no_ndc_must_equal_not_use_ndc(exp_tree):
    _, exp = exp_tree
    msg = _error(load_config, ["-c", str(exp), "--no_ndc"])
    assert "command line: info.no_ndc = true contradicts model.use_ndc = true" in msg
    assert "info.no_ndc must equal not model.use_ndc" in msg
    cfg = load_config(["-c", str(exp), "--no_ndc", "--set", "model.use_ndc=false"])
    assert cfg.info.no_ndc is True and cfg.model.use_ndc is False


def test_bad_set_syntax(exp_tree):
    _, exp = exp_tree
    assert "--set expects KEY=VALUE" in _error(load_config, ["-c", str(exp), "--set", "model.use_ndc"])
    assert "--set expects KEY=VALUE" in _error(load_config, ["-c", str(exp), "--set", "=3"])
    assert "cannot parse value" in _error(load_config, ["-c", str(exp), "--set", "info.N_rand=[1"])
    assert "command line: unrecognized arguments: --N_randd" in _error(load_config, ["-c", str(exp), "--N_randd=3"])


def test_other_cross_checks(exp_tree):
    _, exp = exp_tree
    assert "N_importance must be 0" in _error(load_config, ["-c", str(exp), "--N_importance=64"])
    assert "divides by zero" in _error(parse_config_file, str(MAIN_EXP), ["info.use_lambda_decay=true"])
    cfg = parse_config_file(str(MAIN_EXP), ["info.use_lambda_decay=true", "info.decay_iteration=null"])
    assert cfg.info.decay_iteration is None


# ------------------------------------------------------------------------------------------- the object
@pytest.mark.parametrize("args, key, says", [
    (["--N_iters=-1"], "train.N_iters", ">= 0"),
    (["--N_static_iters", "-5"], "train.N_static_iters", ">= 0"),
    (["--lrate", "0"], "train.lrate", "> 0"),
    (["--lrate=-1e-4"], "train.lrate", "> 0"),
    (["--full_loss_lambda", "nan"], "train.full_loss_lambda", "finite"),
    (["--mask_loss_lambda", "inf"], "train.mask_loss_lambda", "finite"),
    (["--set", "info.slow_loss_lambda=1e999"], "info.slow_loss_lambda", "finite"),
])
def test_bad_iteration_counts_rates_and_loss_weights_are_refused(exp_tree, args, key, says):
    with pytest.raises(ConfigError, match=rf"{key} must be a finite number.*{says}" if says != "finite"
                       else rf"{key} must be a finite number"):
        load_config(["-c", str(exp_tree[1]), *args])


def test_config_object_access(exp_tree):
    _, exp = exp_tree
    cfg = parse_config_file(str(exp))
    dyn = cfg.model.mlp_dynamic
    assert isinstance(dyn, Section) and dyn.n_blocks == dyn["n_blocks"] == cfg.get("model.mlp_dynamic.n_blocks")
    assert cfg["model.mlp_dynamic"]["n_blocks"] == 7 and cfg.model.get("mlp_dynamic.n_blocks") == 7
    assert cfg.get("model.nothing", "fallback") == "fallback"
    assert set(cfg) == {"model", "info", "train", "run", "quirks"}
    with pytest.raises(AttributeError, match="no config key model.mlp_dynamic.n_blokcs.*n_blocks"):
        dyn.n_blokcs
    with pytest.raises(AttributeError, match="read-only"):
        dyn.n_blocks = 3
    d = cfg.to_dict()
    d["model"]["encoder"]["num_layers"] = "changed"
    d["info"]["dataset_file_lists"].append("x")
    assert cfg.model.encoder.num_layers == 4 and cfg.info.dataset_file_lists == ["data/Balloon2"]
    assert len(cfg.flat()) == len(KEYS)
    small = cfg.with_overrides({"train.N_iters": 2, "info.N_rand": 8})
    assert (small.train.N_iters, small.info.N_rand, cfg.train.N_iters) == (2, 8, 150001)
    assert small.source("train.N_iters") == "override" and small.source("info.expname") == cfg.source("info.expname")
    with pytest.raises(ConfigError, match="train.N_iters must be int"):
        cfg.with_overrides({"train.N_iters": "many"})
    clone = pickle.loads(pickle.dumps(cfg))  # e.g. for spawned workers
    assert clone == cfg and clone.source("info.N_rand") == cfg.source("info.N_rand")
    assert copy.deepcopy(cfg.model.mlp_dynamic) == cfg.model.mlp_dynamic


def test_save_load_round_trip(exp_tree, tmp_path):
    _, exp = exp_tree
    cfg = load_config(["-c", str(exp), "--N_rand=64", "--ft_path=a b", "--set", "quirks.shared_sigma_noise=false",
                       "--set", "model.mlp_dynamic.ode_step_size=0.25", "--set", "train.lrate=1e-05"])
    out = tmp_path / "run" / "config.conf"
    cfg.save(str(out))
    text = out.read_text()
    assert "include required" not in text and text.count(" = ") == len(KEYS)  # every key explicit
    again = parse_config_file(str(out))
    assert again == cfg and again.to_dict() == cfg.to_dict()
    assert again.train.lrate == 1e-05 and again.model.mlp_dynamic.ode_step_size == 0.25
    assert os.path.samefile(again.source("info.N_rand"), out)
    assert parse_config_file(str(out)) != cfg.with_overrides({"info.N_rand": 65})


def test_quirks_defaults_and_random_static_frame(exp_tree):
    _, exp = exp_tree
    assert [name for name, *_ in QUIRKS] == [
        "discrete_flow_branch_mixup", "temporal_feature_ndc_as_world", "latent_temporal_reshape",
        "depth_target_in_place", "encoder_clip_stretch", "encoder_batchnorm_train", "random_static_frame",
        "shared_sigma_noise", "frame_gating_leak", "flow_loss_scene_sum", "img_s_loss_scene_slice",
        "entropy_batch_normalisation", "neighbour_time_rounding", "no_half_pixel_offset"]
    cfg = parse_config_file(str(exp))
    assert all(v is True for v in cfg.quirks.to_dict().values())
    assert cfg.source("quirks.random_static_frame") == "derived from model.random_static_frame"
    off = parse_config_file(str(exp), ["model.random_static_frame=false"])
    assert off.quirks.random_static_frame is False
    both = parse_config_file(str(exp), ["model.random_static_frame=false", "quirks.random_static_frame=true"])
    assert both.quirks.random_static_frame is True


# ------------------------------------------------------------------------------------------- docs and CLI
def test_docs_config_md_is_up_to_date():
    committed = (ROOT / "docs" / "config.md").read_text()
    assert committed == config_table_markdown(), "regenerate: python -m mononerf.config --markdown > docs/config.md"
    for key in ALL_KEYS:
        assert f"`{key.name}`" in committed
        assert key.meaning and key.used, key.name
    for flag in ORIGINAL_FLAGS:
        assert f"`{flag}`" in committed


def test_docs_quirks_md_documents_every_quirk():
    text = (ROOT / "docs" / "quirks.md").read_text()
    for name, item, *_ in QUIRKS:
        assert f"## `{name}` (method.md {item}" in text
        assert f"| `quirks.{name}` |" in text


def test_main_prints_the_resolved_config_and_one_line_errors(capsys, exp_tree):
    _, exp = exp_tree
    assert main(["-c", str(exp), "--N_rand=32"]) == 0
    out = capsys.readouterr().out
    assert "N_rand = 32  # command line" in out and "discrete_steps = 2" in out
    assert main(["-c", str(exp), "--set", "model.bad=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: command line: unknown key model.bad") and err.count("\n") == 1
    assert main(["--markdown"]) == 0
    assert capsys.readouterr().out == config_table_markdown()


def test_module_entry_point_runs(exp_tree):
    _, exp = exp_tree
    res = subprocess.run([sys.executable, "-m", "mononerf.config", "-c", str(exp), "--N_static_iters=100001"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "N_static_iters = 100001  # command line" in res.stdout


def test_read_hocon_reports_values_and_sources(chdir_root):
    values, sources, files = read_hocon("mononerf_conf/default_mv.conf")
    assert values["model.mlp_dynamic.combine_layer"] == 3 and values["model.encoder.num_layers"] == 4
    assert sources["model.mlp_dynamic.combine_layer"] == "mononerf_conf/default_mv.conf"
    assert sources["info.N_rand"] == "mononerf_conf/default.conf"
    assert files == ["mononerf_conf/default.conf", "mononerf_conf/default_mv.conf"]
    assert isinstance(parse_config_file("mononerf_conf/default_mv.conf"), Config)


def test_every_key_is_read_by_the_module_the_schema_names():
    """A key whose schema entry names reading modules is read there (its name appears in one of them, and every
    named file exists); a key the config itself reads is one it checks (choices or a cross-check). Keys marked
    ``unused:`` / ``ignored:`` say why they have no effect."""
    import re

    from mononerf.config.schema import CONFIG

    config_src = (ROOT / CONFIG).read_text()
    problems = []
    for key in ALL_KEYS:
        if key.used.startswith(("unused:", "ignored:")):
            continue
        files = re.findall(r"mononerf/[\w/]+\.py", key.used)
        assert files, (key.name, key.used)
        leaf = key.name.split(".")[-1]
        missing = [f for f in files if not (ROOT / f).is_file()]
        readers = [f for f in files if f != CONFIG and (ROOT / f).is_file()
                   and re.search(rf"\b{re.escape(leaf)}\b", (ROOT / f).read_text())]
        checked = CONFIG in files and (key.choices is not None or key.name in config_src)
        if missing or not (readers or checked):
            problems.append((key.name, key.used, missing))
    assert problems == []


@pytest.mark.parametrize("args, says", [
    (["--i_embed=-1"], "train.i_embed must be one of [0], got -1: -1 (no positional encoding) is refused"),
    (["--frame2dolly", "3"], "the dolly-zoom path is not built"),
    (["--z_trans_multiplier", "2"], "the dolly-zoom path is not built"),
    (["--set", "model.use_encoder=false"], "only true is built"),
])
def test_original_keys_without_effect_here_are_refused_when_changed(exp_tree, args, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_config(["-c", str(exp_tree[1]), *args])
    load_config(["-c", str(exp_tree[1])])  # their defaults (the original's values) load


def test_the_typed_quirks_are_the_quirks_block():
    import dataclasses

    from mononerf.quirks import Quirks

    assert [f.name for f in dataclasses.fields(Quirks)] == [name for name, *_ in QUIRKS]
    assert all(f.default is True for f in dataclasses.fields(Quirks))
