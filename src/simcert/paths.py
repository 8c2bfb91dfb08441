"""Where the shared benchmark data lives ($SIMCERT_BENCHMARKS, else ../shared/benchmarks when it exists)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["benchmarks_dir"]


def benchmarks_dir() -> Path | None:
    """The benchmark data folder, or None when it is not available on this machine."""
    env = os.environ.get("SIMCERT_BENCHMARKS")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [Path.cwd() / "../shared/benchmarks"] + [p / "shared/benchmarks" for p in here.parents]
    for c in candidates:
        if (c / "pairs.csv").is_file():
            return c.resolve()
    return None
