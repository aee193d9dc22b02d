"""scripts/bench_plot.py: the charts of a bench-results.json, drawn from made-up rows.

matplotlib is the optional ``bench`` extra, not a test dependency: without it these
tests skip.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scripts.bench_plot import CHARTS, latency_rows, plot, transport_rows, wan_rows

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"


def transport(name: str, alg: str, rate: int, floor: int) -> dict[str, Any]:
    return {
        "name": name,
        "alg": alg,
        "count": 3000,
        "sets_per_s": rate,
        "floor_sets_per_s": floor,
        "ratio": round(rate / floor, 3),
        "p50_ms": 300.0,
        "p99_ms": 450.0,
        "app_sets_per_s": 3800,
    }


def wan(name: str, rate: int, model: int, window: int) -> dict[str, Any]:
    return {
        "name": f"wan {name}",
        "transport": name,
        "one_way_ms": 25,
        "rtt_ms": 50,
        "count": 2000,
        "sets_per_s": rate,
        "model_sets_per_s": model,
        "window": window,
        "p50_ms": 60.0,
        "p99_ms": 140.0,
        "floor_sets_per_s": 10215,  # beside the floor, but not a flat-out loopback row
    }


RESULTS: dict[str, Any] = {
    "quick": True,
    "seconds": 46.0,
    "python": "3.11.7",
    "cpus": 2,
    "date": "2025-01-31",
    "rows": [
        {"name": "tokens sign", "alg": "ES256", "ops_per_s": 37000, "floor_ops_per_s": 38000},
        transport("pushpull websocket batch 100", "ES256", 6291, 10215),
        transport("pushpull http batch 100", "ES256", 5786, 10215),
        transport("pushpull websocket batch 100", "EdDSA", 5795, 7983),
        transport("push (1 SET per POST)", "ES256", 273, 10215),
        *(
            {
                "name": f"pushpull websocket @{rate}/s latency",
                "alg": "ES256",
                "rate": rate,
                "sets_per_s": rate,
                "floor_sets_per_s": 10215,
                "p50_ms": p50,
                "p90_ms": p50 * 2,
                "p99_ms": p50 * 6,
                "max_ms": p50 * 12,
            }
            for rate, p50 in ((500, 8.75), (2000, 21.5))
        ),
        wan("pushpull websocket", 6000, 64000, 3200),
        wan("push", 19, 20, 1),
        {"name": "store sqlite, one node", "alg": "ES256", "sets_per_s": 6000, "ratio": 1.0},
        {"name": "idle node", "rss_mb": 59.9},
        {
            "name": "idle sessions",
            "sessions": 1000,
            "rss_mb": 92.4,
            "rss_mb_base": 60.1,
            "kb_per_session": 33.1,
            "cpu_ms_per_s": 4.2,
            "heartbeat_bytes_per_s": 2400,
        },
    ],
}


def test_each_chart_reads_its_rows() -> None:
    rows = RESULTS["rows"]
    assert [(row["name"], row["alg"]) for row in transport_rows(rows)] == [
        ("pushpull websocket batch 100", "ES256"),
        ("pushpull http batch 100", "ES256"),
        ("pushpull websocket batch 100", "EdDSA"),
        ("push (1 SET per POST)", "ES256"),
    ]
    assert [row["rate"] for row in latency_rows(rows)] == [500, 2000]
    assert [row["transport"] for row in wan_rows(rows)] == ["pushpull websocket", "push"]


def check_pngs(paths: list[Path], names: list[str]) -> None:
    assert sorted(path.name for path in paths) == sorted(names)
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG), path
        assert len(data) > 10_000, (path, len(data))  # a drawn chart, not an empty canvas


def test_every_row_family_gets_its_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = plot(RESULTS, tmp_path / "img")
    check_pngs(written, list(CHARTS.values()))
    assert {path.parent for path in written} == {tmp_path / "img"}


def test_only_the_charts_whose_rows_exist(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    # Results from before the WAN and idle-session rows, without p90/max: two charts.
    old_latency = {"name": "pushpull websocket @500/s latency", "p50_ms": 8.0, "p99_ms": 70.0}
    rows = [row for row in RESULTS["rows"] if row["name"].startswith("pushpull ")]
    written = plot({**RESULTS, "rows": [*rows[:2], old_latency]}, tmp_path)
    check_pngs(written, [CHARTS["rates"], CHARTS["latency"]])
    # Nothing to chart: no file, and matplotlib is not needed.
    assert plot({**RESULTS, "rows": [{"name": "idle node", "rss_mb": 60}]}, tmp_path / "x") == []
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_bench_redraws_from_a_results_file(tmp_path: Path) -> None:
    """``scripts/bench.py --plot-only`` draws into ``--plot``'s folder and runs no bench."""
    pytest.importorskip("matplotlib")
    results = tmp_path / "bench-results.json"
    results.write_text(json.dumps(RESULTS))
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--from", str(results)]
        + ["--plot", str(tmp_path / "charts")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.count("wrote ") == len(CHARTS)
    check_pngs(sorted((tmp_path / "charts").iterdir()), list(CHARTS.values()))


@pytest.mark.parametrize("call", ["require()", "plot(RESULTS, None)"])
def test_without_matplotlib_one_line_and_exit_2(call: str) -> None:
    """Before a run (``require``) and when drawing: the install line, exit 2."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"  # as if not installed
        "from scripts.bench_plot import plot, require\n"
        "from tests.test_bench_plot import RESULTS\n"
        f"{call}\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr.splitlines() == [
        "the charts need matplotlib: pip install -e '.[bench]' (scripts/bench --plot does it)"
    ]


def test_the_check_before_a_run_imports_nothing() -> None:
    """A bench that imported matplotlib would pass its RSS on to every node it starts."""
    pytest.importorskip("matplotlib")
    code = (
        "import sys\n"
        "from scripts.bench_plot import require\n"
        "require()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'numpy')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (out.returncode, out.stdout) == (0, "[]\n"), out.stderr
