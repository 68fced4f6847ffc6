"""A child process that ends when its parent does: the one watchdog of the sweep's decide
workers and the worker's database process.

A parent killed outright (SIGKILL, the OOM killer) cannot tell its children to
stop.  A child that went on alone would go on writing beside the restarted
parent's own children.  So each child watches its parent and, once the parent
is gone (it is re-parented), exits at once without cleanup: an open
transaction is rolled back by the database.
"""

from __future__ import annotations

import os
import threading
import time

# How often a child looks: a dead parent's child ends within this.
CHECK_EVERY_S = 0.2


def end_with_parent(exit_code: int) -> None:
    """Start watching this process's parent; call it first thing in the child."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(CHECK_EVERY_S)
        os._exit(exit_code)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()
