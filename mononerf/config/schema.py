"""The key table of the configuration: every key, its type, default, meaning and reader (method.md §7.1, §7.2, §8).

One row per leaf key, in five sections:

* ``model.*``, ``info.*`` — the original's HOCON keys (method.md §7.1). A key's default is the "code default" of the
  original, i.e. the value its reader used when the key was absent; keys the original read with ``conf[...]``
  (a KeyError when absent) are ``REQUIRED`` — ``mononerf_conf/default.conf`` gives them all.
* ``train.*``, ``run.*`` — the original's command-line flags (method.md §7.2, ``src/util/args.py``), one key per flag,
  with the original's defaults; ``run`` holds infrastructure, ``train`` everything else.
* ``quirks.*`` — switches for the original's numerical quirks (method.md §8, ``docs/quirks.md``); ``true`` = as the
  original.

Each row is a :class:`~mononerf.config.key.Key` (its type tags and readers are described there); the ``train.*``
and ``run.*`` rows are in :mod:`mononerf.config.flags`. This table is the single source of ``docs/config.md``
(``python -m mononerf.config --markdown``).
"""

from __future__ import annotations

from mononerf.config.flags import FLAG_KEYS
from mononerf.config.key import (  # noqa: F401  (Key, REQUIRED, SECTIONS and the readers re-exported)
    BACKBONES_2D_NAMES, CONFIG, DATASET, EMBED, EVAL, HEADS, IMAGE_ENC, LOSS_TERMS, LOSSES, MODEL, PIPELINE, RAYS,
    RENDERER, REQUIRED, SECTIONS, TRAINER, VELOCITY, VIDEO_ENC, VOLUME, _RECIPE, Key, _k,
)

_NOT_BUILT = "unused: read by the original but without effect on its released model (method.md §2.0)"
_ODE = f"{VELOCITY} (flow_mode = \"ode\" only)"

SCHEMA: tuple[Key, ...] = (
    # ---------------------------------------------------------------- model (method.md §2.0, §7.1)
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
       f"(train.multires / train.multires_views, {EMBED}) is used instead (method.md §2.5)"),
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
       "(method.md §2.4)", f"{MODEL} via quirks.random_static_frame",
       note="the original's own key for quirk method.md §8.7; it gives the default of quirks.random_static_frame"),
    _k("model.feat_guided_flow", "bool", True, "condition the velocity field on the global video code (false = "
       "zero code)", MODEL),
    _k("model.unseen_frame_rendering", "bool", False, "unseen-frames mode: the dynamic stage trains on frames "
       "[0, model.training_frames)", f"{TRAINER}, {PIPELINE}, {LOSSES}"),
    _k("model.training_frames", "int", 3, "unseen-frames mode: the dynamic stage trains on frames "
       "[0, training_frames) (method.md §1.6)", f"{PIPELINE} (only with model.unseen_frame_rendering)",
       note="code default 3 of train_quarter_frame_training.py"),
    _k("model.held_out_every", "int", 0, "leave every N-th frame (k % N == N - 1) out of both training stages, to "
       "score it as unseen (0: every frame trains, as the original; docs/real-video.md)", PIPELINE, min_value=0,
       note="not in the original"),
    # static head (method.md §2.10)
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
    _k("model.mlp_static.origin_pipeline", "bool", False, "static head: zero latents (ablation; the head's "
       "zero_features)", MODEL),
    # dynamic head + velocity field (method.md §2.8, §2.9)
    _k("model.mlp_dynamic.type", "str", "resnet", "dynamic head type", CONFIG, choices=("resnet",),
       note="the original's code default 'mlp' was rejected by its own make_mlp"),
    _k("model.mlp_dynamic.n_blocks", "int", 5, "dynamic head: main residual blocks", HEADS),
    _k("model.mlp_dynamic.n_global_blocks", "int", 0, "dynamic head: blocks shared with the velocity field",
       f"{HEADS}, {VELOCITY}"),
    _k("model.mlp_dynamic.d_hidden", "int", 128, "dynamic head: hidden width", HEADS),
    _k("model.mlp_dynamic.beta", "float", 0.0, "dynamic head: softplus beta (0 = ReLU)", HEADS),
    _k("model.mlp_dynamic.combine_layer", "int", 1000, "dynamic head: combine layer (never reached with "
       "n_blocks=3, method.md §8.16)", HEADS),
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
       VELOCITY, choices=("discrete", "ode")),  # = the names of trajectory.INTEGRATORS (tests/test_model.py)
    _k("model.mlp_dynamic.discrete_steps", "int", 1, "Euler steps per frame (discrete mode)", VELOCITY),
    _k("model.mlp_dynamic.use_adjoint", "bool", False, "ODE mode: odeint_adjoint", _ODE),
    _k("model.mlp_dynamic.origin_pipeline", "bool", False, "dynamic head: zero latent and global code (ablation; "
       "the head's zero_features)", MODEL),
    _k("model.mlp_dynamic.flow_guided_feat", "bool", True, "dynamic head: add the pixel-aligned feature terms "
       "(current and t±1) in its main blocks (false = zeroed; the global code stays: model.feat_guided_flow)", HEADS),
    _k("model.mlp_dynamic.rtol", "float", 0.01, "ODE mode: relative tolerance", _ODE),
    _k("model.mlp_dynamic.atol", "float", 0.001, "ODE mode: absolute tolerance", _ODE),
    _k("model.mlp_dynamic.ode_solver", "str", "dopri5", "ODE mode: torchdiffeq method", _ODE),
    _k("model.mlp_dynamic.ode_step_size", "float?", None, "ODE mode: fixed step size (null = adaptive)", _ODE),
    _k("model.mlp_dynamic.use_sf_nonlinear", "bool", False, "non-linear scene-flow head",
       "unused: not read by the original's ResnetFC.from_conf (method.md §2.9)"),
    # video encoder (method.md §2.1)
    _k("model.encoder.type", "str", "slowonly", "video encoder", CONFIG, choices=("slowonly",),
       note="types 'spatial' and 'global' named undefined classes in the original"),
    _k("model.encoder.impl", "str", "native", "SlowOnly implementation: plain PyTorch or MMAction2",
       VIDEO_ENC, choices=("native", "mmaction"), note="new key (docs/decisions.md)"),
    _k("model.encoder.config_path", "str", REQUIRED, "MMAction2 model config of the SlowOnly backbone",
       "ignored: the backbone's architecture is fixed (SLOWONLY_R50_ARGS in mononerf/models/encoders.py, the "
       "original's config file's values), for both implementations"),
    _k("model.encoder.pretrained", "bool", REQUIRED, "load the Kinetics-400 SlowOnly weights", VIDEO_ENC),
    _k("model.encoder.pretrained_path", "str", REQUIRED, "SlowOnly weight file (put there by hand)", VIDEO_ENC),
    _k("model.encoder.num_layers", "int|list[int]", REQUIRED, "pixel-aligned layers: int k = layers 0..k-1, list "
       "= those layer ids ([0, 1, 2] → 832 channels)", VIDEO_ENC),
    _k("model.encoder.use_encoder_2d", "bool", False, "separate ResNet18 encoder for the static head", MODEL),
    _k("model.encoder.standardize_features", "bool", False, "standardise each channel of the pixel-aligned video "
       "features to mean 0, std 1 per scene, once after encoding", MODEL, note=_RECIPE),
    # 2D encoder (method.md §2.2)
    _k("model.encoder_2d.type", "str", "resnet18", "2D encoder of the static head: a torchvision ResNet by name "
       "(mononerf/models/spatial_encoder.py, BACKBONES_2D; the original: resnet18)", IMAGE_ENC,
       choices=BACKBONES_2D_NAMES, note="the original's code default 'slowonly' would build a second video encoder; "
       "the other ResNets are new"),
    _k("model.encoder_2d.pretrained", "bool", True, "load torchvision's ImageNet weights of the 2D backbone from a "
       "local file", IMAGE_ENC, note="new key: the original always downloaded them"),
    _k("model.encoder_2d.weights_path", "str?", None, "weight file of the 2D backbone (null: torchvision's file of "
       "model.encoder_2d.type, e.g. resnet18-f37072fd.pth; looked for in checkpoints/ and "
       "$TORCH_HOME/hub/checkpoints/)", IMAGE_ENC, note="new key"),
    _k("model.encoder_2d.standardize_features", "bool", False, "standardise each channel of the pixel-aligned "
       "image (ResNet18) features to mean 0, std 1 per scene, once after encoding", MODEL, note=_RECIPE),
    _k("model.encoder_2d.normalize", "any", True, "ImageNet normalisation flag", "ignored: the original built "
       "Resnet18() with its defaults (always normalises); the exp confs say \"Ture\", kept verbatim (method.md §2.0)"),
    # ---------------------------------------------------------------- info (method.md §7.1)
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
       PIPELINE, "--N_rand", cli_default=1024),
    _k("info.no_ndc", "bool", REQUIRED, "world-space sampling instead of NDC (must equal not model.use_ndc)",
       f"{TRAINER}, mononerf/render/field.py", "--no_ndc", cli_default=False),
    _k("info.chunk", "int", REQUIRED, "rays per render chunk during training", RENDERER, "--chunk",
       cli_default=262144),
    _k("info.blending_thickness", "float", REQUIRED, "depth-blending loss band in NDC depth (loss #14)", LOSSES,
       "--blending_thickness", cli_default=0.06),
    _k("info.evaldir", "str", "multiview", "sub-folder of the multi-view dumps", f"{TRAINER}, {EVAL}",
       note="read with conf[...] only when info.testset_all"),
    _k("info.slow_loss_lambda", "float", REQUIRED, "weight of the slow scene-flow loss (#8)", LOSS_TERMS,
       "--slow_loss_lambda", cli_default=0.01),
    _k("info.flow_loss_lambda", "float", REQUIRED, "weight of the optical-flow losses (#6-7)", LOSS_TERMS,
       "--flow_loss_lambda", cli_default=0.02),
    _k("info.use_lambda_decay", "bool", False, "decay the flow weight by 10x every decay_iteration*1000 steps and "
       "stop the mask losses then", LOSSES),
    _k("info.decay_iteration", "int?", None, "decay period in thousands of steps", LOSSES,
       note="null = max(25, N) with N frames per scene, computed by the trainer"),
    _k("info.use_depth_blending_loss", "bool", False, "enable the depth-blending loss (#14)", LOSSES),
    _k("info.use_static_flow_loss", "bool", False, "enable the static scene-flow loss (#15)", LOSSES),
    _k("info.static_flow_loss_lambda", "float", 0.5, "weight of the static scene-flow loss", LOSS_TERMS),
    _k("info.use_mask_flow_loss", "bool", False, "enable the mask-flow loss (#16)", LOSSES),
    _k("info.mask_flow_loss_lambda", "float?", None, "weight of the mask-flow loss", LOSS_TERMS,
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
       "unused: the branch was dead and crashed in the original (method.md §2.8); not reproduced"),
    _k("info.fast_render", "bool", False, "unseen-scene adaptation run (names, step counts from "
       "train.fast_render_iter)", TRAINER),
    _k("info.quarter_frame", "bool", False, "unseen-frames marker", "unused: never read by the original"),
    _k("info.use_unseen_frame_pretrain", "bool", True, "unseen-frames mode: run static pretraining and the "
       "img_s/img losses", TRAINER),
    _k("info.without_time", "bool", False, "unseen-frames mode: feed time 0 to every frame", PIPELINE),
) + FLAG_KEYS

QUIRKS: tuple[tuple[str, str, str, str], ...] = (
    # name, item of docs/method.md §8, reader, one-line meaning of true (= as the original)
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
)
"""The ``quirks`` block: every entry is a bool key ``quirks.<name>`` whose default is ``true`` (docs/quirks.md)."""


def _quirk_keys() -> tuple[Key, ...]:
    keys = []
    for name, item, used, meaning in QUIRKS:
        if name == "random_static_frame":
            keys.append(Key(f"quirks.{name}", "bool?", None, f"{meaning} (method.md {item})", used,
                            note="null = model.random_static_frame (default true); this key is the effective value"))
        else:
            keys.append(Key(f"quirks.{name}", "bool", True, f"{meaning} (method.md {item})", used))
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
