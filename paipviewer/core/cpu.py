"""What this CPU can do, for choosing how to compute."""
from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def native_bf16() -> bool:
    """True where the CPU has native bf16 (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
