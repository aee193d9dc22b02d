"""Charts of a ``bench-results.json``: PNG files for docs/performance.md.

``plot(results, folder)`` draws each chart whose rows the results hold and returns the
files it wrote:

- ``bench-rates.png``: SETs/s of each transport row beside its sign+verify floor
  (a marker over each bar), the ratio to the floor written on the bar;
- ``bench-latency.png``: p50/p90/p99/max publish-to-receive latency of the rows at a
  fixed offered rate (``... @500/s latency``), log scale;
- ``bench-wan.png``: the ``wan <transport>`` rows, SETs/s beside what the window and
  the round trip predict (``model_sets_per_s``), log scale;
- ``bench-idle.png``: the ``idle sessions`` row, RSS of a node with no sessions beside
  one holding them.

Each title names the machine (CPUs, Python), the date of the run and how it was made
(``scripts/bench`` or ``scripts/bench --quick``). matplotlib is an optional extra
(``pip install -e '.[bench]'``), imported only here and only when a chart is drawn.
"""

from __future__ import annotations

import datetime
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["CHARTS", "latency_rows", "plot", "pyplot", "require", "transport_rows", "wan_rows"]

CHARTS = {
    "rates": "bench-rates.png",
    "latency": "bench-latency.png",
    "wan": "bench-wan.png",
    "idle": "bench-idle.png",
}
"""Chart -> the file it is written to (docs/performance.md links these names)."""

MISSING = "the charts need matplotlib: pip install -e '.[bench]' (scripts/bench --plot does it)"

Row = dict[str, Any]


def require() -> None:
    """Exit 2 with one line unless matplotlib is installed. Imports nothing: a bench
    process that imported matplotlib before the run would pass its RSS on to the nodes
    it starts (a child's ``ru_maxrss`` starts at its parent's)."""
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        _missing()


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (exit 2 with one line without matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        _missing()
    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def _missing() -> NoReturn:
    print(MISSING, file=sys.stderr)
    raise SystemExit(2)


# -- which rows each chart reads -----------------------------------------------------------


def transport_rows(rows: list[Row]) -> list[Row]:
    """Rows measured flat out beside a floor: not the paced latency rows, nor the WAN
    and store rows (their ``ratio``, if any, is to another row)."""
    return [
        row
        for row in rows
        if "@" not in row["name"] and not row["name"].startswith(("wan ", "store "))
        if _number(row.get("sets_per_s")) and _number(row.get("floor_sets_per_s"))
    ]


def latency_rows(rows: list[Row]) -> list[Row]:
    """Rows at a fixed offered rate: ``pushpull websocket @500/s latency`` and kin."""
    return [row for row in rows if "@" in row["name"] and row["name"].endswith("latency")]


def wan_rows(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row["name"].startswith("wan ")]


def idle_row(rows: list[Row]) -> Row | None:
    return next((row for row in rows if row["name"] == "idle sessions"), None)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _value(row: Row, key: str) -> float:
    """The field as a number, NaN when absent (matplotlib draws no bar for NaN)."""
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and _number(value) else math.nan


# -- the charts ----------------------------------------------------------------------------


def subtitle(results: dict[str, Any]) -> str:
    """Machine, date and command of the run, for every chart's title."""
    date = results.get("date") or datetime.date.today().isoformat()
    command = "scripts/bench --quick" if results.get("quick") else "scripts/bench"
    cpus = results.get("cpus", "?")
    return f"{cpus} CPUs, Python {results.get('python', '?')}, {date}, {command}"


def _label(row: Row) -> str:
    name = str(row["name"]).replace(" (1 SET per POST)", "\n(1 SET per POST)")
    name = name.replace(" batch ", "\nbatch ")
    return f"{name}\n{row['alg']}" if row.get("alg") else name


def chart_rates(plt: Any, rows: list[Row], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(7.0, 1.25 * len(rows) + 2), 5))
    xs = range(len(rows))
    rates = [_value(row, "sets_per_s") for row in rows]
    floors = [_value(row, "floor_sets_per_s") for row in rows]
    bars = ax.bar(xs, rates, color="tab:blue", label="SETs/s, publish to ack")
    ax.scatter(xs, floors, marker="_", s=900, linewidths=2.5, color="tab:red", zorder=3)
    ax.scatter([], [], marker="_", s=200, color="tab:red", label="floor: 1-core sign+verify")
    for bar, row in zip(bars, rows, strict=True):
        ratio = row.get("ratio")
        if isinstance(ratio, int | float):
            ax.annotate(
                f"{bar.get_height():,.0f}/s\n{ratio:.2f}×",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=9,
            )
    ax.set_xticks(list(xs), [_label(row) for row in rows], fontsize=8)
    ax.set_ylabel("SETs/s")
    ax.set_ylim(0, max(v for v in rates + floors if not math.isnan(v)) * 1.18)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"Rate per transport against the floor\n{title}", fontsize=10)
    _save(plt, fig, path)


PERCENTILES = (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("max_ms", "max"))
COLOURS = {"p50": "tab:blue", "p90": "tab:orange", "p99": "tab:green", "max": "tab:red"}


def chart_latency(plt: Any, rows: list[Row], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(rows) + 2), 4.5))
    # The percentiles some row has (older results have no p90 or max).
    shown = [(key, label) for key, label in PERCENTILES if any(_number(r.get(key)) for r in rows)]
    width = 0.8 / max(1, len(shown))
    for i, (key, label) in enumerate(shown):
        xs = [j + (i - (len(shown) - 1) / 2) * width for j in range(len(rows))]
        values = [_value(row, key) for row in rows]
        bars = ax.bar(xs, values, width, label=label, color=COLOURS[label])
        ax.bar_label(bars, [f"{v:g}" if not math.isnan(v) else "" for v in values], fontsize=7)
    names = []
    for row in rows:
        offered = row.get("rate")
        name = str(row["name"]).removesuffix(" latency")
        names.append(f"{name}\n(offered {offered}/s)" if offered else name)
    ax.set_xticks(range(len(rows)), names, fontsize=8)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    _log_y(ax, [_value(row, key) for row in rows for key, _ in shown])
    ax.set_ylabel("publish to receive, ms (log)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.set_title(f"Latency at a fixed offered rate\n{title}", fontsize=10)
    _save(plt, fig, path)


def chart_wan(plt: Any, rows: list[Row], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(7.0, 1.5 * len(rows) + 2), 4.8))
    width = 0.38
    measured = [_value(row, "sets_per_s") for row in rows]
    model = [_value(row, "model_sets_per_s") for row in rows]
    a = ax.bar([j - width / 2 for j in range(len(rows))], measured, width, label="measured")
    b = ax.bar(
        [j + width / 2 for j in range(len(rows))],
        model,
        width,
        color="tab:gray",
        label="model: window / round trip",
    )
    for bars, values in ((a, measured), (b, model)):
        labels = [f"{v:,.0f}" if not math.isnan(v) else "" for v in values]
        ax.bar_label(bars, labels, fontsize=7)
    names = []
    for row in rows:
        name = str(row.get("transport") or row["name"].removeprefix("wan "))
        extra = [f"window {row['window']}" if row.get("window") else ""]
        if row.get("rtt_ms") is not None:
            extra.append(f"RTT {row['rtt_ms']} ms")
        names.append("\n".join([name, *filter(None, extra)]))
    ax.set_xticks(range(len(rows)), names, fontsize=8)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    _log_y(ax, measured + model)
    ax.set_ylabel("SETs/s (log)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.set_title(f"Over a WAN link (added delay)\n{title}", fontsize=10)
    _save(plt, fig, path)


def chart_idle(plt: Any, row: Row, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    sessions = row.get("sessions", "?")
    values = [_value(row, "rss_mb_base"), _value(row, "rss_mb")]
    bars = ax.bar(
        ["no sessions", f"{sessions} idle sessions"], values, color=["tab:gray", "tab:blue"]
    )
    ax.bar_label(bars, [f"{v:.1f} MB" if not math.isnan(v) else "" for v in values], fontsize=9)
    notes = []
    if _number(row.get("kb_per_session")):
        notes.append(f"{row['kb_per_session']} kB per session")
    if isinstance(row.get("cpu_ms_per_s"), int | float):
        notes.append(f"idle CPU {row['cpu_ms_per_s']} ms/s")
    if isinstance(row.get("heartbeat_bytes_per_s"), int | float):
        notes.append(f"heartbeats {row['heartbeat_bytes_per_s']} B/s")
    if notes:
        ax.text(0.5, 0.95, ", ".join(notes), transform=ax.transAxes, ha="center", fontsize=8)
    finite = [v for v in values if not math.isnan(v)]
    ax.set_ylim(0, max(finite, default=1) * 1.2)
    ax.set_ylabel("RSS, MB")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"Memory of a node holding idle sessions\n{title}", fontsize=10)
    _save(plt, fig, path)


def _log_y(ax: Any, values: list[float]) -> None:
    """A log y axis from below the smallest bar, ticks as plain numbers (5, 10, 200)."""
    from matplotlib.ticker import FuncFormatter

    finite = [v for v in values if not math.isnan(v)] or [1.0]
    ax.set_yscale("log")
    ax.set_ylim(min(finite) / 2, max(finite) * 2)
    plain = FuncFormatter(lambda v, _: f"{v:,.6g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _save(plt: Any, fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(results: dict[str, Any], folder: Path) -> list[Path]:
    """Write each chart whose rows ``results`` holds into ``folder``; the files written.

    ``results`` has the shape of ``bench-results.json``. No chart, no matplotlib import.
    """
    rows: list[Row] = [row for row in results.get("rows", []) if isinstance(row.get("name"), str)]
    idle = idle_row(rows)
    todo: list[tuple[str, Callable[[Any, Path], None]]] = []
    title = subtitle(results)
    if rates := transport_rows(rows):
        todo.append(("rates", lambda plt, path: chart_rates(plt, rates, title, path)))
    if latency := latency_rows(rows):
        todo.append(("latency", lambda plt, path: chart_latency(plt, latency, title, path)))
    if wan := wan_rows(rows):
        todo.append(("wan", lambda plt, path: chart_wan(plt, wan, title, path)))
    if idle is not None:
        todo.append(("idle", lambda plt, path: chart_idle(plt, idle, title, path)))
    if not todo:
        return []
    plt = pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for chart, draw in todo:
        path = folder / CHARTS[chart]
        draw(plt, path)
        written.append(path)
    return written
