"""The README's adapter examples, pasted as they are against a running `setpeer run`.

Each block after ``<!-- readme-example: NAME -->`` runs in bash with real curl
(PUSH-12, MP-16, POLL-9/10/13), so the docs cannot drift from the code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers import make_pair, write_config
from tests.test_crash import stop
from tests.timing import seconds

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- readme-example: (\w+) -->\n```sh\n(.*?)```", re.DOTALL)

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def examples() -> dict[str, str]:
    found = {name: body for name, body in BLOCK.findall(README.read_text())}
    assert set(found) == {"push", "multipush", "poll"}, found.keys()
    return found


@pytest.fixture
def node(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`setpeer run -c b.toml` with partner a (which polls b for its SETs)."""
    a, b = make_pair(tmp_path)
    write_config(a, b)
    write_config(b, a, extra_partner='send_via = "poll"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "peer", "run", "-c", str(tmp_path / "b.toml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("setpeer listening on "), line
        yield {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "A_TOKEN": a.token_out,
            "NODE": line.split()[-1],
            "cwd": str(tmp_path),
        }
    finally:
        stop(process)


def run(example: str, env: dict[str, str]) -> str:
    cwd = env["cwd"]
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example],
        cwd=cwd,
        env={k: v for k, v in env.items() if k != "cwd"},
        capture_output=True,
        text=True,
        timeout=seconds(60),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_push_example(node: dict[str, str]) -> None:
    """PUSH-12: the README's curl gets 202 from /events."""
    assert run(examples()["push"], node).split() == ["202"]


def test_multipush_example(node: dict[str, str]) -> None:
    """MP-14, MP-16: the README's curl gets an ack for the jti it sent."""
    answer = json.loads(run(examples()["multipush"], node))
    assert len(answer["ack"]) == 1 and "setErrs" not in answer


def test_poll_example(node: dict[str, str]) -> None:
    """POLL-9, POLL-13: the README's polls get the SET, then nothing once acked."""
    first, second = run(examples()["poll"], node).splitlines()
    assert len(json.loads(first)["sets"]) == 1
    assert json.loads(second) == {"sets": {}}
