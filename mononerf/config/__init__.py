"""One configuration object, built from HOCON + command line and validated once at start-up (docs/config.md).

The package's parts: :mod:`~mononerf.config.key` (the ``Key`` row and the modules that read keys),
:mod:`~mononerf.config.flags` (the ``train.*`` / ``run.*`` keys of the original's flags), :mod:`~mononerf.config.schema`
(the key table), :mod:`~mononerf.config.values` (reading HOCON and txt files, checking values),
:mod:`~mononerf.config.loader` (the precedence and the ``Config`` object), :mod:`~mononerf.config.cli` (the command
line) and :mod:`~mononerf.config.docs` (docs/config.md). Each imports only the parts listed before it (docs: the
table and the values).
"""

from mononerf.config.cli import build_arg_parser, load_config, main  # noqa: F401
from mononerf.config.loader import Config, Section, parse_config_file  # noqa: F401
from mononerf.config.values import read_hocon  # noqa: F401

__all__ = ["Config", "Section", "load_config", "parse_config_file", "build_arg_parser", "read_hocon", "main"]
