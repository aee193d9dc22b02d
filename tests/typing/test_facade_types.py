"""The facade passes an application's own ``mypy --strict`` (stats, failures, errors),
and so does docs/configuration.md's Python example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CONFIGURATION = HERE.parent.parent / "docs" / "configuration.md"


@pytest.mark.slow
def test_an_application_using_the_facade_passes_mypy_strict(tmp_path: Path) -> None:
    [example] = re.findall(r"```python\n(.*?)```", CONFIGURATION.read_text(), re.DOTALL)
    (tmp_path / "configuration_example.py").write_text(example)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(HERE / "application.py"),
            str(tmp_path / "configuration_example.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE.parent.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
