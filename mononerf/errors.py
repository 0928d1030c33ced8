"""Error types that carry a message meant for the user (printed without a traceback by the CLIs)."""


class MonoNeRFError(Exception):
    """Base class of every error whose message is written for the user."""


class ConfigError(MonoNeRFError):
    """A configuration key is unknown, has the wrong type, or a required value is missing."""


class SceneFormatError(MonoNeRFError):
    """A scene folder does not match the on-disk format (names the file and what was expected)."""


class MissingWeightsError(MonoNeRFError):
    """A pretrained weight file is not where it must be put by hand (names file and source)."""


_OS_HINTS = {28: "; free some space ({kept})",  # ENOSPC
             30: "; write somewhere else (e.g. set info.basedir or --out)",  # EROFS
             13: "; write somewhere you may (e.g. set info.basedir or --out)",  # EACCES
             1: "; write somewhere you may (e.g. set info.basedir or --out)"}  # EPERM


def os_error(exc: OSError, path=None, what: str = "", kept: str = "finished files are kept") -> MonoNeRFError:
    """One line for a failed file operation: the path, what was done, the cause (read-only, disk full, ...) and a
    hint. ``path`` defaults to the file the error names; ``kept`` says what a full disk leaves intact."""
    import os

    where = path if path is not None else (exc.filename or "file system")
    cause = os.strerror(exc.errno) if exc.errno else str(exc)
    said = f"cannot write {what} ({cause})" if what else cause
    return MonoNeRFError(f"{where}: {said}{_OS_HINTS.get(exc.errno, '').format(kept=kept)}")


def report(exc: MonoNeRFError | OSError) -> int:
    """The epilogue of every command: a user-facing error as one ``error: …`` line on stderr (no traceback; an
    OSError in :func:`os_error`'s words); return the CLI exit status 2. Commands end with
    ``except (MonoNeRFError, OSError) as exc: return report(exc)``."""
    import sys

    print(f"error: {exc if isinstance(exc, MonoNeRFError) else os_error(exc)}", file=sys.stderr)
    return 2
