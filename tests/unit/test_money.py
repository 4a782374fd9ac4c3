"""Money: integers in Stripe's minor units, by Stripe's currency rules (docs.stripe.com/currencies)."""

from __future__ import annotations

import pytest

from payments_service.domain.money import MAX_AMOUNT, AmountError, Currency


@pytest.mark.parametrize(
    ("currency", "major", "minor"),
    [
        ("usd", "37.50", 3750),
        ("usd", "37.5", 3750),
        ("usd", "37", 3700),
        ("USD", "0.50", 50),
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


def test_ugx_is_charged_in_hundredths_of_whole_shillings_like_isk() -> None:
    # "UGX transitioned to a zero-decimal currency, but backwards compatibility requires you to
    # represent it as a two-decimal value": UGX 50,000 is amount=5000000, not 50000 (UGX 500).
    ugx = Currency.of("ugx")
    assert ugx.to_minor("50000") == 5_000_000
    assert ugx.check_minor(5_000_000) == 5_000_000
    with pytest.raises(AmountError, match="UGX amounts must be multiples of 100 minor units"):
        ugx.check_minor(5_000_050)
    with pytest.raises(AmountError, match="no decimal places|multiples of 100"):
        ugx.to_minor("50000.50")
    assert ugx.display(5_000_000) == "UGX 50,000"


def test_isk_is_charged_in_hundredths_of_whole_kronur() -> None:
    isk = Currency.of("isk")
    assert isk.to_minor("5") == 500
    with pytest.raises(AmountError, match="multiples of 100"):
        isk.to_minor("100.50")


@pytest.mark.parametrize("code", ["huf", "twd"])
def test_huf_and_twd_are_zero_decimal_for_payouts_only_and_charge_fractions(code: str) -> None:
    # Stripe treats them as zero-decimal for payouts "even though you can charge two-decimal amounts".
    currency = Currency.of(code)
    assert (currency.exponent, currency.step) == (2, 1)
    assert currency.to_minor("800.45") == 80045


@pytest.mark.parametrize("code", "bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf".split())
def test_stripes_zero_decimal_currencies_take_the_amount_as_is(code: str) -> None:
    currency = Currency.of(code)
    assert currency.exponent == 0
    assert currency.to_minor("5000") == 5000
    with pytest.raises(AmountError, match="no decimal places"):
        currency.to_minor("5000.5")


@pytest.mark.parametrize("code", "bhd jod kwd omr tnd".split())
def test_three_decimal_currencies_take_thousandths_ending_in_zero(code: str) -> None:
    currency = Currency.of(code)
    assert (currency.exponent, currency.step) == (3, 10)
    assert currency.to_minor("5.12") == 5120
    with pytest.raises(AmountError, match="multiples of 10"):
        currency.check_minor(5124)


@pytest.mark.parametrize(
    ("currency", "major", "why"),
    [
        ("usd", "37.505", "at most 2 decimal places"),
        ("jpy", "100.5", "no decimal places"),
        ("kwd", "5.124", "multiples of 10"),
        ("usd", "0", "greater than 0"),
        ("usd", "0.00", "greater than 0"),
        ("usd", "-1", "plain decimal string"),
        ("usd", "1e3", "plain decimal string"),
        ("usd", " 12", "plain decimal string"),
        ("usd", "12.", "plain decimal string"),
        ("usd", "NaN", "plain decimal string"),
        ("usd", "1" * 5000, "plain decimal string"),
        ("usd", "1000000.00", "at most 999999.99"),
    ],
)
def test_amounts_the_currency_cannot_hold_say_why(currency: str, major: str, why: str) -> None:
    with pytest.raises(AmountError, match=why):
        Currency.of(currency).to_minor(major)


@pytest.mark.parametrize(
    ("code", "minimum", "shown"),
    [
        ("usd", 50, "0.50"),
        ("eur", 50, "0.50"),
        ("gbp", 30, "0.30"),
        ("jpy", 50, "50"),
        ("huf", 17500, "175.00"),
        ("czk", 1500, "15.00"),
        ("mxn", 1000, "10.00"),
        ("hkd", 400, "4.00"),
    ],
)
def test_amounts_below_stripes_minimum_charge_are_refused_naming_it(
    code: str, minimum: int, shown: str
) -> None:
    currency = Currency.of(code)
    assert currency.check_minor(minimum) == minimum
    with pytest.raises(AmountError, match=f"at least {shown} .*Stripe's minimum"):
        currency.check_minor(minimum - currency.step)


@pytest.mark.parametrize(
    ("code", "maximum"),
    [
        ("usd", 99_999_999),
        ("jpy", 99_999_999),
        ("ugx", 99_999_900),
        ("inr", 999_999_999),
        ("cop", 9_999_999_999),
        ("idr", 999_999_999_999),
    ],
)
def test_the_maximum_follows_stripes_digits_per_currency(code: str, maximum: int) -> None:
    currency = Currency.of(code)
    assert currency.check_minor(maximum) == maximum
    with pytest.raises(AmountError, match="Stripe's maximum"):
        currency.check_minor(maximum + currency.step)
    assert maximum <= MAX_AMOUNT


def test_currencies_stripe_does_not_support_are_refused_with_the_list() -> None:
    with pytest.raises(AmountError, match=r"Stripe does not support XYZ.*docs.stripe.com/currencies"):
        Currency.of("xyz")
    with pytest.raises(AmountError, match="three-letter"):
        Currency.of("us")
    assert Currency.of("USD").code == "usd"


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
