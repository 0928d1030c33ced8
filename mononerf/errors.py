"""Error types that carry a message meant for the user (printed without a traceback by the CLIs)."""


class MonoNeRFError(Exception):
    """Base class of every error whose message is written for the user."""


class ConfigError(MonoNeRFError):
    """A configuration key is unknown, has the wrong type, or a required value is missing."""


class SceneFormatError(MonoNeRFError):
    """A scene folder does not match the on-disk format (names the file and what was expected)."""


class MissingWeightsError(MonoNeRFError):
    """A pretrained weight file is not where it must be put by hand (names file and source)."""


def report(exc: MonoNeRFError) -> int:
    """Print a user-facing error as one ``error: …`` line on stderr (no traceback); return the CLI exit status 2."""
    import sys

    print(f"error: {exc}", file=sys.stderr)
    return 2
