"""Process-wide settings for long verification runs, applied by the CLI and the benchmark workers.

A library call never changes them on its own: they affect the whole process. Call `tune_allocator()` at the
start of a script that runs long searches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["tune_allocator"]

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value
_TRIM_THRESHOLD = 2**31 - 1


def tune_allocator() -> bool:
    """Let glibc keep freed blocks of up to 32 MiB in the heap instead of unmapping them at every free.

    The bound engines allocate and free many tensors of a few MiB per batch; by default glibc serves each with
    a fresh mmap and returns it with munmap, so every batch pays page faults (measured on ACAS Xu, 256 boxes of
    the differential engine: 0.9-1.4 s per batch, a third of it system time; 0.62-0.70 s with this setting,
    system time near zero). The cost: up to 2 GiB of freed memory may stay mapped to the process for reuse.
    Returns whether the setting was applied (False off glibc, e.g. macOS or Windows).
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # the trim threshold alone would switch off glibc's adaptive mmap threshold (every block over 128 KiB
    # then mmapped, measured 2x slower); the two are set together
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
    ok_trim = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
    return ok_mmap and ok_trim
