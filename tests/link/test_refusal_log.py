"""The refusal log: bounded rate, and the first refusal's reason in each line."""

from __future__ import annotations

import logging

import pytest

from peer.link.inbound import REFUSALS_LOG_INTERVAL, RefusalLog


def test_each_line_names_the_first_refusal_it_reports(caplog: pytest.LogCaptureFixture) -> None:
    """The first refusal at once; then one line per interval with the counts by error
    and the first refusal since (jti, err, description), a partner's text escaped
    and bounded."""
    caplog.set_level(logging.INFO, logger="setpeer.link")
    now = [100.0]
    refusals = RefusalLog("a", clock=lambda: now[0])
    refusals.refused("j0", "invalid_audience", "aud does not name this recipient")
    for i in range(1, 50):
        refusals.refused(f"j{i}", "invalid_request" if i % 2 else "invalid_key", f"d{i}\n")
    now[0] += REFUSALS_LOG_INTERVAL
    refusals.refused("j50", "invalid_key", "x" * 10_000 + "\x1b[2J")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "partner=a jti=j0 rejected err=invalid_audience"
        " description='aud does not name this recipient'",
        "partner=a rejected 50 SETs in 10 s: invalid_key=25 invalid_request=25"
        " (first jti=j1 err=invalid_request description='d1\\n'; last jti=j50)",
    ]
    now[0] += REFUSALS_LOG_INTERVAL
    refusals.refused("j51", "invalid_key", "x" * 10_000 + "\x1b[2J")
    last = caplog.records[-1].getMessage()
    assert "description='" + "x" * 200 + "...'" in last
    assert "\x1b" not in last and len(last) < 400
