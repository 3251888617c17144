"""Checks for figures measured against the project's stub server, whose service times are known.

A loaded machine can only add time: the round trip and the wake-up of client and server threads
come on top of the service-time model, about a millisecond on an idle machine and tens of
milliseconds with many processes competing for two cores. So a latency may come out at most
15% under the model but up to 60% over it, and a rate at most 15% over but down to 1/1.6 of it.
A server that skips its batch delay, serves its clients one at a time or takes twice as long
per request still fails.
"""

from __future__ import annotations

FASTER = 0.15
SLOWER = 1.6


def assert_latency(measured_ms: float | None, expected_ms: float) -> None:
    """A latency within the model's margin: never much faster, at most 60% slower."""
    assert measured_ms is not None
    assert expected_ms * (1 - FASTER) <= measured_ms <= expected_ms * SLOWER, \
        f"{measured_ms:.1f} ms against {expected_ms:.1f} ms expected"


def assert_rate(measured: float | None, expected: float) -> None:
    """A rate (requests or tokens a second) within the model's margin: never much higher, down
    to 1/1.6 of it."""
    assert measured is not None
    assert expected / SLOWER <= measured <= expected * (1 + FASTER), \
        f"{measured:.2f} a second against {expected:.2f} expected"
