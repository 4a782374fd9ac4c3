"""Currencies as Stripe charges them: exponents, steps, supported codes, minimums and maximums.

No I/O and no floats: amounts are integers in Stripe's minor units from end to end. The rules
come from https://docs.stripe.com/currencies ("Supported presentment currencies", "Zero-decimal
currencies", "Special cases", "Minimum and maximum charge amounts").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

CURRENCIES_URL = "https://docs.stripe.com/currencies"

# Stripe's presentment currencies (card payments); anything else Stripe refuses.
PRESENTMENT = frozenset(
    """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bif bmd bnd bob brl bsd bwp byn bzd
    cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf
    gtq gyd hkd hnl htg huf idr ils inr isk jmd jpy kes kgs khr kmf krw kyd kzt lak lbp lkr lrd
    lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd pab pen pgk
    php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs top
    try ttd twd tzs uah ugx usd uyu uzs vnd vuv wst xaf xcd xcg xof xpf yer zar zmw
    """.split()
)
# Stripe's zero-decimal list: the amount is the charge, with no multiplication.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
# "Special cases": ISK and UGX became zero-decimal, but for backwards compatibility the API still
# takes them as two-decimal amounts whose decimals are always 00 (5 UGX is amount=500). This wins
# over UGX's place on the zero-decimal list; sending 50000 for UGX 50,000 would charge UGX 500.
# HUF and TWD are zero-decimal for payouts only: charges take ordinary two-decimal amounts.
WHOLE_UNITS_IN_HUNDREDTHS = frozenset({"isk", "ugx"})
# Three-decimal currencies (accounts that can charge them): Stripe takes thousandths, but its
# card partners need the last digit to be 0.
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
SUPPORTED = PRESENTMENT | THREE_DECIMAL

# "Minimum charge amount by currency", in minor units. It is the settlement currency's minimum;
# a charge in another currency must meet it after conversion, which only Stripe can check.
MINIMUM_CHARGE = {
    "usd": 50, "aed": 200, "ars": 50, "aud": 50, "brl": 50, "cad": 50, "chf": 50, "cop": 50,
    "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "idr": 50, "ils": 50,
    "inr": 50, "jpy": 50, "krw": 50, "mxn": 1000, "myr": 200, "nok": 300, "nzd": 50, "php": 50,
    "pln": 200, "ron": 200, "rub": 50, "sek": 300, "sgd": 50, "thb": 1000, "zar": 50,
}  # fmt: skip
# "Maximum charge amounts": the number of digits an amount may have, whatever the payment
# method (cards allow more; a Checkout Session may offer other methods).
MAX_DIGITS = {"idr": 12, "cop": 10, "inr": 9}
DEFAULT_MAX_DIGITS = 8
LIMITS_URL = f"{CURRENCIES_URL}#minimum-and-maximum-charge-amounts"
# The largest amount any currency allows: a bound checked before the currency's own.
MAX_AMOUNT = 10 ** max(MAX_DIGITS.values()) - 1

# Symbols people expect to see; every other currency is shown with its code.
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩"}

_MAJOR_AMOUNT = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
_CURRENCY = re.compile(r"[a-z]{3}")
# A decimal string longer than this is no amount any currency can hold (and int() of thousands
# of digits costs real CPU).
_MAX_MAJOR_LENGTH = 32


class AmountError(ValueError):
    """An amount the currency cannot hold, or a currency Stripe cannot charge; the message says why."""


@dataclass(frozen=True)
class Currency:
    """A currency as Stripe charges it: decimal places, the smallest step and the bounds, in minor units."""

    code: str
    exponent: int
    step: int
    minimum: int
    maximum: int

    @classmethod
    def of(cls, code: str) -> Currency:
        """The Stripe rules for a three-letter code (case-insensitive); AmountError if Stripe has none."""
        code = code.lower()
        if not _CURRENCY.fullmatch(code):
            raise AmountError("currency must be a three-letter ISO 4217 code, such as usd")
        if code not in SUPPORTED:
            raise AmountError(
                f"Stripe does not support {code.upper()}; supported currencies: "
                f"{CURRENCIES_URL}#presentment-currencies"
            )
        exponent, step = 2, 1
        if code in WHOLE_UNITS_IN_HUNDREDTHS:
            step = 100
        elif code in ZERO_DECIMAL:
            exponent = 0
        elif code in THREE_DECIMAL:
            exponent, step = 3, 10
        maximum = 10 ** MAX_DIGITS.get(code, DEFAULT_MAX_DIGITS) - 1
        return cls(code, exponent, step, MINIMUM_CHARGE.get(code, 1), maximum - maximum % step)

    def check_minor(self, amount: int) -> int:
        """Return amount if Stripe can charge it in this currency, else raise AmountError."""
        if amount <= 0:
            raise AmountError("amount must be greater than 0")
        if amount > self.maximum:
            raise AmountError(
                f"{self.code.upper()} charges are at most {self.format(self.maximum)} "
                f"({self.maximum} minor units; Stripe's maximum, {LIMITS_URL})"
            )
        if amount % self.step:
            raise AmountError(
                f"{self.code.upper()} amounts must be multiples of {self.step} minor units "
                f"({self.format(self.step)})"
            )
        if amount < self.minimum:
            raise AmountError(
                f"{self.code.upper()} charges must be at least {self.format(self.minimum)} "
                f"({self.minimum} minor units; Stripe's minimum, {LIMITS_URL})"
            )
        return amount

    def to_minor(self, major: str) -> int:
        """Convert a decimal string in major units ("37.50") to minor units, exactly."""
        match = _MAJOR_AMOUNT.fullmatch(major) if len(major) <= _MAX_MAJOR_LENGTH else None
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
        """For people: '$37.50', '¥4,200', 'KWD 5.120', 'ISK 1,500' (whole krónur only)."""
        places = 0 if self.step == 100 else self.exponent
        major = Decimal(minor).scaleb(-self.exponent)
        number = f"{major:,.{places}f}"
        symbol = SYMBOLS.get(self.code)
        return f"{symbol}{number}" if symbol else f"{self.code.upper()} {number}"
