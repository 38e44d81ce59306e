"""`lotline send` names the fields the contract does not know (the services ignore them, so a
misspelled optional field silently loses its meaning) and every document it will not send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import AliasChoices, AliasPath, ConfigDict, Field

import shared.send
from shared import cli
from shared.contracts.base import Model
from shared.send import BadDocuments, Outcome, check, read_documents, unknown_fields

REQUEST: dict[str, Any] = {
    "type": "ShipmentRequested",
    "message_id": "r-1",
    "shipment_id": "SO-1",
    "office": "MAIN",
    "kind": "sale",
    "customer": "C",
    "ship_on": "2026-11-22",
    "min_shelf_life_days": 30,
    "lines": [
        {"line_no": 1, "lic": "YOG", "quantity": 5, "min_shelf_life_days": 200},
        {"line_no": 2, "lic": "YOG", "quantity": 1, "lots": [{"mfr_lot": "A", "quantity": 1}]},
    ],
}
ITEM = {"type": "UpsertItem", "message_id": "m-1", "lic": "BOLT"}


def _misspelled() -> dict[str, Any]:
    """The walkthrough's document: `min_shelf_life` for the document's field, camel case for a
    line's, and a typo inside a line's lot."""
    document: dict[str, Any] = json.loads(json.dumps(REQUEST))
    document["min_shelf_life"] = document.pop("min_shelf_life_days")
    document["lines"][0]["minShelfLifeDays"] = document["lines"][0].pop("min_shelf_life_days")
    document["lines"][1]["lots"][0]["qty"] = 1
    return document


def test_a_misspelled_optional_field_is_named_with_its_path() -> None:
    document = check("f:3", json.dumps(_misspelled()))

    assert document.unknown == (  # in the document's order
        "lines[0].minShelfLifeDays",
        "lines[1].lots[0].qty",
        "min_shelf_life",
    )
    assert check("f:1", json.dumps(REQUEST)).unknown == ()


def test_each_document_is_read_as_the_model_its_type_names() -> None:
    """Two message types on one topic (a discriminated union): `quarantine_id` is a field of
    QuarantineStock, not of AdjustInventory."""
    quarantine = {
        "type": "QuarantineStock",
        "message_id": "q-1",
        "quarantine_id": "Q-1",
        "lic": "YOG",
        "mfr_lot": "A",
        "quarantined": True,
        "adjustment_id": "ADJ-1",
    }
    adjustment = {
        "type": "AdjustInventory",
        "message_id": "a-1",
        "adjustment_id": "ADJ-1",
        "lic": "YOG",
        "office": "MAIN",
        "kind": "count",
        "quantity": 1,
        "quarantine_id": "Q-1",
    }

    assert check("f:1", json.dumps(quarantine)).unknown == ("adjustment_id",)
    assert check("f:2", json.dumps(adjustment)).unknown == ("quarantine_id",)


class _Pick(Model):
    mfr_lot: str = Field(alias="mfrLot")


class _Sale(Model):
    kind: Literal["sale"]
    picks: list[_Pick] = Field(default_factory=list)


class _Return(Model):
    kind: Literal["return"]
    vendor: str = Field(validation_alias=AliasChoices("vendor", "supplier"))


class _Document(Model):
    model_config = ConfigDict(populate_by_name=True)

    line_no: int = Field(alias="lineNo")
    origin: str = Field(default="", validation_alias=AliasPath("source", "name"))
    steps: tuple[Annotated[_Sale | _Return, Field(discriminator="kind")], ...] = ()
    by_office: dict[str, _Pick] = Field(default_factory=dict)
    note: _Pick | None = None


def test_the_walk_follows_aliases_nested_models_lists_and_discriminated_unions() -> None:
    """Generic over the models, not a list kept by hand: a field read by its alias (and by name
    when the model allows it), an alias path's first key, models nested in lists, tuples,
    mappings and optionals, and a union discriminated by a field other than `type`."""
    document = {
        "lineNo": 1,
        "line_no": 1,  # populate_by_name: read too
        "source": {"name": "ERP", "unread": 1},  # inside an alias path: not walked
        "steps": [
            {"kind": "sale", "picks": [{"mfrLot": "A", "mfr_lot": "A"}]},
            {"kind": "return", "supplier": "V", "vendr": "V"},
        ],
        "by_office": {"MAIN": {"mfrLot": "B", "lot": "B"}},
        "note": {"mfrLot": "C", "x": 1},
        "extra": {"deep": {"deeper": 1}},  # its insides are not listed again
    }

    assert unknown_fields(document, _Document) == [
        "steps[0].picks[0].mfr_lot",  # an alias replaces the name
        "steps[1].vendr",
        "by_office.MAIN.lot",
        "note.x",
        "extra",
    ]


def _run(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> tuple[int, list[bytes]]:
    """`lotline send ARGS` with a broker configured but `send` captured: (status, the bytes
    each document would be published with)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    published: list[bytes] = []

    async def capture(_settings: Any, documents: Any, **_kwargs: Any) -> list[Outcome]:
        published.extend(doc.value for doc in documents)
        return []

    monkeypatch.setattr(shared.send, "send", capture)
    return cli.main(["send", "--no-wait", *args]), published


def test_send_and_check_warn_of_unknown_fields_per_document_and_still_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(f"{json.dumps(ITEM)}\n{json.dumps(_misspelled())}\n")

    assert cli.main(["send", "--check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("2 documents as the contract reads them")
    warnings = captured.err.splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith(f"lotline send: warning: {path}:2: fields not in the contract")
    for name in ("min_shelf_life", "lines[0].minShelfLifeDays", "lines[1].lots[0].qty"):
        assert name in warnings[0]

    code, published = _run(monkeypatch, [str(path)])
    assert code == 0
    assert len(published) == 2  # warned, not refused
    assert f"{path}:2: fields not in the contract" in capsys.readouterr().err


def test_strict_refuses_unknown_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(f"{json.dumps(ITEM)}\n{json.dumps(_misspelled())}\n")

    assert cli.main(["send", "--check", "--strict", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: fields not in the contract" in err
    assert "--strict: 1 document with fields not in the contract (nothing was sent)" in err

    code, published = _run(monkeypatch, ["--strict", str(path)])
    assert (code, published) == (2, [])
    path.write_text(json.dumps(ITEM))
    assert cli.main(["send", "--check", "--strict", str(path)]) == 0


def test_every_bad_document_is_named_up_to_a_bound_and_none_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = [json.dumps(ITEM | {"message_id": f"m-{n}", "lic": ""}) for n in range(60)]
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join([json.dumps(ITEM), *bad]) + "\n")

    code, published = _run(monkeypatch, [str(path)])

    assert (code, published) == (2, [])
    lines = capsys.readouterr().err.splitlines()
    named = [line for line in lines if ": lic: identifier is empty" in line]
    assert named[0] == f'lotline send: {path}:2: lic: identifier is empty (offending: "")'
    assert len(named) == shared.send.MAX_NAMED
    assert lines[-2:] == [
        "lotline send: … and 10 more bad documents",
        "lotline send: 60 of 61 documents would not be accepted (nothing was sent)",
    ]


def test_text_that_is_not_json_does_not_hide_the_other_files_bad_documents() -> None:
    bad = json.dumps(ITEM | {"lic": ""})
    with pytest.raises(BadDocuments) as error:
        read_documents([("a", f"{json.dumps(ITEM)}\n{{oops"), ("b", f"{bad}\n{bad}")])

    assert [e.where for e in error.value.bad] == ["a:2", "b:1", "b:2"]
    assert "not JSON" in error.value.bad[0].reason
    assert error.value.lines()[-1] == "3 of 4 documents would not be accepted (nothing was sent)"
