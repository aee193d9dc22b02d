"""deploy/: the Grafana dashboard and the Prometheus alerting rules use only metrics a
live node exports (its GET /metrics scraped), cover every one of them, and are well
formed: `promtool check rules` when promtool is installed, a structural check always.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from peer import Peer
from peer.config import load_config
from tests.peers import make_pair, write_config
from tests.timing import seconds

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
RULES = ROOT / "deploy" / "prometheus-rules.yml"

_NAME = re.compile(r"\bsetpeer_[a-z_]+\b")
_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum")}
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
# The alerts an operator needs (docs/operations.md, "Dashboard and alerts").
ALERTS = {
    "SetpeerBacklogGrowing",
    "SetpeerSessionDown",
    "SetpeerFailuresRising",
    "SetpeerWebhookDown",
    "SetpeerStoreErrors",
}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in panels(dashboard()) for t in p.get("targets", [])]


def names_used(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in _NAME.findall(expr)}


def exported(exposition: str) -> dict[str, str]:
    """Every metric name a scrape can hold, family and sample names, with its type."""
    names = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split()
            names[family] = kind
            for suffix in _SUFFIXES.get(kind, ()):
                names[family + suffix] = kind
    return names


def balanced(expr: str) -> bool:
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"[^"]*"', '""', expr):  # label values may hold anything
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                return False
    return not any(depth.values())


async def test_dashboard_and_rules_match_a_live_nodes_metrics(tmp_path: Path) -> None:
    """Every name the dashboard and the rules use is on /metrics of a live node (with a
    webhook, so its metrics are there too), and every metric there is on the dashboard."""
    a_files, b_files = make_pair(tmp_path)
    write_config(b_files, a_files)
    toml = tmp_path / "b.toml"
    toml.write_text(
        toml.read_text().replace("[peer.app]\n", '[peer.app]\ndeliver = "http://127.0.0.1:9/"\n')
    )
    async with Peer(load_config(toml)) as node, httpx.AsyncClient() as client:
        scrape = await client.get(node.url + "/metrics", timeout=seconds(10))
    assert scrape.status_code == 200
    names = exported(scrape.text)
    assert {"setpeer_session", "setpeer_webhook_up", "setpeer_store_up"} <= set(names)

    on_dashboard = names_used(dashboard_exprs())
    in_rules = names_used([rule["expr"] for rule in rules()])
    assert on_dashboard - set(names) == set()
    assert in_rules - set(names) == set()
    families = {n for n, kind in names.items() if not n.endswith(_SUFFIXES.get(kind, ()))}
    shown = {n for n in families if n in on_dashboard or n + "_bucket" in on_dashboard}
    assert families - shown == set(), "exported but not on the dashboard"


def test_rules_are_well_formed() -> None:
    """Each rule: a unique alert name, a balanced expression over setpeer metrics, a
    duration `for`, a severity and a summary; the alerts operations.md lists exist."""
    seen = set()
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["alert"] not in seen and re.fullmatch(r"Setpeer[A-Za-z]+", rule["alert"])
        seen.add(rule["alert"])
        assert isinstance(rule["expr"], str) and balanced(rule["expr"]), rule["expr"]
        assert _NAME.search(rule["expr"]), rule["expr"]
        assert "for" not in rule or _DURATION.match(rule["for"]), rule
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert ALERTS <= seen


def test_promtool_checks_the_rules() -> None:
    """`promtool check rules` (Debian/Ubuntu: the prometheus package) accepts the file."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus); structure checked")
    out = subprocess.run(
        [promtool, "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=seconds(60),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules())} rules found" in out.stdout


def test_dashboard_is_well_formed() -> None:
    """Grafana's shape: a uid, panels with unique ids inside the 24-column grid and not
    overlapping, each (but rows) with balanced queries; every variable used defined."""
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    variables = {v["name"] for v in board["templating"]["list"]}
    ids, cells = set(), set()
    for panel in panels(board):
        assert panel["id"] not in ids and panel["title"]
        ids.add(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        columns = range(grid["x"], grid["x"] + grid["w"])
        area = {(x, y) for x in columns for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert balanced(target["expr"]) and _NAME.search(target["expr"]), target
        text = json.dumps(panel)
        used = set(re.findall(r"\$\{?([a-z_]+)", text)) - {"__rate_interval", "__all"}
        assert used <= variables, (panel["title"], used - variables)
