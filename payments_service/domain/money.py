"""Currency exponents and major <-> minor unit conversion, by Stripe's rules; no I/O, no floats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# https://docs.stripe.com/currencies#zero-decimal
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
# Stripe takes these in thousandths but its card partners need the last digit to be 0.
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
# ISK stays two-decimal in the API but card networks only accept whole kronur (multiples of 100).
WHOLE_UNITS_ONLY = frozenset({"isk"})

# Stripe's largest charge is eight digits in minor units for most currencies.
MAX_AMOUNT = 99_999_999

# Symbols people expect to see; every other currency is shown with its code.
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩"}

_MAJOR_AMOUNT = re.compile(r"(?P<whole>\d+)(?:\.(?P<fraction>\d+))?")
_CURRENCY = re.compile(r"[a-z]{3}")


class AmountError(ValueError):
    """An amount the currency cannot hold; the message says why."""


@dataclass(frozen=True)
class Currency:
    """A currency as Stripe treats it: decimal places and the smallest step in minor units."""

    code: str
    exponent: int
    step: int

    @classmethod
    def of(cls, code: str) -> Currency:
        """The Stripe rules for a three-letter code (case-insensitive)."""
        code = code.lower()
        if not _CURRENCY.fullmatch(code):
            raise AmountError("currency must be a three-letter ISO 4217 code, such as usd")
        if code in ZERO_DECIMAL:
            return cls(code, 0, 1)
        if code in THREE_DECIMAL:
            return cls(code, 3, 10)
        if code in WHOLE_UNITS_ONLY:
            return cls(code, 2, 100)
        return cls(code, 2, 1)

    def check_minor(self, amount: int) -> int:
        """Return amount if Stripe can charge it in this currency, else raise AmountError."""
        if amount <= 0:
            raise AmountError("amount must be greater than 0")
        if amount > MAX_AMOUNT:
            raise AmountError(f"amount must be at most {MAX_AMOUNT} minor units")
        if amount % self.step:
            raise AmountError(
                f"{self.code.upper()} amounts must be multiples of {self.step} minor units "
                f"({self.format(self.step)})"
            )
        return amount

    def to_minor(self, major: str) -> int:
        """Convert a decimal string in major units ("37.50") to minor units, exactly."""
        match = _MAJOR_AMOUNT.fullmatch(major)
        if match is None:
            raise AmountError('amount_major must be a plain decimal string such as "37.50"')
        fraction = match["fraction"] or ""
        significant = fraction.rstrip("0")
        if len(significant) > self.exponent:
            places = "no decimal places" if self.exponent == 0 else f"at most {self.exponent} decimal places"
            raise AmountError(f"{self.code.upper()} amounts have {places}; {major!r} cannot be charged")
        minor = int(match["whole"]) * 10**self.exponent + int(significant.ljust(self.exponent, "0") or "0")
        return self.check_minor(minor)

    def format(self, minor: int) -> str:
        """Minor units as a plain major-unit string, such as '37.50' or '500'."""
        if self.exponent == 0:
            return str(minor)
        return str(Decimal(minor).scaleb(-self.exponent).quantize(Decimal(1).scaleb(-self.exponent)))

    def display(self, minor: int) -> str:
        """For people: '$37.50', '¥4,200', 'KWD 5.120', 'ISK 1,500' (whole kronur only)."""
        places = 0 if self.step == 100 else self.exponent
        major = Decimal(minor).scaleb(-self.exponent)
        number = f"{major:,.{places}f}"
        symbol = SYMBOLS.get(self.code)
        return f"{symbol}{number}" if symbol else f"{self.code.upper()} {number}"
