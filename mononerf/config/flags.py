"""The ``train.*`` and ``run.*`` keys: the original's command-line flags (method.md §7.2, ``src/util/args.py``), one key
per flag, with the original's defaults; ``run`` holds infrastructure, ``train`` everything else. Part of the key
table, :data:`mononerf.config.schema.SCHEMA`.
"""

from __future__ import annotations

from mononerf.config.key import (
    CONFIG, DATASET, DIST, EMBED, LOSS_TERMS, LOSSES, MODEL, OPTIM, PIPELINE, RENDERER, TRAIN_CLI, TRAINER, VOLUME,
    _RECIPE, Key, _k,
)

FLAG_KEYS: tuple[Key, ...] = (
    # ---------------------------------------------------------------- train (method.md §7.2, command-line flags)
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
       "mononerf/render/field.py (the slices of batchify_field, mononerf/render/images.py)",
       "--netchunk"),
    _k("train.no_reload", "bool", False, "do not resume from the run folder's checkpoints", TRAINER,
       "--no_reload"),
    _k("train.ft_path", "str?", None, "checkpoint to start from (unseen-scene adaptation, resume)", TRAINER,
       "--ft_path"),
    _k("train.N_samples", "int", 64, "samples per ray", "mononerf/render/field.py", "--N_samples", min_value=1),
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
       "for the sin/cos encoding (method.md §8.29)"),
    _k("train.multires", "int", 10, "frequencies of the xyzt encoding (widths follow it here, method.md §8.29)", EMBED,
       "--multires"),
    _k("train.multires_views", "int", 4, "frequencies of the view-direction encoding", EMBED, "--multires_views"),
    _k("train.raw_noise_std", "float", 1.0, "std of the noise added to sigma while training", VOLUME,
       "--raw_noise_std"),
    _k("train.render_only", "bool", False, "render without training", "ignored: never read by the original",
       "--render_only"),
    _k("train.dataset_type", "str", "llff", "scene folder format: a loader of mononerf.data.formats.SCENE_FORMATS "
       "(llff: poses_bounds.npy, images_<factor>/, disp/, motion_masks/, flow/; nerfies: Nerfies / HyperNeRF; iphone: "
       "DyCheck's iPhone set; docs/datasets.md), or auto: each folder's own format", PIPELINE, "--dataset_type",
       choices=("llff", "nerfies", "iphone", "auto"),
       note="NDC is chosen by info.no_ndc (the original: NDC only for llff)"),
    _k("train.factor", "int", 2, "image downsample factor: the frames of images_<factor>/", PIPELINE, "--factor",
       note="the original's loader hard-coded 2 (images_2/)"),
    _k("train.lindisp", "bool", False, "sample linearly in disparity (no-NDC mode)", RENDERER, "--lindisp"),
    _k("train.spherify", "bool", False, "spherical 360 scenes: NeRF's LLFF normalisation (NDC must be off)",
       PIPELINE, "--spherify", note="the original has the flag but no code (method.md §1.2)"),
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
    _k("train.dynamic_loss_lambda", "float", 1.0, "weight of the dynamic photometric losses (#3-5)", LOSS_TERMS,
       "--dynamic_loss_lambda"),
    _k("train.static_loss_lambda", "float", 1.0, "weight of the static photometric loss (pretraining)", PIPELINE,
       "--static_loss_lambda"),
    _k("train.full_loss_lambda", "float", 3.0, "weight of the blended photometric loss (#2)", LOSS_TERMS,
       "--full_loss_lambda"),
    _k("train.depth_loss_lambda", "float", 0.04, "weight of the depth loss (#17)", LOSS_TERMS,
       "--depth_loss_lambda"),
    _k("train.feature_loss_lambda", "float", 0.01, "feature loss weight", "ignored: never read by the original",
       "--feature_loss_lambda"),
    _k("train.order_loss_lambda", "float", 0.1, "weight of the depth-order loss (#18)", LOSS_TERMS,
       "--order_loss_lambda"),
    _k("train.smooth_loss_lambda", "float", 0.1, "weight of the scene-flow smoothness losses (#9, #10, #19)",
       LOSS_TERMS, "--smooth_loss_lambda"),
    _k("train.consistency_loss_lambda", "float", 1.0, "weight of the scene-flow cycle loss (#11)", LOSS_TERMS,
       "--consistency_loss_lambda"),
    _k("train.mask_loss_lambda", "float", 0.1, "weight of the mask loss (#12)", LOSS_TERMS, "--mask_loss_lambda"),
    _k("train.sparse_loss_lambda", "float", 0.001, "weight of the entropy losses (#13)", LOSS_TERMS,
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
       "branch first learns on its own image loss", f"{LOSSES}, {PIPELINE}", note=_RECIPE, min_value=0),
    # ---------------------------------------------------------------- run (infrastructure flags)
    _k("run.device", "str", "auto", "device: auto (cuda if available) | cpu | cuda | cuda:N", TRAINER,
       "--device", note="new flag"),
    _k("run.launcher", "str", "slurm", "how torch.distributed is initialised when WORLD_SIZE > 1", DIST,
       "--launcher", choices=("none", "pytorch", "slurm"),
       note="distributed init only happens with more than one process (docs/decisions.md)"),
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
       "(method.md §8.30)", "--exp_group_name", "-G"),
    _k("run.logs_path", "str", "logs", "pixelNeRF log folder", "ignored: info.basedir is the log root",
       "--logs_path"),
    _k("run.visual_path", "str", "visuals", "pixelNeRF visuals folder", "ignored: never read by the original",
       "--visual_path"),
    _k("run.eval_only", "bool", False, "evaluate the run's newest checkpoint (multi-view dump + scores), no "
       "training", TRAIN_CLI, "--eval_only", note="the original only skipped writing args.txt"),
    _k("run.protocol", "str", "mononerf", "the novel-view protocol of --eval_only: mononerf = every camera at every "
       "time (the released evaluation.py), dynamicnerf = camera 0 at every time (DynamicNeRF's, the literature's "
       "tables), dycheck = the validation cameras of iPhone / Nerfies scenes over their co-visibility masks "
       "(docs/evaluation.md)", TRAIN_CLI, "--protocol", choices=("mononerf", "dynamicnerf", "dycheck"),
       note="new flag"),
    _k("run.world_rays", "str", "run", "which scenes sample in world space: run = every scene as info.no_ndc says "
       "(the original); auto = NDC for the forward-facing scenes (every camera within 45 degrees of the average view) "
       "and world rays for the others, scene by scene (docs/datasets.md)", PIPELINE, "--world_rays",
       choices=("run", "auto"), note="new key: captures that are not forward-facing train beside LLFF scenes"),
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
       "evaluation)", "mononerf/render/field.py", "--activation_checkpointing",
       note="new key: fits the original's 512 and 1024 rays per scene in less memory"),
    _k("run.flush_denormal", "bool", False, "CPU: flush float results and inputs below 1.2e-38 to zero on every "
       "thread (false = IEEE denormal numbers, the original's arithmetic; true changes only such values and keeps a "
       "CPU training step from slowing down ~3x as the losses saturate: docs/training.md)", PIPELINE,
       "--flush_denormal", note="new key: the demo sets it"),
    _k("run.keep_freed_memory", "bool", True, "CPU: a freed tensor of 32 MB or more keeps its memory for the next "
       "one of its size instead of handing it back to the kernel, within the most memory ever in use at once (the "
       "same values and peak; a released-size CPU training step ~2x faster where fresh pages are slow to fault in, "
       "e.g. a virtual machine; a small C++ allocator compiled on first use: docs/training.md)", PIPELINE,
       "--keep_freed_memory", note="new key: process-wide, each CPU pipeline sets it"),
)
