"""The README's quick start, followed as written from an empty folder: ``init``,
``check-config``, two ``setpeer run`` processes, ``send``, ``status``, ``receive``,
``kill``. Each line of the block is run as its own process with the installed
``setpeer`` script; only ``--port`` is added to ``init`` (free ports for the test)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.timing import seconds

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- quickstart -->\n```sh\n(.*?)```", re.DOTALL)
SETPEER = Path(sys.executable).parent / "setpeer"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SETPEER.exists(), reason="setpeer is not installed beside python"),
]


def quick_start() -> list[str]:
    """The block's commands, continuation lines joined, comments dropped."""
    found = BLOCK.search((ROOT / "README.md").read_text())
    assert found is not None, "README.md has no <!-- quickstart --> block"
    text = found.group(1).replace("\\\n", " ")
    lines = (re.split(r"\s{2,}#", line)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def two_free_ports() -> int:
    """A port P with P + 1 free too (a listens on P, b on P + 1)."""
    for _ in range(50):
        with socket.create_server(("127.0.0.1", 0)) as first:
            port = first.getsockname()[1]
            try:
                socket.create_server(("127.0.0.1", port + 1)).close()
            except OSError:
                continue
        return int(port)
    raise AssertionError("no two free consecutive ports")


def test_readme_quick_start(tmp_path: Path) -> None:
    commands = quick_start()
    assert [c.split()[1] if c.startswith("setpeer") else c.split()[0] for c in commands] == [
        "init", "check-config", "run", "run", "send", "status", "receive", "kill"
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{SETPEER.parent}{os.pathsep}{os.environ['PATH']}"}
    cwd, port = tmp_path, two_free_ports()
    jobs: list[subprocess.Popen[str]] = []
    outputs: list[str] = []
    started = time.monotonic()

    def run(argv: list[str]) -> str:
        out = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=seconds(30)
        )
        assert out.returncode == 0, (argv, out.stderr)
        assert "Traceback" not in out.stderr
        return out.stdout

    try:
        for command in commands:
            if command.endswith("&"):  # a node in the background: wait until it listens
                job = subprocess.Popen(
                    shlex.split(command[:-1]),
                    cwd=cwd,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                jobs.append(job)
                assert job.stdout is not None
                assert job.stdout.readline().startswith("setpeer listening on ")
            elif command.startswith("kill"):
                for job in jobs:
                    job.send_signal(signal.SIGTERM)
                assert [job.wait(timeout=seconds(30)) for job in jobs] == [0, 0]
            elif command.startswith("setpeer status"):
                # Until the SET is acked: the table's row for b, column "acked".
                deadline = time.monotonic() + seconds(20)
                while True:
                    lines = run(shlex.split(command)).splitlines()
                    first = next(i for i, line in enumerate(lines) if line.startswith("partner"))
                    header, row = lines[first : first + 2]  # after the "node:" line
                    acked = dict(zip(header.split(), row.split(), strict=False))["acked"]
                    if acked == "1" or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                assert (row.split()[:2], acked) == (["b", "websocket"], "1")
            else:
                for part in command.split(" && "):
                    argv = shlex.split(part)
                    if argv[0] == "cd":
                        cwd = cwd / argv[1]
                    else:
                        if argv[:2] == ["setpeer", "init"]:
                            argv += ["--port", str(port)]
                        outputs.append(run(argv))
    finally:
        for job in jobs:
            if job.poll() is None:
                job.kill()
                job.wait()
            if job.stdout is not None:
                job.stdout.close()
    jti = outputs[-2].strip()  # what send printed; receive printed the SET last
    assert re.fullmatch(r"[0-9a-f]{32}", jti) and f'"jti":"{jti}"' in outputs[-1]
    assert time.monotonic() - started < seconds(60)
