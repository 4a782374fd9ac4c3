"""Money: integers in minor units, converted by each currency's exponent, refused when not representable."""

from __future__ import annotations

import pytest

from payments_service.domain.money import MAX_AMOUNT, AmountError, Currency


@pytest.mark.parametrize(
    ("currency", "major", "minor"),
    [
        ("usd", "37.50", 3750),
        ("usd", "37.5", 3750),
        ("usd", "37", 3700),
        ("USD", "0.01", 1),
        ("jpy", "500", 500),
        ("jpy", "500.00", 500),
        ("krw", "1000", 1000),
        ("kwd", "5.120", 5120),
        ("kwd", "5.12", 5120),
        ("bhd", "1", 1000),
        ("isk", "150", 15000),
        ("eur", "999999.99", 99_999_999),
    ],
)
def test_major_units_convert_exactly(currency: str, major: str, minor: int) -> None:
    assert Currency.of(currency).to_minor(major) == minor


@pytest.mark.parametrize(
    ("currency", "major", "why"),
    [
        ("usd", "37.505", "at most 2 decimal places"),
        ("jpy", "100.5", "no decimal places"),
        ("kwd", "5.124", "multiples of 10"),
        ("isk", "100.50", "multiples of 100"),
        ("usd", "0", "greater than 0"),
        ("usd", "0.00", "greater than 0"),
        ("usd", "-1", "plain decimal string"),
        ("usd", "1e3", "plain decimal string"),
        ("usd", " 12", "plain decimal string"),
        ("usd", "12.", "plain decimal string"),
        ("usd", "NaN", "plain decimal string"),
        ("usd", "1000000.00", "at most 99999999"),
    ],
)
def test_amounts_the_currency_cannot_hold_say_why(currency: str, major: str, why: str) -> None:
    with pytest.raises(AmountError, match=why):
        Currency.of(currency).to_minor(major)


def test_minor_amounts_respect_the_currency_step() -> None:
    assert Currency.of("usd").check_minor(1) == 1
    assert Currency.of("kwd").check_minor(1230) == 1230
    with pytest.raises(AmountError, match="KWD amounts must be multiples of 10 minor units"):
        Currency.of("kwd").check_minor(1234)
    with pytest.raises(AmountError):
        Currency.of("usd").check_minor(MAX_AMOUNT + 1)


def test_currency_codes_are_three_letters() -> None:
    with pytest.raises(AmountError, match="three-letter"):
        Currency.of("us")
    assert Currency.of("usd").exponent == 2
    assert Currency.of("jpy").exponent == 0
    assert Currency.of("tnd").exponent == 3


def test_formatting_shows_the_currency_decimals() -> None:
    assert Currency.of("usd").format(3750) == "37.50"
    assert Currency.of("jpy").format(500) == "500"
    assert Currency.of("kwd").format(5120) == "5.120"


@pytest.mark.parametrize(
    ("currency", "minor", "shown"),
    [
        ("usd", 3750, "$37.50"),
        ("usd", 123456789, "$1,234,567.89"),
        ("jpy", 4200, "¥4,200"),
        ("kwd", 5120, "KWD 5.120"),
        ("isk", 150000, "ISK 1,500"),
        ("chf", 990, "CHF 9.90"),
    ],
)
def test_amounts_are_displayed_as_people_read_them(currency: str, minor: int, shown: str) -> None:
    assert Currency.of(currency).display(minor) == shown
