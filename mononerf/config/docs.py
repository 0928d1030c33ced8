"""``docs/config.md`` generated from the key table of :mod:`mononerf.config.schema`
(``python -m mononerf.config --markdown > docs/config.md``; tests/test_config.py checks it is up to date)."""

from __future__ import annotations

from typing import Any

from mononerf.config.schema import ALL_KEYS, FILE_FLAGS, REQUIRED, SECTIONS

def _cell(value: Any) -> str:
    import json

    text = "required" if value is REQUIRED else json.dumps(value) if not isinstance(value, str) else f'"{value}"'
    return text.replace("|", "\\|")


def _text(text: str) -> str:
    return text.replace("|", "\\|")


_INTRO = """\
# Configuration reference

<!-- Generated from mononerf/config/schema.py (mononerf/config/docs.py) by `python -m mononerf.config --markdown > docs/config.md`.
     Do not edit by hand: tests/test_config.py checks that this file is up to date. -->

MonoNeRF builds ONE configuration at start-up from a HOCON conf file and the command line, validates it once, and
hands typed sub-trees to the modules (`mononerf/config/`: `load_config(argv)`, `parse_config_file(path)`).
The conf files of the original live under `mononerf_conf/` with the same paths, names, keys and values
(`quarter_frame_training/Truck.conf` includes `../../default_mv.conf`: the original's `../../../` could not load,
method.md §8.24). Print the resolved configuration of a run, with where each value came from:

    python -m mononerf.config -c mononerf_conf/exp/quarter_frame_training/Balloon2.conf --N_static_iters=100001

## Where a value comes from (lowest first; later wins)

1. the key's default below (the original's code default, or its command-line default);
2. `--config FILE`: a configargparse txt file of the original's flags (e.g. `configs/config_Balloon2.txt`);
   the original auto-loaded that file, whose values equal the defaults here (its expname/basedir were overwritten
   by `info.*`, its datadir is the default of `train.datadir`);
3. the HOCON conf `-c/--conf` and the files it includes with `include required(...)` (paths relative to the
   including file; the including file wins);
4. the original's command-line flags, each setting ONE key (table below). A flag of an `info.*` key wins over
   the conf: the original silently let the conf win (a defect, fixed);
5. `--set KEY=VALUE` (repeatable): any dotted key; VALUE is a HOCON/JSON literal (`4`, `true`, `[0, 1]`, `"x"`,
   `null`).

`Config.source(key)` tells which file, `command line`, or `default` gave a key; `Config.save(path)` writes the
resolved configuration (every key explicit) that `parse_config_file` reads back to an equal Config; the trainer
writes it into the run folder.

## Checks (each stops with one line naming the dotted key and the file or `command line` it came from)

- an unknown key in a conf file, a `--config` file or `--set` (with a "did you mean" hint);
- a wrong type (an int is accepted where a float is expected), a value outside a key's choices;
- a missing required value (the keys the original read with `conf[...]`; `mononerf_conf/default.conf` gives them);
- a missing conf or include file (named);
- `info.no_ndc` must equal `not model.use_ndc` (the original's assert, method.md §5.1);
- `run.device` is `auto`, `cpu`, `cuda` or `cuda:N`; `train.N_importance` is 0; `model.use_global_encoder` is
  false; `info.decay_iteration` is not 0 when `info.use_lambda_decay` (method.md §8.30);
  `train.fast_render_iter` != 0 needs `info.fast_render` (the original's assert).

Defaults shown as `null` with a note are computed where the key is read. Column "default_mv.conf" shows the value
that `mononerf_conf/default_mv.conf` (which includes `default.conf`) sets, where it sets the key. "used in" names
the module that reads the key (some are written by later issues) or says why the key is deliberately unused.
"""

_SECTION_TEXT = {
    "model": "HOCON keys of the model (method.md §2, §7.1).",
    "info": "HOCON keys of the run and the losses (method.md §4, §5, §7.1).",
    "train": "The original's command-line flags (method.md §7.2), one key each, with the original's defaults.",
    "run": "Infrastructure flags of the original (distributed launch), plus `--device`.",
    "quirks": "The original's numerical quirks (method.md §8), `true` = as the original; see `docs/quirks.md`.",
}

_NOT_ACCEPTED = """\
## Keys of the original that are not accepted

- `model.global_encoder.*` (read only with `model.use_global_encoder = true`, a dead path of the original),
  the keys of encoder types `spatial` / `global` (`backbone`, `index_interp`, `latent_size`, ...: the original
  named classes it never defined), and `data.format` (read only when `--dataset_format` was empty).
  Setting them is an "unknown key" error.
"""


def config_table_markdown() -> str:
    """``docs/config.md``: every key of :data:`ALL_KEYS` and every command-line flag, generated from this table."""
    import os

    from mononerf.config.values import PROJECT_CONF_DIR, read_hocon

    conf = os.path.join(PROJECT_CONF_DIR, "default_mv.conf")
    base = read_hocon(conf)[0]
    out = [_INTRO]
    for section in SECTIONS:
        out += [f"## `{section}`\n", _SECTION_TEXT[section] + "\n",
                "| key | type | default | default_mv.conf | flag | meaning | used in |",
                "|---|---|---|---|---|---|---|"]
        for k in ALL_KEYS:
            if k.name.split(".")[0] != section:
                continue
            mv = _cell(base[k.name]) if k.name in base else ""
            meaning = k.meaning + (f" — {k.note}" if k.note else "")
            if k.choices:
                meaning += f" (one of {', '.join(map(str, k.choices))})"
            flags = ", ".join(f"`{f}`" for f in k.flags)
            out.append(f"| `{k.name}` | {_text(k.type)} | {_cell(k.default)} | {mv} | {flags} | {_text(meaning)} "
                       f"| {_text(k.used)} |")
        out.append("")
    out += ["## Command-line flags\n",
            "Every flag of the original's `src/util/args.py` is accepted and sets the one key named here. "
            "Flags the original never used are accepted and ignored (note says why). Boolean flags take an "
            "optional value (`--no_ndc`, `--no_ndc=false`).\n",
            "| flag | key | original default | note |", "|---|---|---|---|"]
    for flag, text in FILE_FLAGS.items():
        out.append(f"| `{flag}` | – | – | {_text(text)} |")
    for k in ALL_KEYS:
        if not k.flags:
            continue
        note = []
        if k.used.startswith(("ignored", "unused")):
            note.append("accepted, " + k.used)
        if k.name.startswith("info."):
            note.append("the command line wins over the conf (the original let the conf win)")
        if k.note:
            note.append(k.note)
        orig = k.default if k.cli_default is REQUIRED else k.cli_default
        flags = ", ".join(f"`{f}`" for f in k.flags)
        out.append(f"| {flags} | `{k.name}` | {_cell(orig)} | {_text('; '.join(note))} |")
    out += ["", _NOT_ACCEPTED]
    return "\n".join(out)
