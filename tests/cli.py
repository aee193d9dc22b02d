"""``setpeer`` as a subprocess, the way an operator runs it (``python -m peer``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.timing import seconds

__all__ = ["ROOT", "setpeer"]

ROOT = Path(__file__).resolve().parents[1]


def setpeer(
    *args: str,
    cwd: Path | None = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``setpeer ARGS`` to completion; its exit status and output, text."""
    return subprocess.run(
        [sys.executable, "-m", "peer", *args],
        capture_output=True,
        text=True,
        timeout=seconds(timeout),
        cwd=cwd,
        env=env,
        check=False,
    )
