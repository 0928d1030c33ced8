"""The key table of the configuration: every key, its type, default, meaning and reader (spec §7.1, §7.2, §8).

One row per leaf key, in five sections:

* ``model.*``, ``info.*`` — the original's HOCON keys (spec §7.1). A key's default is the "code default" of the
  original, i.e. the value its reader used when the key was absent; keys the original read with ``conf[...]``
  (a KeyError when absent) are ``REQUIRED`` — ``mononerf_conf/default.conf`` gives them all.
* ``train.*``, ``run.*`` — the original's command-line flags (spec §7.2, ``src/util/args.py``), one key per flag,
  with the original's defaults; ``run`` holds infrastructure, ``train`` everything else.
* ``quirks.*`` — switches for the original's numerical quirks (spec §8, ``docs/quirks.md``); ``true`` = as the
  original.

Types are small tags checked by :mod:`mononerf.config`: ``bool``, ``int``, ``float`` (an int is accepted),
``str``, ``list[int]``, ``list[str]``, ``int|list[int]``, ``any``; a trailing ``?`` also allows ``null``/None.
``used`` names the module that reads the key (planned modules are named by the path they will have), or starts with
``unused:`` / ``ignored:`` and says why. This table is the single source of ``docs/config.md``
(``python -m mononerf.config --markdown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
"""Sentinel default of a key the conf (or the command line) must give."""

SECTIONS = ("model", "info", "train", "run", "quirks")

# Modules that read the keys (several are written by later issues; these are their intended paths).
MODEL = "mononerf/models/mononerf.py"
HEADS = "mononerf/models/heads.py"
VELOCITY = "mononerf/models/trajectory.py"
VIDEO_ENC = "mononerf/models/encoders.py"
IMAGE_ENC = "mononerf/models/encoders.py"
EMBED = "mononerf/models/embedder.py"
FACTORY = "mononerf/models/mononerf.py"
DATASET = "mononerf/data/dataset.py"
RENDER_PATH = "mononerf/geometry/poses.py"
RAYS = "mononerf/geometry/rays.py"
VOLUME = "mononerf/render/composite.py"
RENDERER = "mononerf/render/renderer.py"
LOSSES = "mononerf/losses/weights.py"
LOSS_TERMS = "mononerf/losses/total.py"
TRAINER = "mononerf/train/trainer.py"
CHECKPOINT = "mononerf/train/checkpoint.py"
FEATURE_CACHE = "mononerf/train/feature_cache.py"
DIST = "mononerf/train/distributed.py"
EVAL = "mononerf/eval/renders.py"
TRAIN_CLI = "mononerf/train/cli.py"
PIPELINE = "mononerf/train/pipeline.py"
CONFIG = "mononerf/config.py"
OPTIM = "mononerf/train/optim.py"
_RECIPE = "new key (not in the original): a lever of the training recipe, docs/training.md"


@dataclass(frozen=True)
class Key:
    """One leaf key of the configuration.

    Attributes:
        name: dotted key, e.g. ``"model.mlp_dynamic.n_blocks"``.
        type: type tag (see the module docstring).
        default: value used when no layer gives the key; ``REQUIRED`` if a layer must; ``None`` + ``note`` for a
            default the reader computes at run time.
        meaning: one line.
        used: reading module, or ``unused: why`` / ``ignored: why``.
        flags: the original's command-line flags that set this key (first = long name).
        choices: allowed values, if the key is an enumeration.
        cli_default: the original parser's default where it differs from ``default`` (flags of ``info.*`` keys,
            whose value the original always took from the conf).
        note: extra remark for the docs (dynamic defaults, deviations).
        min_value: smallest allowed value of a numeric key (None = no bound); values must also be finite.
        min_exclusive: the bound itself is not allowed (``> min_value``).
    """

    name: str
    type: str
    default: Any
    meaning: str
    used: str
    flags: tuple[str, ...] = ()
    choices: tuple[Any, ...] | None = None
    cli_default: Any = REQUIRED
    note: str = ""
    min_value: float | None = None
    min_exclusive: bool = False


def _k(name, type_, default, meaning, used, *flags, choices=None, cli_default=REQUIRED, note="", min_value=None,
       min_exclusive=False):
    return Key(name, type_, default, meaning, used, tuple(flags), choices, cli_default, note, min_value,
               min_exclusive)


_NOT_BUILT = "unused: read by the original but without effect on its released model (spec §2.0)"
_ODE = f"{MODEL} (flow_mode = \"ode\" only)"

SCHEMA: tuple[Key, ...] = (
    # ---------------------------------------------------------------- model (spec §2.0, §7.1)
    _k("model.type", "str", "pixelnerf", "model family", CONFIG, choices=("pixelnerf",),
       note="the one family built; checked by the config"),
    _k("model.use_encoder", "bool", False, "condition both heads on pixel-aligned image features", CONFIG,
       choices=(True,), note="only true is built (the released configs' value): the heads always read the "
       "features"),
    _k("model.use_ndc", "bool", True, "samples live in NDC and are mapped to world before projection (must equal "
       "not info.no_ndc)", MODEL),
    _k("model.use_global_encoder", "bool", False, "pixelNeRF global image encoder", CONFIG + " (only false is "
       "supported: the original's global-encoder path is dead code)"),
    _k("model.use_xyz", "bool", True, "feed xyz (not just z) to the heads", _NOT_BUILT),
    _k("model.canon_xyz", "bool", False, "pixelNeRF canonical-space xyz", "unused: never read by the original"),
    _k("model.use_code", "bool", False, "pixelNeRF positional-encoding module", "unused: the NeRF embedder "
       f"(train.multires / train.multires_views, {EMBED}) is used instead (spec §2.5)"),
    _k("model.code.num_freqs", "int", 6, "pixelNeRF positional encoding: frequencies", "unused: see model.use_code",
       note="never read by the original; default = default.conf"),
    _k("model.code.freq_factor", "float", 1.5, "pixelNeRF positional encoding: base factor",
       "unused: see model.use_code", note="never read by the original; default = default.conf"),
    _k("model.code.include_input", "bool", True, "pixelNeRF positional encoding: keep the raw input",
       "unused: see model.use_code", note="never read by the original; default = default.conf"),
    _k("model.use_viewdirs", "bool", False, "pixelNeRF view directions flag", _NOT_BUILT + "; view directions are "
       "always fed (train.use_viewdirs)"),
    _k("model.use_code_viewdirs", "bool", True, "pixelNeRF: encode view directions", _NOT_BUILT),
    _k("model.normalize_z", "bool", True, "pixelNeRF: shift z to a canonical frame", _NOT_BUILT),
    _k("model.random_static_frame", "bool", True, "static features from a random frame during static pretraining "
       "(spec §2.4)", f"{MODEL} via quirks.random_static_frame",
       note="the original's own key for quirk §8.7; it gives the default of quirks.random_static_frame"),
    _k("model.feat_guided_flow", "bool", True, "condition the velocity field on the global video code (false = "
       "zero code)", MODEL),
    _k("model.unseen_frame_rendering", "bool", False, "unseen-frames mode: the dynamic stage trains on frames "
       "[0, model.training_frames)", f"{TRAINER}, {LOSSES}"),
    _k("model.training_frames", "int", 3, "unseen-frames mode: the dynamic stage trains on frames "
       "[0, training_frames) (spec §1.6)", f"{TRAINER} (only with model.unseen_frame_rendering)",
       note="code default 3 of train_quarter_frame_training.py"),
    # static head (spec §2.10)
    _k("model.mlp_static.type", "str", "resnet_static", "static head type", CONFIG, choices=("resnet_static",),
       note="the original's code default 'mlp' was rejected by its own make_mlp"),
    _k("model.mlp_static.n_blocks", "int", 5, "static head: residual blocks", HEADS),
    _k("model.mlp_static.d_hidden", "int", 128, "static head: hidden width", HEADS),
    _k("model.mlp_static.beta", "float", 0.0, "static head: softplus beta (0 = ReLU)", HEADS),
    _k("model.mlp_static.combine_layer", "int", 1000, "static head: latent injected in blocks < combine_layer "
       "(combine itself is a no-op for one view)", HEADS),
    _k("model.mlp_static.combine_type", "str", "average", "static head: multi-view combine", CONFIG,
       choices=("average", "max"), note="checked only: each point is seen in one view, and combining one view is "
       "the identity (average = max), as in the original"),
    _k("model.mlp_static.use_viewdirs", "bool", True, "static head: NeRF-style view-dependent colour branch", HEADS),
    _k("model.mlp_static.use_spade", "bool", False, "static head: SPADE-style latent modulation", HEADS),
    _k("model.mlp_static.pixelnerf_mode", "bool", False, "static head: add the 2D latent through lin_z", HEADS),
    _k("model.mlp_static.origin_pipeline", "bool", False, "static head: zero latents (ablation)", f"{HEADS}, "
       f"{TRAINER}"),
    # dynamic head + velocity field (spec §2.8, §2.9)
    _k("model.mlp_dynamic.type", "str", "resnet", "dynamic head type", CONFIG, choices=("resnet",),
       note="the original's code default 'mlp' was rejected by its own make_mlp"),
    _k("model.mlp_dynamic.n_blocks", "int", 5, "dynamic head: main residual blocks", HEADS),
    _k("model.mlp_dynamic.n_global_blocks", "int", 0, "dynamic head: blocks shared with the velocity field",
       f"{HEADS}, {VELOCITY}"),
    _k("model.mlp_dynamic.d_hidden", "int", 128, "dynamic head: hidden width", HEADS),
    _k("model.mlp_dynamic.beta", "float", 0.0, "dynamic head: softplus beta (0 = ReLU)", HEADS),
    _k("model.mlp_dynamic.combine_layer", "int", 1000, "dynamic head: combine layer (never reached with "
       "n_blocks=3, spec §8.16)", HEADS),
    _k("model.mlp_dynamic.combine_type", "str", "average", "dynamic head: multi-view combine", CONFIG,
       choices=("average", "max"), note="checked only: each point is seen in one view, and combining one view is "
       "the identity (average = max), as in the original"),
    _k("model.mlp_dynamic.use_viewdirsDyn", "bool", True, "dynamic head: NeRF-style view-dependent colour branch",
       MODEL),
    _k("model.mlp_dynamic.use_spade", "bool", False, "dynamic head: SPADE-style latent modulation", HEADS),
    _k("model.mlp_dynamic.pixelnerf_mode", "bool", False, "dynamic head: latent added through lin_z", HEADS),
    _k("model.mlp_dynamic.feature_fuse_mode", "str", "addition", "how the latent enters the blocks", HEADS,
       choices=("addition", "concat")),
    _k("model.mlp_dynamic.use_temporal_feature", "bool", False, "fuse features of the flowed points at t-1/t+1 "
       "into block 0", f"{MODEL}, {HEADS}"),
    _k("model.mlp_dynamic.temporal_propotion", "float", 1.0, "weight of the temporal features (original spelling)",
       MODEL),
    _k("model.mlp_dynamic.use_layer_norm", "bool", False, "dynamic head: LayerNorm in the blocks", MODEL),
    _k("model.mlp_dynamic.flow_mode", "str", "discrete", "trajectory integration: explicit Euler or ODE solver",
       MODEL, choices=("discrete", "ode")),
    _k("model.mlp_dynamic.discrete_steps", "int", 1, "Euler steps per frame (discrete mode)", MODEL),
    _k("model.mlp_dynamic.use_adjoint", "bool", False, "ODE mode: odeint_adjoint", _ODE),
    _k("model.mlp_dynamic.origin_pipeline", "bool", False, "dynamic head: zero latent and global code (ablation)",
       f"{HEADS}, {TRAINER}"),
    _k("model.mlp_dynamic.flow_guided_feat", "bool", True, "dynamic head: features gathered along the trajectory "
       "(false = at the point; no effect on the released path)", HEADS),
    _k("model.mlp_dynamic.rtol", "float", 0.01, "ODE mode: relative tolerance", _ODE),
    _k("model.mlp_dynamic.atol", "float", 0.001, "ODE mode: absolute tolerance", _ODE),
    _k("model.mlp_dynamic.ode_solver", "str", "dopri5", "ODE mode: torchdiffeq method", _ODE),
    _k("model.mlp_dynamic.ode_step_size", "float?", None, "ODE mode: fixed step size (null = adaptive)", _ODE),
    _k("model.mlp_dynamic.use_sf_nonlinear", "bool", False, "non-linear scene-flow head",
       "unused: not read by the original's ResnetFC.from_conf (spec §2.9)"),
    # video encoder (spec §2.1)
    _k("model.encoder.type", "str", "slowonly", "video encoder", CONFIG, choices=("slowonly",),
       note="types 'spatial' and 'global' named undefined classes in the original"),
    _k("model.encoder.impl", "str", "native", "SlowOnly implementation: plain PyTorch or MMAction2",
       VIDEO_ENC, choices=("native", "mmaction"), note="new key (decisions.md)"),
    _k("model.encoder.config_path", "str", REQUIRED, "MMAction2 model config of the SlowOnly backbone",
       f"{VIDEO_ENC} (impl = \"mmaction\")"),
    _k("model.encoder.pretrained", "bool", REQUIRED, "load the Kinetics-400 SlowOnly weights", VIDEO_ENC),
    _k("model.encoder.pretrained_path", "str", REQUIRED, "SlowOnly weight file (put there by hand)", VIDEO_ENC),
    _k("model.encoder.num_layers", "int|list[int]", REQUIRED, "pixel-aligned layers: int k = layers 0..k-1, list "
       "= those layer ids ([0, 1, 2] → 832 channels)", VIDEO_ENC),
    _k("model.encoder.use_encoder_2d", "bool", False, "separate ResNet18 encoder for the static head", MODEL),
    _k("model.encoder.standardize_features", "bool", False, "standardise each channel of the pixel-aligned video "
       "features to mean 0, std 1 per scene, once after encoding", MODEL, note=_RECIPE),
    # 2D encoder (spec §2.2)
    _k("model.encoder_2d.type", "str", "resnet18", "2D encoder of the static head", CONFIG, choices=("resnet18",),
       note="the original's code default 'slowonly' would build a second video encoder"),
    _k("model.encoder_2d.pretrained", "bool", True, "load torchvision's ImageNet ResNet18 weights from a local file",
       IMAGE_ENC, note="new key: the original always downloaded them"),
    _k("model.encoder_2d.weights_path", "str", "resnet18-f37072fd.pth", "ResNet18 weight file (looked for in "
       "checkpoints/ and $TORCH_HOME/hub/checkpoints/)", IMAGE_ENC, note="new key"),
    _k("model.encoder_2d.standardize_features", "bool", False, "standardise each channel of the pixel-aligned "
       "image (ResNet18) features to mean 0, std 1 per scene, once after encoding", MODEL, note=_RECIPE),
    _k("model.encoder_2d.normalize", "any", True, "ImageNet normalisation flag", "ignored: the original built "
       "Resnet18() with its defaults (always normalises); the exp confs say \"Ture\", kept verbatim (spec §2.0)"),
    # ---------------------------------------------------------------- info (spec §7.1)
    _k("info.add_features", "bool", REQUIRED, "copied to args by the original", "unused: no effect in the "
       "original", "--add_features", cli_default=False),
    _k("info.basedir", "str", REQUIRED, "log root; runs go to {basedir}/{expname}/", PIPELINE, "--basedir",
       cli_default="./logs/"),
    _k("info.expname", "str", REQUIRED, "experiment name (the trainer prefixes '{W}gpus')", PIPELINE, "--expname",
       cli_default="Balloon1_H270_DyNeRF_pretrain"),
    _k("info.ft_S", "bool", REQUIRED, "fine-tune the static branch flag", "unused: copied to args, never read",
       "--ft_S", cli_default=False),
    _k("info.ft_path_S", "str?", REQUIRED, "Pretrained_S checkpoint; the string \"None\" = look in the run folder",
       TRAINER, "--ft_path_S", cli_default="logs/tfr_Balloon2_H270_DyNeRF_pretrain/Pretrained_S.tar"),
    _k("info.dataset_file_lists", "list[str]?", REQUIRED, "scene folders trained together in one batch "
       "([\"ALL\"] = every folder of ./data)", DATASET, "--dataset_file_lists",
       cli_default=["data/Balloon2", "data/Balloon1", "data/Truck"]),
    _k("info.random_seed", "int", REQUIRED, "seed (+ rank) of python/numpy/torch", TRAINER, "--random_seed",
       cli_default=42),
    _k("info.freeze_enc", "bool", REQUIRED, "encode once under no_grad and detach the latents", MODEL),
    _k("info.N_rand", "int", REQUIRED, "rays per step over all scenes (divided by the number of scenes)",
       TRAINER, "--N_rand", cli_default=1024),
    _k("info.no_ndc", "bool", REQUIRED, "world-space sampling instead of NDC (must equal not model.use_ndc)",
       f"{TRAINER}, mononerf/train/step.py", "--no_ndc", cli_default=False),
    _k("info.chunk", "int", REQUIRED, "rays per render chunk during training", RENDERER, "--chunk",
       cli_default=262144),
    _k("info.blending_thickness", "float", REQUIRED, "depth-blending loss band in NDC depth (loss #14)", LOSSES,
       "--blending_thickness", cli_default=0.06),
    _k("info.evaldir", "str", "multiview", "sub-folder of the multi-view dumps", f"{TRAINER}, {EVAL}",
       note="read with conf[...] only when info.testset_all"),
    _k("info.slow_loss_lambda", "float", REQUIRED, "weight of the slow scene-flow loss (#8)", LOSSES,
       "--slow_loss_lambda", cli_default=0.01),
    _k("info.flow_loss_lambda", "float", REQUIRED, "weight of the optical-flow losses (#6-7)", LOSSES,
       "--flow_loss_lambda", cli_default=0.02),
    _k("info.use_lambda_decay", "bool", False, "decay the flow weight by 10x every decay_iteration*1000 steps and "
       "stop the mask losses then", LOSSES),
    _k("info.decay_iteration", "int?", None, "decay period in thousands of steps", LOSSES,
       note="null = max(25, N) with N frames per scene, computed by the trainer"),
    _k("info.use_depth_blending_loss", "bool", False, "enable the depth-blending loss (#14)", LOSSES),
    _k("info.use_static_flow_loss", "bool", False, "enable the static scene-flow loss (#15)", LOSSES),
    _k("info.static_flow_loss_lambda", "float", 0.5, "weight of the static scene-flow loss", LOSSES),
    _k("info.use_mask_flow_loss", "bool", False, "enable the mask-flow loss (#16)", LOSSES),
    _k("info.mask_flow_loss_lambda", "float?", None, "weight of the mask-flow loss", LOSSES,
       note="null = train.mask_loss_lambda, resolved by the loss module"),
    _k("info.use_clip_grad_norm", "bool", False, "clip the gradient norm to 10 in the dynamic stage", TRAINER),
    _k("info.testset_all", "bool", False, "render the N x N multi-view grid every train.i_testset_all steps",
       TRAINER),
    _k("info.freeze_BN", "bool", False, "BatchNorm freeze flag", "unused: never read by the original"),
    _k("info.use_feat_consistency", "bool", True, "enable the t-1/t+1 dynamic photometric losses (#4-5)", LOSSES),
    _k("info.use_flow", "bool", True, "enable the flow and scene-flow losses (#6-11)", LOSSES),
    _k("info.change_background", "bool", False, "editing demo: swap the static latent across scenes, no backward",
       "unused: a demo hack of the original, not reproduced"),
    _k("info.chain_5frames_epoch", "int", 300000, "step from which the chain_5frames branch (t±2 renders) turns on",
       "unused: the branch was dead and crashed in the original (spec §2.8); not reproduced"),
    _k("info.fast_render", "bool", False, "unseen-scene adaptation run (names, step counts from "
       "train.fast_render_iter)", TRAINER),
    _k("info.quarter_frame", "bool", False, "unseen-frames marker", "unused: never read by the original"),
    _k("info.use_unseen_frame_pretrain", "bool", True, "unseen-frames mode: run static pretraining and the "
       "img_s/img losses", TRAINER),
    _k("info.without_time", "bool", False, "unseen-frames mode: feed time 0 to every frame", TRAINER),
    # ---------------------------------------------------------------- train (spec §7.2, command-line flags)
    _k("train.datadir", "str", "./data/Balloon2/", "scene folder when info.dataset_file_lists is null", DATASET,
       "--datadir", note="original parser default ./data/Balloon1/; its auto-loaded config_Balloon2.txt gave "
       "./data/Balloon2/"),
    _k("train.netdepth", "int", 8, "NeRF MLP depth", "ignored: DynNeRF-era flag, the heads are set by model.*",
       "--netdepth"),
    _k("train.netwidth", "int", 256, "NeRF MLP width", "ignored: DynNeRF-era flag, the heads are set by model.*",
       "--netwidth"),
    _k("train.netdepth_fine", "int", 8, "fine NeRF MLP depth", "ignored: no fine network", "--netdepth_fine"),
    _k("train.netwidth_fine", "int", 256, "fine NeRF MLP width", "ignored: no fine network", "--netwidth_fine"),
    _k("train.lrate", "float", 5e-4, "Adam learning rate", OPTIM, "--lrate", min_value=0, min_exclusive=True),
    _k("train.lrate_decay", "int", 300000, "lr = lrate * 0.1 ** (step / lrate_decay), in steps", OPTIM,
       "--lrate_decay"),
    _k("train.netchunk", "int", 131072, "points per network call (divided by the number of scenes)",
       "mononerf/train/step.py (the slices of batchify_field, mononerf/render/images.py)",
       "--netchunk"),
    _k("train.no_reload", "bool", False, "do not resume from the run folder's checkpoints", TRAINER,
       "--no_reload"),
    _k("train.ft_path", "str?", None, "checkpoint to start from (unseen-scene adaptation, resume)", TRAINER,
       "--ft_path"),
    _k("train.N_samples", "int", 64, "samples per ray", "mononerf/train/step.py", "--N_samples"),
    _k("train.N_importance", "int", 0, "fine samples per ray (only 0: the original raised NotImplementedError)",
       CONFIG, "--N_importance"),
    _k("train.perturb", "float", 1.0, "stratified jitter of the samples while training (0 = none)", RENDERER,
       "--perturb"),
    _k("train.use_viewdirs", "bool", True, "feed view directions (store_true with default true in the original)",
       MODEL, "--use_viewdirs"),
    _k("train.use_viewdirsDyn", "bool", False, "DynNeRF view-dependent dynamic branch", "ignored: the conf key "
       "model.mlp_dynamic.use_viewdirsDyn decides", "--use_viewdirsDyn"),
    _k("train.i_embed", "int", 0, "positional encoding (0 = NeRF sin/cos, -1 = identity)", CONFIG, "--i_embed",
       choices=(0,), note="-1 (no positional encoding) is refused: the original's head input sizes are hard-coded "
       "for the sin/cos encoding (spec §8.29)"),
    _k("train.multires", "int", 10, "frequencies of the xyzt encoding (widths follow it here, spec §8.29)", EMBED,
       "--multires"),
    _k("train.multires_views", "int", 4, "frequencies of the view-direction encoding", EMBED, "--multires_views"),
    _k("train.raw_noise_std", "float", 1.0, "std of the noise added to sigma while training", VOLUME,
       "--raw_noise_std"),
    _k("train.render_only", "bool", False, "render without training", "ignored: never read by the original",
       "--render_only"),
    _k("train.dataset_type", "str", "llff", "scene folder format: a loader of mononerf.data.dataset.SCENE_FORMATS "
       "(llff: poses_bounds.npy, images_<factor>/, disp/, motion_masks/, flow/)", PIPELINE, "--dataset_type",
       note="NDC is chosen by info.no_ndc (the original: NDC only for llff)"),
    _k("train.factor", "int", 2, "image downsample factor: the frames of images_<factor>/", PIPELINE, "--factor",
       note="the original's loader hard-coded 2 (images_2/)"),
    _k("train.lindisp", "bool", False, "sample linearly in disparity (no-NDC mode)", RENDERER, "--lindisp"),
    _k("train.spherify", "bool", False, "spherical 360 scenes: NeRF's LLFF normalisation (NDC must be off)",
       PIPELINE, "--spherify", note="the original has the flag but no code (spec §1.2)"),
    _k("train.i_print", "int", 1000, "steps between TensorBoard scalars", TRAINER, "--i_print"),
    _k("train.i_log", "int", 100, "steps between log lines", TRAINER, "--i_log"),
    _k("train.i_img", "int", 1000, "steps between full-image renders to TensorBoard", TRAINER, "--i_img"),
    _k("train.i_img_downscale", "int", 1, "full-image renders to TensorBoard (i_img) F times smaller than the "
       "training images (1 = the original's full size)", TRAINER, note="new key: a full 160x90 dynamic render takes "
       "~1 min on 2 CPU cores", min_value=1),
    _k("train.i_weights", "int", 10000, "steps between checkpoints", TRAINER, "--i_weights"),
    _k("train.i_testset", "int", 20000, "steps between test-set renders", TRAINER, "--i_testset"),
    _k("train.i_video", "int", 20000, "steps between novel-view-time videos", TRAINER, "--i_video"),
    _k("train.i_testset_all", "int", 20000, "steps between multi-view grid dumps (with info.testset_all)",
       TRAINER, "--i_testset_all"),
    _k("train.N_iters", "int", 150001, "dynamic-stage steps", TRAINER, "--N_iters", min_value=0),
    _k("train.N_static_iters", "int", 150001, "static-pretraining steps", TRAINER, "--N_static_iters", min_value=0),
    _k("train.dynamic_loss_lambda", "float", 1.0, "weight of the dynamic photometric losses (#3-5)", LOSSES,
       "--dynamic_loss_lambda"),
    _k("train.static_loss_lambda", "float", 1.0, "weight of the static photometric loss (pretraining)", LOSSES,
       "--static_loss_lambda"),
    _k("train.full_loss_lambda", "float", 3.0, "weight of the blended photometric loss (#2)", LOSSES,
       "--full_loss_lambda"),
    _k("train.depth_loss_lambda", "float", 0.04, "weight of the depth loss (#17)", LOSSES, "--depth_loss_lambda"),
    _k("train.feature_loss_lambda", "float", 0.01, "feature loss weight", "ignored: never read by the original",
       "--feature_loss_lambda"),
    _k("train.order_loss_lambda", "float", 0.1, "weight of the depth-order loss (#18)", LOSSES,
       "--order_loss_lambda"),
    _k("train.smooth_loss_lambda", "float", 0.1, "weight of the scene-flow smoothness losses (#9, #10, #19)",
       LOSSES, "--smooth_loss_lambda"),
    _k("train.consistency_loss_lambda", "float", 1.0, "weight of the scene-flow cycle loss (#11)", LOSSES,
       "--consistency_loss_lambda"),
    _k("train.mask_loss_lambda", "float", 0.1, "weight of the mask loss (#12)", LOSSES, "--mask_loss_lambda"),
    _k("train.sparse_loss_lambda", "float", 0.001, "weight of the entropy losses (#13)", LOSSES,
       "--sparse_loss_lambda"),
    _k("train.DyNeRF_blending", "bool", True, "blending weight from the dynamic head (else the static head's)",
       RENDERER, "--DyNeRF_blending"),
    _k("train.pretrain", "bool", True, "run static pretraining unless a Pretrained_S is found", TRAINER,
       "--pretrain"),
    _k("train.frame2dolly", "int", -1, "dolly-zoom frame of the render path (-1 = spiral only)", CONFIG,
       "--frame2dolly", choices=(-1,), note="the dolly-zoom path is not built; the original ignored the flag and "
       "hard-coded -1"),
    _k("train.x_trans_multiplier", "float", 1.0, "render path: x amplitude", PIPELINE, "--x_trans_multiplier",
       note="the original ignored the flag and hard-coded the same value"),
    _k("train.y_trans_multiplier", "float", 0.33, "render path: y amplitude", PIPELINE, "--y_trans_multiplier",
       note="the original ignored the flag and hard-coded the same value"),
    _k("train.z_trans_multiplier", "float", 5.0, "render path: dolly amplitude", CONFIG,
       "--z_trans_multiplier", choices=(5.0,), note="the dolly-zoom path is not built; the original ignored the flag "
       "and hard-coded 5"),
    _k("train.num_novelviews", "int", 60, "render path: number of poses", PIPELINE, "--num_novelviews",
       note="the original ignored the flag and hard-coded the same value"),
    _k("train.focal_decrease", "float", 200.0, "render path: focal change of the dolly zoom", CONFIG,
       "--focal_decrease", choices=(200.0,), note="the dolly-zoom path is not built; the original ignored the flag "
       "and hard-coded 200"),
    _k("train.deterministic", "bool", True, "cudnn deterministic, no benchmark", TRAINER, "--deterministic",
       note="the original parsed it with type=bool, so any value meant true; here 'false' means false"),
    _k("train.dataset_format", "str", "monocular", "dataset kind", CONFIG, "--dataset_format", "-F",
       choices=("monocular",), note="the one dataset kind"),
    _k("train.epochs", "int", 10000000, "pixelNeRF epochs", "ignored: never read by the original", "--epochs"),
    _k("train.gamma", "float", 1.0, "pixelNeRF lr decay factor", "ignored: never read by the original",
       "--gamma"),
    _k("train.batch_size", "int", 10, "scenes per batch (must be >= the number of scenes)", TRAINER,
       "--batch_size", "-B", note="fewer than the scenes is refused: the original then trained only the first "
       "batch's scenes; every scene trains in one batch here"),
    _k("train.fast_render_iter", "int", 0, "unseen-scene adaptation: static and dynamic steps (needs "
       "info.fast_render)", TRAINER, "--fast_render_iter"),
    _k("train.fast_render_basename", "str?", None, "unseen-scene adaptation: prefix of the run name", PIPELINE,
       "--fast_render_basename"),
    # the dynamic-stage training recipe (new keys; docs/training.md). Every default is the original's behaviour.
    _k("train.dynamic_lrate_warmup", "int", 0, "dynamic stage: linear learning-rate warm-up over the first N steps "
       "(step k runs at min(1, (k+1)/N) times the rate; 0 = none)", OPTIM, note=_RECIPE, min_value=0),
    _k("train.lrate_scale_global_code", "float", 1.0, "dynamic stage: learning rate of the global-code MLP "
       "(mlp_dynamic.ode_fc) as a multiple of the rate", OPTIM, note=_RECIPE, min_value=0, min_exclusive=True),
    _k("train.lrate_scale_blending", "float", 1.0, "dynamic stage: learning rate of the blending head "
       "(mlp_dynamic.weight_linear) as a multiple of the rate", OPTIM, note=_RECIPE, min_value=0,
       min_exclusive=True),
    _k("train.adam_eps", "float", 1e-8, "Adam's epsilon (both stages)", OPTIM, note=_RECIPE, min_value=0,
       min_exclusive=True),
    _k("train.blending_warmup", "int", 0, "dynamic stage: the first N steps leave the terms that train the blending "
       "weight out of the loss (blended image, mask, mask-flow, depth-blending, blending entropy), so the dynamic "
       "branch first learns on its own image loss", f"{LOSSES}, {TRAINER}", note=_RECIPE, min_value=0),
    # ---------------------------------------------------------------- run (infrastructure flags)
    _k("run.device", "str", "auto", "device: auto (cuda if available) | cpu | cuda | cuda:N", TRAINER,
       "--device", note="new flag"),
    _k("run.launcher", "str", "slurm", "how torch.distributed is initialised when WORLD_SIZE > 1", DIST,
       "--launcher", choices=("none", "pytorch", "slurm"),
       note="distributed init only happens with more than one process (decisions.md)"),
    _k("run.backend", "str", "nccl", "torch.distributed backend (nccl needs CUDA; gloo works on CPU)", DIST, "--backend"),
    _k("run.world_size", "int", 1, "number of processes", DIST, "--world_size"),
    _k("run.master_addr", "str", "localhost", "rendezvous address", DIST, "--master_addr"),
    _k("run.master_port", "str", "12345", "rendezvous port", DIST, "--master_port"),
    _k("run.gpus_ids", "str", "0", "GPU ids", "ignored: the original overwrote it from the world size",
       "--gpus_ids"),
    _k("run.local_rank", "int", 0, "process rank on this node (set by the launcher)", DIST, "--local_rank",
       "--local-rank"),
    _k("run.gpu_id", "str", "0", "pixelNeRF GPU list", "ignored: only fed an unused device in the original; use "
       "--device", "--gpu_id"),
    _k("run.name", "str", "dynamic", "pixelNeRF experiment name", "ignored: info.expname names the run",
       "--name", "-n"),
    _k("run.exp_group_name", "str?", None, "pixelNeRF experiment group", "ignored: crashed the original "
       "(spec §8.30)", "--exp_group_name", "-G"),
    _k("run.logs_path", "str", "logs", "pixelNeRF log folder", "ignored: info.basedir is the log root",
       "--logs_path"),
    _k("run.visual_path", "str", "visuals", "pixelNeRF visuals folder", "ignored: never read by the original",
       "--visual_path"),
    _k("run.eval_only", "bool", False, "evaluate the run's newest checkpoint (multi-view dump + scores), no "
       "training", TRAIN_CLI, "--eval_only", note="the original only skipped writing args.txt"),
    _k("run.feature_cache", "str?", "{basedir}/feature_cache", "folder of cached encoder features, keyed by the "
       "frames, the encoder weights and the encoding quirks (null = no cache)", PIPELINE,
       note="new key: a restart or an evaluation does not re-encode"),
    _k("run.feature_volume", "str", "native", "how the encoded features are held: native = each encoder layer at "
       "its own resolution, resized frame by frame when read (same values, ~half the memory); upsampled = the "
       "original's one volume on the finest grid", MODEL,
       "--feature_volume", choices=("native", "upsampled"),
       note="new key: the SlowOnly volume at 480x270 is 2.6 GB upsampled, 1.4 GB native"),
    _k("run.activation_checkpointing", "bool", False, "dynamic-stage training recomputes each network call in the "
       "backward pass instead of keeping its activations (same values and gradients; less memory, one more forward "
       "evaluation)", "mononerf/train/step.py", "--activation_checkpointing",
       note="new key: fits the original's 512 and 1024 rays per scene in less memory"),
)

QUIRKS: tuple[tuple[str, str, str, str], ...] = (
    # name, spec item, reader, one-line meaning of true (= as the original)
    ("discrete_flow_branch_mixup", "§8.1", VELOCITY, "forward Euler branch rebuilt from the backward hidden state "
     "at every global block; the backward branch never sees the global code"),
    ("temporal_feature_ndc_as_world", "§8.2", MODEL, "flowed NDC points projected with the t±1 pose as if they "
     "were world points"),
    ("latent_temporal_reshape", "§8.3", MODEL, "t±1 features reshaped (SB,C,2,P)→(SB,P,2,C) without a transpose"),
    ("depth_target_in_place", "§8.4", LOSS_TERMS, "the depth-blending loss rewrites the disparity target that the "
     "depth loss then uses (inverted ordering)"),
    ("encoder_clip_stretch", "§8.5", f"{DATASET}, {MODEL}", "video-encoder clip stretched to the swapped (H,W); "
     "NDC→world and the principal point use that swapped size"),
    ("encoder_batchnorm_train", "§8.6", MODEL, "encoders run with BatchNorm in train mode (batch statistics over "
     "all scenes of the batch)"),
    ("random_static_frame", "§8.7", MODEL, "static features from a random frame per scene and call during static "
     "pretraining"),
    ("shared_sigma_noise", "§8.8", VOLUME, "one noise tensor added to both static and dynamic sigma"),
    ("frame_gating_leak", "§8.9", LOSS_TERMS, "t±1 photometric losses gated by the last scene's frame for all scenes"),
    ("flow_loss_scene_sum", "§8.10", LOSS_TERMS, "optical-flow losses summed (not averaged) over scenes"),
    ("img_s_loss_scene_slice", "§8.11", LOSS_TERMS, "img_s_loss slices [:N_rand//2] on the scene dim (logged only)"),
    ("entropy_batch_normalisation", "§8.11", LOSS_TERMS, "entropy divided by B·R (shape[0]·shape[1])"),
    ("neighbour_time_rounding", "§8.14", f"{MODEL}, {RENDERER}", "velocity time continuous while features use the "
     "rounded frame; t±1 queries carry t∓2/N"),
    ("no_half_pixel_offset", "§8.15", f"{RAYS}, {DATASET}", "pixel centres at integer coordinates (no +0.5) in "
     "rays and flow grids"),
    ("render_path_neighbour_clamp", "§8.18", PIPELINE, "render_path clamps the neighbour pose index by the batch "
     "size"),
)
"""The ``quirks`` block: every entry is a bool key ``quirks.<name>`` whose default is ``true`` (docs/quirks.md)."""


def _quirk_keys() -> tuple[Key, ...]:
    keys = []
    for name, item, used, meaning in QUIRKS:
        if name == "random_static_frame":
            keys.append(Key(f"quirks.{name}", "bool?", None, f"{meaning} (spec {item})", used,
                            note="null = model.random_static_frame (default true); this key is the effective value"))
        else:
            keys.append(Key(f"quirks.{name}", "bool", True, f"{meaning} (spec {item})", used))
    return tuple(keys)


ALL_KEYS: tuple[Key, ...] = SCHEMA + _quirk_keys()
KEYS: dict[str, Key] = {k.name: k for k in ALL_KEYS}
FLAGS: dict[str, Key] = {flag: k for k in ALL_KEYS for flag in k.flags}
"""Each of the original's command-line flags (and ``--device``) → the one key it sets."""

FILE_FLAGS: dict[str, str] = {
    "-c/--conf": "the HOCON conf file (not a key; its files are listed by Config.files). The original's default "
                 "pixelnerf_conf/exp/dynamic.conf did not exist: here -c is required",
    "--config": "a configargparse txt file of the original's flags (e.g. configs/config_Balloon2.txt); each line "
                "sets the key of that flag, below the HOCON conf. The original auto-loaded "
                "configs/config_Balloon2.txt, whose values equal the defaults here",
    "--set KEY=VALUE": "new: set any dotted key; VALUE is a HOCON/JSON literal; repeatable, applied last",
}


def section_prefixes() -> set[str]:
    """Every dotted prefix that names a section (``model``, ``model.mlp_dynamic``, ...)."""
    out = set()
    for name in KEYS:
        parts = name.split(".")
        for i in range(1, len(parts)):
            out.add(".".join(parts[:i]))
    return out
