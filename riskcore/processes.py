"""Which process left something behind (a temp file, a run), and whether that process still runs.

A process is named by its host, its pid and its start time (clock ticks since boot, from /proc),
so a pid the system has since given to another process is not taken for the one that wrote:
alive means this host, a live pid that is no zombie, and the same start time. Off Linux the
start time is unknown (0) and a live pid is all there is to go by.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


def this_host() -> str:
    """The host name, reduced to characters safe in a file name and a Dagster tag."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from /proc; None if the process is gone or there is no /proc."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[19])  # fields 3 (state) and 22 (starttime) of proc(5)


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int
    started: int  # clock ticks since boot; 0 where unknown

    def __str__(self) -> str:
        return f"{self.host}-{self.pid}-{self.started}"

    @classmethod
    def parse(cls, text: str) -> ProcessId | None:
        """The inverse of str(); None for anything else."""
        match = re.fullmatch(r"(?P<host>.+)-(?P<pid>\d+)-(?P<started>\d+)", text or "")
        return cls(match["host"], int(match["pid"]), int(match["started"])) if match else None

    @classmethod
    def current(cls) -> ProcessId:
        stat = _stat(os.getpid())
        return cls(this_host(), os.getpid(), stat[1] if stat else 0)

    def alive(self) -> bool | None:
        """Whether this very process still runs; None when it cannot be known here (another host)."""
        if self.host != this_host():
            return None
        if not _pid_exists(self.pid):
            return False
        if not _PROC.joinpath("self").exists():  # not Linux: the signal's answer is all there is
            return True
        stat = _stat(self.pid)
        return stat is not None and stat[0] != "Z" and (self.started == 0 or stat[1] == self.started)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def pid_alive_since(pid: int, timestamp: float) -> bool:
    """Whether a process `pid` runs on this host that started no later than `timestamp` (epoch seconds):
    the process that reported that pid at that time, not a later one given the same pid.
    Boot time is known to the second only: a process started within a second after counts as alive."""
    if not _pid_exists(pid):
        return False
    stat = _stat(pid)
    if stat is None:
        return not _PROC.joinpath("self").exists()  # gone just now, or no /proc (then: the signal's answer)
    if stat[0] == "Z":
        return False
    try:
        boot = next(int(line.split()[1]) for line in (_PROC / "stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return True
    return boot + stat[1] / os.sysconf("SC_CLK_TCK") <= timestamp + 1.0
