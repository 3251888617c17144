"""How every report writes amounts of money and percentages, so that they read the same."""

from __future__ import annotations


def money(amount: float, currency: str, *, sign: bool = False) -> str:
    """`1,234.50 USD`, or `+1,234.50 USD` with `sign`."""
    return f"{amount:+,.2f} {currency}" if sign else f"{amount:,.2f} {currency}"


def percent(part: float, whole: float, *, sign: bool = False, digits: int = 0) -> str:
    """`part` as a percentage of `whole`; `-` when there is no whole to compare with."""
    if not whole:
        return "-"
    return f"{100 * part / whole:{'+' if sign else ''}.{digits}f}%"
