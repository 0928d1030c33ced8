"""The configuration's command line: the original's flags, ``-c/--conf``, ``--config`` and ``--set``
(:func:`load_config`, the precedence of :mod:`mononerf.config.loader`), and ``python -m mononerf.config`` (prints the
resolved config, or with ``--markdown`` the key table of docs/config.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from mononerf.config.loader import Config, _assignments, _Builder
from mononerf.config.schema import KEYS
from mononerf.config.values import COMMAND_LINE, _display, _from_text, _read_txt
from mononerf.errors import ConfigError, MonoNeRFError, report


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # one-line ConfigError instead of usage + exit(2)
        raise ConfigError(f"{COMMAND_LINE}: {message}")


def build_arg_parser(prog: str = "python -m mononerf.config") -> argparse.ArgumentParser:
    """The command line: ``-c/--conf``, ``--config``, ``--set`` and every flag of the original (one key each).

    Only flags given on the command line appear in the parsed namespace (dest ``"key:<dotted key>"``).
    """
    p = _ArgumentParser(prog=prog, allow_abbrev=False, argument_default=argparse.SUPPRESS,
                        description="MonoNeRF configuration: HOCON conf + the original's flags (docs/config.md).")
    p.add_argument("-c", "--conf", dest="conf", metavar="CONF", help="HOCON conf file (mononerf_conf/exp/...)")
    p.add_argument("--config", dest="config", metavar="FILE", help="configargparse txt file of the original's flags")
    p.add_argument("--set", dest="set", action="append", metavar="KEY=VALUE",
                   help="set a dotted key to a HOCON/JSON literal (repeatable, applied last)")
    for key in KEYS.values():
        if not key.flags:
            continue
        help_text = f"→ {key.name}: {key.meaning}".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": "key:" + key.name, "help": help_text}
        base = key.type.rstrip("?")
        if base == "bool":
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif base == "list[str]":
            kwargs.update(nargs="+", metavar="DIR")
        else:
            kwargs.update(metavar=base.upper())
        p.add_argument(*key.flags, **kwargs)
    return p


def load_config(argv: Sequence[str] | None = None) -> Config:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None) and build the validated Config."""
    ns = vars(build_arg_parser().parse_args(list(sys.argv[1:] if argv is None else argv)))
    if "conf" not in ns:
        raise ConfigError(f"{COMMAND_LINE}: no conf file given; pass -c/--conf CONF (e.g. -c mononerf_conf/exp/"
                          "Balloon1_Balloon2/dynamic_temporal_feat_static_mask_flow_loss_multiscenes_discrete2_"
                          "addition.conf)")
    builder = _Builder()
    if "config" in ns:
        builder.apply(_read_txt(ns["config"]))
        builder.files.append(_display(ns["config"]))
    builder.apply_hocon(ns["conf"])
    flags = [(KEYS[dest[4:]], text) for dest, text in ns.items() if dest.startswith("key:")]
    builder.apply([(key, _from_text(key, text, f"{COMMAND_LINE}: {key.flags[0]}"), COMMAND_LINE)
                   for key, text in flags])
    builder.apply(_assignments(ns.get("set", []), COMMAND_LINE))
    return builder.finish(_display(ns["conf"]))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mononerf.config -c CONF [flags]`` prints the resolved config; ``--markdown`` the key table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv == ["--markdown"]:
            from mononerf.config.docs import config_table_markdown

            sys.stdout.write(config_table_markdown())
        else:
            sys.stdout.write(load_config(argv).to_hocon())
    except (MonoNeRFError, OSError) as exc:
        return report(exc)
    return 0
