"""Stop requests during training: SIGINT (Ctrl-C) and SIGTERM (a scheduler, ``kill``) end a run the same way.

Both raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the training loop, which saves the last completed step
and exits with the resume hint. The handlers are installed explicitly, so a run started in the background of a
script (where the shell leaves SIGINT ignored) stops on SIGINT too. While the weights of a step are being updated
(:meth:`StopRequests.critical`) a request is held back and raised right after, so the step saved always matches
the weights saved.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A stop request; ``signum`` is the signal (exit status ``128 + signum`` by convention)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def install_stop_handlers() -> None:
    """The first thing a command does, before its heavy imports: SIGINT and SIGTERM raise :class:`Interrupted`
    from now on, also in a run started in a script's background, whose SIGINT comes ignored (main thread only).
    The command then ends quietly with ``128 + signum`` when nothing is there to save."""
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            signal.signal(sig, _raise_interrupted)


class StopRequests:
    """Context manager: SIGINT and SIGTERM raise :class:`Interrupted` while it is active (main thread only; the
    previous handlers come back on exit)."""

    def __init__(self):
        self._previous: dict[int, object] = {}
        self._holding = False
        self._pending: int | None = None

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self._holding:
            self._pending = signum
            return
        raise Interrupted(signum)

    @contextmanager
    def _hold(self):
        outer, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = outer

    @contextmanager
    def critical(self):
        """Hold stop requests back for the duration; one that came is raised when it ends (not if the body
        raised)."""
        with self._hold():
            yield
        if not self._holding and self._pending is not None:
            signum, self._pending = self._pending, None
            raise Interrupted(signum)

    @contextmanager
    def ignored(self):
        """Hold requests back and forget them (while the interrupted run saves its checkpoint)."""
        try:
            with self._hold():
                yield
        finally:
            self._pending = None
