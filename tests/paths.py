"""Where the shared read-only data is: ``../shared`` beside the checkout (as in CI), else /work/shared."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
if not (SHARED / "data").is_dir():
    SHARED = Path("/work/shared")
DATA = SHARED / "data"
