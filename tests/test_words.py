"""The repository's words: no tracker history and no pointer to a document it does not hold.

A comment says why the code is as it is; when it changed and under which ticket is in
git. A reference must resolve in a fresh clone, so code and docs point at README.md and
docs/*.md, never at design notes kept beside the repository. The patterns are built from
parts so that this file does not match itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("peer/", "docs/", "scripts/", "tests/", ".ci/", "schemas/")
CHECKED_FILES = ("README.md", "pyproject.toml")
SKIPPED = ("node_modules/",)

_NOTES = "|".join(("API", "DESIGN", "PERFORMANCE", "STYLE"))
PATTERNS = {
    # "issue 6", "issues 5 and 6", "Issue #7": history that belongs in git.
    "tracker history": re.compile(r"\bissues?\s+#?\d", re.IGNORECASE),
    # API.md, DESIGN.md, ... and `DESIGN "Storage"`: notes outside the repository.
    "outside document": re.compile(rf"\b({_NOTES})\.md\b|\bDESIGN \""),
    # The spec checklists and shared notes kept beside the repository.
    "outside folder": re.compile(r"\bspec/[\w.-]+\.md\b|\bshared/[\w.-]+"),
}


def tracked_files() -> list[Path]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        [git, "ls-files", "-z", "--", *CHECKED, *CHECKED_FILES],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    me = Path(__file__).resolve()
    return [
        ROOT / name
        for name in out.split("\0")
        if name and not any(part in name for part in SKIPPED) and (ROOT / name).resolve() != me
    ]


def findings(text: str) -> list[tuple[int, str, str]]:
    """(line number, kind, line) for every line that matches a pattern."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for kind, pattern in PATTERNS.items():
            if pattern.search(line):
                found.append((number, kind, line.strip()))
    return found


def test_patterns_are_precise() -> None:
    bad = [
        "a comment (" + "issue 6): why",
        "see " + "API" + ".md",
        "DESIGN" + ' "Storage"',
        "Issues 5 and 6",
        "spec/" + "push.md",
    ]
    good = [
        "an issue with the store",
        "Verifier(issuer=ISS)",
        "the issuer binding",
        "docs/decisions.md, decision 6",
        "PP-30, POLL-15",
        "shared store",
    ]
    assert all(findings(line) for line in bad)
    assert not any(findings(line) for line in good)


def test_no_history_and_no_outside_documents() -> None:
    problems = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, kind, line in findings(text):
            problems.append(f"{path.relative_to(ROOT)}:{number}: {kind}: {line}")
    assert not problems, "\n".join(problems)
