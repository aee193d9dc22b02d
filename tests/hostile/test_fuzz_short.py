"""A short run of scripts/fuzz.py in the default suite: every input path, a few hundred
inputs each, against a real node; no crash, bounded memory, valid SETs still acked."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.timing import seconds

COUNT = 200
# Fixed seeds: the default suite repeats the same inputs; scripts/fuzz explores fresh ones.
SEED = 20_261_123


def load_fuzz() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "fuzz.py"
    spec = importlib.util.spec_from_file_location("setpeer_fuzz", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["setpeer_fuzz"] = module
    spec.loader.exec_module(module)
    return module


fuzz = load_fuzz()


@pytest.mark.parametrize(
    "paths",
    [
        pytest.param(
            ("ws", "pushpull", "events", "multipush", "poll"), id="network", marks=pytest.mark.slow
        ),
        pytest.param(("parsers", "config"), id="parsers-config"),
        pytest.param(("jwks",), id="jwks"),
    ],
)
def test_fuzz_short(paths: tuple[str, ...]) -> None:
    """Each path takes COUNT inputs with only typed errors, each in its wire form."""
    results = fuzz.run(paths, COUNT, seed=SEED, timeout=seconds(30))
    assert [r.path for r in results] == list(paths)
    for result in results:
        assert result.count == COUNT, result.path
        assert not result.crashes, (result.path, result.crashes[:3])
        # A few hundred inputs may warm caches; they must not pile up.
        assert result.rss_after - result.rss_before < 32 * 1024 * 1024, result.path
