"""Amounts of money: `Decimal`, rounded once, to the currency's minor unit (ISO 4217).

Rates per hour are kept finer than the minor unit; an amount someone pays (a month of a model,
a pool's idle capacity) is rounded exactly once, here, and every report formats those rounded
amounts, so no two documents can disagree by a cent (or a yen).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from functools import cache
from typing import Annotated

from pydantic import PlainSerializer

#: An amount of money in a plan or a diff: a Decimal in Python, a plain number in YAML/JSON.
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

#: Rates per hour are shown with this many digits past the currency's minor unit.
RATE_EXTRA_DIGITS = 2


@cache
def minor_unit(currency: str) -> int:
    """Digits after the decimal point for `currency` (USD 2, JPY 0, BHD 3), from ISO 4217."""
    import iso4217

    try:
        exponent = iso4217.Currency(currency).exponent
    except ValueError:
        raise ValueError(f"'{currency}' is not an ISO 4217 currency code; write one such "
                         "as USD, EUR or JPY") from None
    if exponent is None:
        raise ValueError(f"'{currency}' has no minor unit (not a currency one pays in); "
                         "write one such as USD, EUR or JPY")
    return exponent


def quantum(currency: str) -> Decimal:
    """The currency's minor unit as an amount: 0.01 for USD, 1 for JPY."""
    return Decimal(1).scaleb(-minor_unit(currency))


def decimal(value: float | int | Decimal) -> Decimal:
    """A number read from a plan as the decimal it was written as (0.1 is 0.1, not 0.1000…01)."""
    return value if isinstance(value, Decimal) else Decimal(repr(value))


def rounded(amount: Decimal | float, currency: str) -> Decimal:
    """`amount` to the currency's minor unit, half away from zero."""
    return decimal(amount).quantize(quantum(currency), rounding=ROUND_HALF_UP)


def monthly(rate_per_hour: float | Decimal, hours: float | Decimal) -> Decimal:
    """A rate per hour over the month, exact (not rounded)."""
    return decimal(rate_per_hour) * decimal(hours)


def total(amounts: Sequence[Decimal], currency: str) -> Decimal:
    """What a list of line items adds up to, rounded once."""
    return rounded(sum(amounts, Decimal(0)), currency)


def apportion(amounts: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Round each amount to the minor unit so that they add up to `total(amounts)` exactly.

    Largest remainder: every amount is rounded down, then the units still missing (never more
    than there are amounts) go to the largest remainders, ties to the earlier amount.
    """
    unit = quantum(currency)
    floors = [a.quantize(unit, rounding=ROUND_FLOOR) for a in amounts]
    missing = int((total(amounts, currency) - sum(floors, Decimal(0))) / unit)
    order = sorted(range(len(amounts)), key=lambda i: (floors[i] - amounts[i], i))
    for i in order[:missing]:
        floors[i] += unit
    return floors


def format_money(amount: Decimal | float, currency: str, *, sign: bool = False) -> str:
    """`1,234.50 USD` (`1,235 JPY`), or `+1,234.50 USD` with `sign`."""
    digits = minor_unit(currency)
    return f"{rounded(amount, currency):{'+' if sign else ''},.{digits}f} {currency}"


def format_rate(rate: Decimal | float, currency: str) -> str:
    """A rate per hour, two digits finer than the minor unit: `4.6016 USD`, `67.77 JPY`."""
    digits = minor_unit(currency) + RATE_EXTRA_DIGITS
    return f"{decimal(rate):,.{digits}f} {currency}"
