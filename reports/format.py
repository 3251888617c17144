"""How every report writes amounts of money, percentages and the solver's time, so that they
read the same."""

from __future__ import annotations

from decimal import Decimal

from planner.money import format_money, format_rate
from planner.planfile import SolverReport


def seconds_spent(solver: SolverReport) -> str:
    """The solver's time: seconds, or deterministic seconds of counted work."""
    return f"{solver.seconds:.2f} {'deterministic s' if solver.deterministic else 's'}"


def money(amount: Decimal | float, currency: str, *, sign: bool = False) -> str:
    """`1,234.50 USD` (to the currency's minor unit), or `+1,234.50 USD` with `sign`."""
    return format_money(amount, currency, sign=sign)


def rate(amount: Decimal | float, currency: str) -> str:
    """A cost per hour, finer than the minor unit: `4.6016 USD`."""
    return format_rate(amount, currency)


def percent(part: Decimal | float, whole: Decimal | float, *, sign: bool = False,
            digits: int = 0) -> str:
    """`part` as a percentage of `whole`; `-` when there is no whole to compare with."""
    if not whole:
        return "-"
    return f"{100 * float(part) / float(whole):{'+' if sign else ''}.{digits}f}%"
