"""Serials match exactly (R4, R5: GS1 AI 21 serials are case-sensitive, and "98" is not
"00098"), but a refusal saying a serial was never received names the LIC's near matches: the
units whose serial differs only by letter case or the leading zeros of its digits
(services/allocation/domain/serials.py `NearSerials`), on a sale or vendor return (R9, R14),
a customer return (R13) and a count (R11). The lookup is built on the refusal path only."""

from __future__ import annotations

import pytest

from services.allocation.domain import serials as serials_module
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.serials import near_key
from tests.unit.allocation.builders import (
    Book,
    adjust,
    allocate,
    give_back,
    item,
    receive,
    ship,
)

EXACT = "serials match exactly: case and leading zeros count"


@pytest.mark.parametrize(
    ("serial", "key"),
    [
        ("IP200-0002", "ip200-2"),
        ("ip200-002", "ip200-2"),
        ("00098", "98"),
        ("98", "98"),
        ("000", "0"),
        ("A0B00C", "a0b0c"),
        ("SN-100", "sn-100"),  # zeros inside a run stay
    ],
)
def test_near_key_ignores_case_and_each_digit_runs_leading_zeros(serial: str, key: str) -> None:
    assert near_key(serial) == key


def test_near_key_keeps_digit_runs_apart() -> None:
    """ "IP2000002" is one run of digits, "IP200-0002" two: not the same serial nearly."""
    assert near_key("IP2000002") != near_key("IP200-0002")
    assert near_key("IP200-0012") != near_key("IP200-0002")


def generated_book() -> Book:
    """00098 and 00099 from the Next Serial, in stock at office MAIN."""
    return Book(
        item(serialized=True, next_serial="98"), receive("PO-1/1", 2, office="MAIN", generate=True)
    )


def test_r9_a_sale_of_98_names_00098_generated_by_the_next_serial() -> None:
    refused = generated_book().refused(
        allocate("SO-1", 1, office="MAIN", serials=["98"]), ReasonCode.SERIAL_NOT_AVAILABLE
    )
    assert refused.reason == (
        "serial 98 of L is not in stock: it was never received (did you mean 00098, which is in "
        f"stock at office MAIN? {EXACT})"
    )
    assert refused.offending == "98"


def test_r9_every_serial_never_received_of_a_sale_names_its_own_near_matches() -> None:
    refused = generated_book().refused(
        allocate("SO-1", 2, office="MAIN", serials=["98", "099"]),
        ReasonCode.SERIAL_NOT_AVAILABLE,
    )
    assert refused.reason == (
        "serial 98 of L is not in stock: it was never received (did you mean 00098, which is in "
        f"stock at office MAIN? {EXACT}); serial 099 of L is not in stock: it was never "
        f"received (did you mean 00099, which is in stock at office MAIN? {EXACT})"
    )


def test_r9_a_serial_with_no_near_match_is_refused_as_before() -> None:
    refused = generated_book().refused(
        allocate("SO-1", 1, office="MAIN", serials=["980"]), ReasonCode.SERIAL_NOT_AVAILABLE
    )
    assert refused.reason == "serial 980 of L is not in stock: it was never received"


def test_r4_the_near_match_is_a_separate_unit_the_exact_serial_is_still_taken() -> None:
    """Serials match exactly: naming 00098 sells it; "98" never takes it."""
    book = generated_book()
    book.ok(allocate("SO-1", 1, office="MAIN", serials=["00098"]))
    assert book.status("00098") == "allocated"


def test_r14_a_vendor_return_names_near_matches_by_case_with_where_they_are() -> None:
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 2, office="MAIN", serials=["IP200-0001", "IP200-0002"]),
        allocate("SO-1", 1, office="MAIN", to="Acme", serials=["IP200-0001"]),
        ship("SO-1"),
        allocate("SO-2", 1, office="MAIN", serials=["IP200-0002"]),
    )
    refused = book.refused(
        allocate("RTV-1", 2, office="MAIN", kind="vendor_return", serials=["ip200-1", "Ip200-02"]),
        ReasonCode.SERIAL_NOT_AVAILABLE,
    )
    assert refused.reason == (
        "serial ip200-1 of L is not in stock: it was never received (did you mean IP200-0001, "
        f"which was shipped to Acme on shipment SO-1 line 1? {EXACT}); serial Ip200-02 of L is "
        "not in stock: it was never received (did you mean IP200-0002, which is allocated to "
        f"shipment SO-2 line 1 at office MAIN? {EXACT})"
    )


def test_r13_a_return_of_ip200_0001_in_lower_case_names_the_shipped_unit() -> None:
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 1, office="MAIN", serials=["IP200-0001"]),
        allocate("SO-1", 1, office="MAIN", to="Acme", serials=["IP200-0001"]),
        ship("SO-1"),
    )
    refused = book.refused(
        give_back("RMA-1", 1, office="MAIN", customer="Acme", serials=["ip200-0001"]),
        ReasonCode.SERIAL_NOT_SHIPPED,
    )
    assert refused.reason == (
        "serial ip200-0001 of L was never received (did you mean IP200-0001, which was shipped "
        f"to Acme on shipment SO-1 line 1? {EXACT})"
    )
    book.ok(give_back("RMA-1", 1, office="MAIN", customer="Acme", serials=["IP200-0001"]))


def test_r11_a_count_of_98_names_00098_removed_by_a_loss_before_its_advice() -> None:
    book = generated_book()
    book.ok(adjust("ADJ-1", "loss", -1, office="MAIN", serials=["00098"]))
    refused = book.refused(
        adjust("ADJ-2", "count", 1, office="MAIN", serials=["98"]),
        ReasonCode.SERIAL_NOT_AVAILABLE,
    )
    assert refused.reason == (
        "serial 98 of L was never received (did you mean 00098, which was removed from stock "
        f"at office MAIN by a count or loss? {EXACT}): add it with a beginning balance"
    )


def test_r11_a_loss_naming_a_near_match_names_it() -> None:
    refused = generated_book().refused(
        adjust("ADJ-1", "loss", -1, office="MAIN", serials=["0098"]),
        ReasonCode.SERIAL_NOT_AVAILABLE,
    )
    assert f"never received (did you mean 00098, which is in stock at office MAIN? {EXACT})" in (
        refused.reason
    )


def test_at_most_three_near_matches_in_code_point_order_then_how_many_more() -> None:
    near = ["sn-7", "SN-007", "Sn-07", "sN-0007", "SN-7"]
    book = Book(item(serialized=True), receive("PO-1/1", 5, office="MAIN", serials=near))
    refused = book.refused(
        allocate("SO-1", 1, office="MAIN", serials=["SN-07"]), ReasonCode.SERIAL_NOT_AVAILABLE
    )
    stock = "which is in stock at office MAIN"
    assert refused.reason == (
        f"serial SN-07 of L is not in stock: it was never received (did you mean SN-007, {stock}, "
        f"SN-7, {stock}, Sn-07, {stock}, or one of 2 more? {EXACT})"
    )


def test_a_serial_received_again_is_named_once_with_its_current_unit() -> None:
    """00098 shipped, then received again at office WEST: its latest unit says where it is."""
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 1, office="MAIN", serials=["00098"]),
        allocate("SO-1", 1, office="MAIN", to="Acme", serials=["00098"]),
        ship("SO-1"),
        receive("PO-2/1", 1, office="WEST", serials=["00098"]),
    )
    refused = book.refused(
        allocate("SO-2", 1, office="WEST", serials=["98"]), ReasonCode.SERIAL_NOT_AVAILABLE
    )
    assert refused.reason.endswith(
        f"(did you mean 00098, which is in stock at office WEST? {EXACT})"
    )


# -- cost: the lookup is built on the refusal path only -----------------------------------------


def _count_keys(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every serial `near_key` is asked about (the index calls it once per unit)."""
    asked: list[str] = []
    real = serials_module.near_key

    def counting(serial: str) -> str:
        asked.append(serial)
        return real(serial)

    monkeypatch.setattr(serials_module, "near_key", counting)
    return asked


def test_accepted_sales_returns_and_counts_build_no_near_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 1000, office="MAIN", serials=[f"S{i:05d}" for i in range(1000)]),
    )
    asked = _count_keys(monkeypatch)
    book.ok(
        allocate("SO-1", 1000, office="MAIN", to="Acme", serials=[f"S{i:05d}" for i in range(1000)])
    )
    book.ok(ship("SO-1"))
    book.ok(give_back("RMA-1", 1, office="MAIN", customer="Acme", serials=["S00000"]))
    book.ok(adjust("ADJ-1", "loss", -1, office="MAIN", serials=["S00000"]))
    book.ok(adjust("ADJ-2", "count", 1, office="MAIN", serials=["S00000"]))
    assert asked == []


def test_a_refusal_of_many_serials_builds_the_lookup_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    book = generated_book()
    asked = _count_keys(monkeypatch)
    book.refused(
        allocate("SO-1", 5, office="MAIN", serials=["1", "2", "3", "4", "5"]),
        ReasonCode.SERIAL_NOT_AVAILABLE,
    )
    # One key per unit of the LIC (the index) and one per serial never received.
    assert sorted(asked) == sorted(["00098", "00099", "1", "2", "3", "4", "5"])
