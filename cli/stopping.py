"""How the long-running commands learn that they should stop."""

import signal
import threading
from collections.abc import Callable
from types import FrameType


def stop_event(then: Callable[[], None] | None = None) -> threading.Event:
    """An event that SIGTERM or Ctrl+C sets (calling ``then`` too), for the main thread to await."""
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()
        if then is not None:
            then()

    # Explicit handlers, not KeyboardInterrupt: a command started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then never raises it.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, stop)
    return stopped
