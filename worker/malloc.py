"""Fewer glibc malloc arenas for a training process.

glibc gives each thread that contends for the heap its own arena (up to 8 per core); TensorFlow's
thread pools leave ~100 MiB of per-arena slack in a worker process this way. Two arenas cost
nothing measurable in speed here (bench/train_speed.py) and keep that memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap the arenas that threads started from now on may create. False where the C library
    has no mallopt (not glibc) or refuses; the process then runs as before."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
