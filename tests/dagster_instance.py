"""Test Dagster instances with their storage in memory."""

import contextlib
import os
import tempfile

import dagster as dg

MEMORY = "/dev/shm"
ROOM = 1 << 30  # a container's default /dev/shm (64 MB) is too small to count on


def _memory_folder() -> str | None:
    try:
        stats = os.statvfs(MEMORY)
    except OSError:
        return None
    return MEMORY if os.access(MEMORY, os.W_OK) and stats.f_bavail * stats.f_frsize >= ROOM else None


@contextlib.contextmanager
def instance_for_test():
    """`dg.instance_for_test` with its storage in memory (/dev/shm, where the machine has one with
    room), else in the temp dir. Dagster's SQLite storage opens, commits and closes a connection
    per event (a small month's two runs have about 120), each commit and close synced to disk:
    about 3 s of a World's month on this machine's disk, 0.2 s in memory. A test instance lives
    as long as its test, and needs to survive no power cut."""
    with tempfile.TemporaryDirectory(dir=_memory_folder(), prefix="dagster-test-", ignore_cleanup_errors=True) as folder:
        with dg.instance_for_test(temp_dir=folder) as instance:
            yield instance
