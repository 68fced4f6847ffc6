"""Is a ``started`` run still alive?  (A choice the SPEC leaves open, issue 11.)

Its checkpoint records the pid, the process's start (``process_start``: the
boot id and field 22 of ``/proc/<pid>/stat``) and the host.  On the same host
the run is alive only while that pid exists *and* started at that moment: a pid
the system has since given to another process no longer blocks sweeps.  On
another host (no way to look at its processes) the run is alive while its
heartbeat is younger than ``STALE_HEARTBEAT_S`` (10 minutes).  A run heartbeats
with every batch it writes, after each chunk decided and after each phase, at
most every ``HEARTBEAT_EVERY_S`` (30 s) when nothing else wrote; the longest gap
is one phase without chunks (the pre-filter, balancing or the final checksum),
a part of a sweep, and the limit is longer than the longest whole sweep
measured (491 s: 3M contacts in AEP season, README), with room left for clocks
of hosts that disagree by a minute or two.  A checkpoint written by an older
version (no process start) counts as alive on the same host while its pid
exists and its heartbeat is younger than the limit.  The checkpoint of this
very process (same pid and start) is not alive: a process runs one sweep at a
time.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

# A run on another host is alive while its heartbeat is younger than this; a run
# heartbeats at least every HEARTBEAT_EVERY_S while it works (module docstring).
STALE_HEARTBEAT_S = 600
HEARTBEAT_EVERY_S = 30

# Checkpoint times: UTC to the second, the way SQLite's CURRENT_TIMESTAMP writes them.
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_HAVE_PROC = Path("/proc/self/stat").exists()


def checkpoint_time() -> str:
    """Now, as checkpoints record it."""
    return datetime.now(UTC).strftime(_TIME_FORMAT)


def process_start(pid: int) -> str | None:
    """When process ``pid`` started: ``"<boot id>:<clock ticks since boot>"``.

    Linux: field 22 of ``/proc/<pid>/stat``; the boot id tells two boots apart.
    None when no such process runs (a zombie has ended) or there is no /proc.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        return None
    # Field 2, the command name, may hold spaces and parentheses: count from its end.
    fields = stat[stat.rfind(")") + 1 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # fields[0] is field 3, the state
        return None
    return f"{boot}:{fields[19]}"


def stored_pid(value: object) -> int | None:
    """A stored pid; None for anything else (another program may have written the row)."""
    try:
        pid = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return pid if pid > 0 else None


def run_alive(pid: int | None, pid_started: str | None, host: str | None, heartbeat: object) -> bool:
    """Whether the run a ``started`` checkpoint records may still be running (module docstring)."""
    age = _heartbeat_age_s(heartbeat, datetime.now(UTC))
    fresh = age is not None and age < STALE_HEARTBEAT_S
    if host != socket.gethostname() or pid is None:
        return fresh
    if pid == os.getpid() and (pid_started is None or pid_started == process_start(pid)):
        return False  # this process, starting a sweep: its earlier run stopped
    if pid_started is not None and _HAVE_PROC:
        return process_start(pid) == pid_started
    # Recorded by an older version (or no /proc): the pid may be another process by now.
    return _pid_alive(pid) and fresh


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def _heartbeat_age_s(heartbeat: object, now: datetime) -> float | None:
    try:
        last = datetime.strptime(str(heartbeat), _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return (now - last).total_seconds()
