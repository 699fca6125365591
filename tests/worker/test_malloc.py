"""limit_arenas: caps glibc's malloc arenas where it can, and leaves other C libraries alone."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from worker import malloc


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_the_cap() -> None:
    assert malloc.limit_arenas() is True


def test_without_a_c_library_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert malloc.limit_arenas() is False
