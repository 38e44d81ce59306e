"""Invalid but identifiable upstream documents, answered (docs/contract.md, "Invalid documents").

A message whose bytes are a JSON object of a known `type`, carrying the ids its answer needs,
but failing its schema (a line quantity of 0, a line_no out of range, a serial list that is not
a list …) is dead-lettered AND answered with the refusal its document kind already has. This
module turns pydantic's validation errors into that refusal's problems: a reason code, a human
reason naming the field path (`lines[2].quantity`) and the offending value, escaped and clipped.
The consumer calls a route's `Refuser` (built per service in its translate.py) only on that
failure path; valid messages never come here.

Reason codes, by the field an error is about (the innermost named field of its path):
- `quantity` (and every other number: costs, ordered/purchased quantities), `line_no`, `lines`
  (none, too many, duplicate line numbers): `INVALID_QUANTITY`;
- `serials`, `next_serial`: `INVALID_SERIAL_SPAN`;  `scans`, `gtin`: `INVALID_BARCODE`;
- `lots`, `mfr_lot`: `LOT_REQUIRED`;  `expires_on`: `EXPIRY_REQUIRED`;  `lic`: `UNKNOWN_ITEM`;
- anything else (office, dates, kinds, flags, occurred_at …): `INVALID_QUANTITY`, the contract's
  one code for "a value of the document is not acceptable"; the reason names the field.

Reasons are written as every reason is (shared/reasons.py), never in pydantic's English
("Input should be a valid boolean", "Field required"): `error_reason` maps pydantic's error
types to plain words, and the dead-letter header (`codec`) is written from the same problems,
so the path and the words on the dashboard's dead letter are the refusal's.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from pydantic import BaseModel, TypeAdapter
from pydantic_core import ErrorDetails

from shared.contracts.status import LineProblem
from shared.contracts.types import LineNo, normalize_identifier
from shared.reasons import ReasonCode, listed, sent

# One refusal to publish: (topic, key, message).
Refusal = tuple[str, str | None, BaseModel]
# A route's hook: the invalid document and its validation errors → the refusals that answer it,
# or None when the document cannot be answered (unknown type, ids missing or themselves invalid).
Refuser = Callable[[dict[str, Any], Sequence[ErrorDetails]], Sequence[Refusal] | None]

MAX_PROBLEMS = 100
MAX_TEXT = 1_900
_MAX_RENDER = 200  # containers (a whole line, a list of serials) are shown this far
_MAX_DEPTH = 20  # and this deep

_CODES = {
    "quantity": ReasonCode.INVALID_QUANTITY,
    "line_no": ReasonCode.INVALID_QUANTITY,
    "lines": ReasonCode.INVALID_QUANTITY,
    "unit_cost": ReasonCode.INVALID_QUANTITY,
    "est_unit_cost": ReasonCode.INVALID_QUANTITY,
    "act_unit_cost": ReasonCode.INVALID_QUANTITY,
    "ordered_quantity": ReasonCode.INVALID_QUANTITY,
    "purchased_quantity": ReasonCode.INVALID_QUANTITY,
    "serials": ReasonCode.INVALID_SERIAL_SPAN,
    "next_serial": ReasonCode.INVALID_SERIAL_SPAN,
    "scans": ReasonCode.INVALID_BARCODE,
    "gtin": ReasonCode.INVALID_BARCODE,
    "lots": ReasonCode.LOT_REQUIRED,
    "mfr_lot": ReasonCode.LOT_REQUIRED,
    "expires_on": ReasonCode.EXPIRY_REQUIRED,
    "lic": ReasonCode.UNKNOWN_ITEM,
}
FALLBACK = ReasonCode.INVALID_QUANTITY

# pydantic names the branch of a union (`serials`: a string or a list) in an error's location.
_BRANCH = re.compile(r"^(str|int|bool|date|datetime|decimal|list|dict|none|constrained-\w+)$|[\[-]")
_DUPLICATE_LINE = re.compile(r"line_no (\d+) appears twice")
_LINE_NO: TypeAdapter[int] = TypeAdapter(LineNo)
_TYPE_ERRORS = ("string_type", "list_type")

# What a value of the wrong kind should have been, by pydantic's error type (its English, "Input
# should be a valid boolean", is not how a reason reads).
_EXPECTED = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "text in quotes",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "date_type": "a date written YYYY-MM-DD",
    "datetime_type": "a time in RFC 3339",
}
_BOOLEAN = ("bool_type", "bool_parsing")
_BOOLEAN_WORDS = ("true", "false")
_BOUNDS = {
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
}
# pydantic lists a literal's or a discriminator's values quoted, as Python writes them.
_QUOTED = re.compile(r"'([^']*)'")
# The dead letter's header names the first problems; a million failing scans are not read for it.
_HEADER_ERRORS = 20
_HEADER_PROBLEMS = 5


@dataclass(frozen=True)
class Problem:
    """One validation error, in the contract's terms."""

    path: str
    reason_code: ReasonCode
    reason: str
    offending: str | None = None
    line_no: int | None = None
    lic: str | None = None

    def line_problem(self) -> LineProblem:
        return LineProblem(
            line_no=self.line_no,
            lic=self.lic,
            reason_code=self.reason_code,
            reason=self.reason,
            offending=self.offending,
        )


def identifier(raw: dict[str, Any], field: str) -> str | None:
    """The document's id `field` as the contract normalizes it, or None if it is not one."""
    return _valid_identifier(raw.get(field))


def identifiers(raw: dict[str, Any], *fields: str) -> list[str] | None:
    """Every id in `fields`, or None if any is missing or invalid (the answer needs them all)."""
    found = [identifier(raw, f) for f in fields]
    return None if any(v is None for v in found) else [v for v in found if v is not None]


def problems(
    raw: dict[str, Any], errors: Sequence[ErrorDetails], *, line_no: object = None
) -> list[Problem]:
    """One problem per field that failed (a union's branches count once), at most MAX_PROBLEMS;
    `line_no`: the line a line-level message (picks update) is about."""
    found: dict[str, Problem] = {}
    preferred = _preferred(errors)
    kinds = _union_kinds(raw, preferred)
    for error in preferred:
        for problem in _problems(raw, error, line_no, kinds):
            found.setdefault(problem.path, problem)
    result = list(found.values())
    if not result:  # cannot happen for a ValidationError, but never answer with no reason
        result = [Problem("message", FALLBACK, "the message does not match its schema")]
    if len(result) > MAX_PROBLEMS:
        more = len(result) - MAX_PROBLEMS
        last = result[MAX_PROBLEMS - 1]
        reason = safe_text(f"{last.reason} (and {more} more problems not listed)")
        clipped = Problem(
            last.path, last.reason_code, reason, last.offending, last.line_no, last.lic
        )
        result = [*result[: MAX_PROBLEMS - 1], clipped]
    return result


def summary(found: Sequence[Problem]) -> Problem:
    """The first problem, its reason naming the others: for refusals that carry one reason."""
    first = found[0]
    if len(found) == 1:
        return first
    others = "; ".join(p.reason for p in found[1:6])
    more = f" (and {len(found) - 6} more)" if len(found) > 6 else ""
    reason = safe_text(f"{first.reason}; also {others}{more}")
    return Problem(first.path, first.reason_code, reason, first.offending, first.line_no, first.lic)


def safe_text(value: str) -> str:
    """Text the contract accepts: control characters (a scanner's GS, NUL) and lone surrogates
    escaped, clipped to MAX_TEXT (as receiving and shipping echo offending values).

    NFC-normalized before it is clipped: the contract's `Text` normalizes, and some characters
    grow under NFC (U+FB2C is three), so text clipped first could still end up too long and
    the refusal carrying it would itself be invalid."""
    value = unicodedata.normalize("NFC", value)
    out = []
    for ch in value:
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
    text = "".join(out)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def error_reason(error: ErrorDetails, expected: Sequence[str] | None = None) -> str:
    """What one validation error says, after its path, as every reason reads (shared/reasons.py):
    chosen by pydantic's error `type`, never from its English, with the value as sent; our own
    validators' messages as they wrote them. `expected`: what each branch of a union took
    ("text in quotes", "a list"), when the value was neither."""
    kind, given = error["type"], error.get("input")
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "missing":
        return "required but missing"
    if kind in _BOOLEAN and isinstance(given, str) and given.strip().lower() in _BOOLEAN_WORDS:
        # "must be true or false, not true" would contradict itself: the quotes are the problem.
        # No quote marks around the value even so: in a reason they would read as part of it.
        return f"must be a JSON boolean, true or false without quotes, not the text {sent(given)}"
    if kind in _EXPECTED:
        wanted = " or ".join(dict.fromkeys(expected or [_EXPECTED[kind]]))
        return f"must be {wanted}, not {sent(given)}"
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        return f"must be {words} {sent(ctx.get(bound))}, not {sent(given)}"
    if kind in ("literal_error", "enum"):
        return f"must be {_one_of(ctx.get('expected'), ' or ')}, not {sent(given)}"
    if kind.startswith("date_"):  # the text is YYYY-MM-DD (types.Date): no such day
        return f"{sent(given)} is not a real date"
    if kind.startswith("datetime_"):
        return f"{sent(given)} is not a real date and time"
    if kind == "too_long":
        return f"may hold at most {_items(ctx.get('max_length'))}, not {_count(given)}"
    if kind == "too_short":
        return f"must hold at least {_items(ctx.get('min_length'))}, not {_count(given)}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long, not {_count(given)}"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} characters long"
    if kind == "extra_forbidden":
        return "is not a field of this message"
    if kind == "union_tag_invalid":
        tags = _one_of(ctx.get("expected_tags"), ", ")
        return f"type {sent(ctx.get('tag'))} is not one this topic carries: {tags}"
    if kind == "union_tag_not_found":
        return "the message has no type"
    if kind == "int_parsing_size":
        return f"{sent(given)} is too large a number"
    if kind == "finite_number":
        return f"must be a finite number, not {sent(given)}"
    if kind == "json_invalid":  # one of lotline's own messages, read by pydantic's parser
        return f"not JSON: {ctx.get('error')}"
    # A type lotline's fields do not raise today: pydantic's words, in the reasons' style.
    text = error["msg"].replace("Input should be", "must be").replace("Input should", "must")
    return _QUOTED.sub(r"\1", text)


def dead_letter_reason(raw: dict[str, Any], errors: Sequence[ErrorDetails]) -> str:
    """The dead letter's `error` header for a document failing its schema: its first problems'
    reasons, the paths and words its refusal has. `raw`: the document (or only its `type`)."""
    found = problems(raw, errors[:_HEADER_ERRORS])
    return "; ".join(p.reason for p in found[:_HEADER_PROBLEMS])


# --- internals --------------------------------------------------------------------------------


def _one_of(quoted: object, last: str) -> str:
    """pydantic's "'sale' or 'vendor_return'" as a reason writes values: "sale or vendor_return"."""
    values = _QUOTED.findall(str(quoted or ""))
    if len(values) < 2:
        return listed(values) or str(quoted or "")
    return f"{', '.join(values[:-1])}{last}{values[-1]}"


def _items(number: object) -> str:
    return "1 item" if number == 1 else f"{number} items"


def _count(value: object) -> str:
    """How long a list or text sent is, or the value itself when it has no length."""
    return str(len(value)) if isinstance(value, str | list | tuple | dict) else sent(value)


def _union_kinds(raw: dict[str, Any], errors: Sequence[ErrorDetails]) -> dict[str, list[str]]:
    """By field path, what the branches of a union took when the value fitted none (`serials`:
    text in quotes or a list), so the reason names them all, not the first branch's."""
    kinds: dict[str, list[str]] = {}
    for error in errors:
        loc = error["loc"]
        if loc and _is_branch(loc[-1]) and error["type"] in _EXPECTED:
            path = _path(_field_loc(raw, loc))
            kinds.setdefault(path, []).append(_EXPECTED[error["type"]])
    return kinds


def _preferred(errors: Sequence[ErrorDetails]) -> list[ErrorDetails]:
    """Of a union's branches (`serials`: a string or a list of strings), keep the errors of the
    branch the value was meant for: a list's element too long, not "should be a string"."""
    groups: dict[str, list[ErrorDetails]] = {}
    for error in errors:
        loc = error["loc"]
        branch = next((i for i, p in enumerate(loc) if _is_branch(p)), None)
        if branch is not None:
            groups.setdefault(_path(loc[:branch]), []).append(error)
    dropped: set[int] = set()
    for group in groups.values():
        if any(e["type"] not in _TYPE_ERRORS for e in group):
            dropped.update(id(e) for e in group if e["type"] in _TYPE_ERRORS)
    return [e for e in errors if id(e) not in dropped]


def _problems(
    raw: dict[str, Any], error: ErrorDetails, line_no: object, kinds: dict[str, list[str]]
) -> list[Problem]:
    loc = _field_loc(raw, error["loc"])
    message = error_reason(error, kinds.get(_path(loc)))
    if not loc:
        duplicate = _DUPLICATE_LINE.search(message)
        if duplicate is not None:
            return _duplicate_lines(raw, int(duplicate.group(1)), message)
        return [Problem("message", FALLBACK, safe_text(message))]
    path = _path(loc)
    names = [p for p in loc if isinstance(p, str)]
    code = _CODES.get(names[-1], FALLBACK) if names else FALLBACK
    # A missing field has no value as sent: also one left out that a validator checked by its
    # default (a quarantine naming neither lot), whose input is that default, not "null".
    sent = error["type"] != "missing" and _present(raw, loc)
    offending = _render(error.get("input")) if sent else None
    context_line: object = line_no
    lic: object = None
    if len(loc) >= 2 and loc[0] == "lines" and isinstance(loc[1], int):
        line = _line(raw, loc[1])
        context_line, lic = line.get("line_no"), line.get("lic")
    return [
        Problem(
            path,
            code,
            safe_text(f"{path}: {message}"),
            offending,
            _valid_line_no(context_line),
            _valid_identifier(lic),
        )
    ]


def _duplicate_lines(raw: dict[str, Any], number: int, message: str) -> list[Problem]:
    lines = raw.get("lines")
    seen = 0
    found = []
    for index, line in enumerate(lines if isinstance(lines, list) else ()):
        if isinstance(line, dict) and _valid_line_no(line.get("line_no")) == number:
            seen += 1
            if seen > 1:
                path = f"lines[{index}].line_no"
                found.append(
                    Problem(
                        path,
                        ReasonCode.INVALID_QUANTITY,
                        safe_text(f"{path}: {message}"),
                        str(number),
                        number,
                        _valid_identifier(line.get("lic")),
                    )
                )
    return found or [
        Problem("lines", ReasonCode.INVALID_QUANTITY, safe_text(message), str(number), number)
    ]


def _field_loc(raw: dict[str, Any], loc: tuple[int | str, ...]) -> list[int | str]:
    """The location in the document: without the discriminator's tag or a union's branch."""
    parts = list(loc)
    if parts and parts[0] == raw.get("type"):
        parts = parts[1:]
    return [p for p in parts if not _is_branch(p)]


def _is_branch(part: int | str) -> bool:
    return isinstance(part, str) and _BRANCH.search(part) is not None


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _is_branch(part):
            text += f".{part}" if text else part
    return text or "message"


def _present(raw: dict[str, Any], loc: Sequence[int | str]) -> bool:
    """Whether the document holds a value (null included) at `loc`."""
    value: object = raw
    for part in loc:
        if isinstance(value, dict) and isinstance(part, str):
            if part not in value:
                return False
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return False
    return True


def _line(raw: dict[str, Any], index: int) -> dict[str, Any]:
    lines = raw.get("lines")
    line = lines[index] if isinstance(lines, list) and 0 <= index < len(lines) else None
    return cast("dict[str, Any]", line) if isinstance(line, dict) else {}


def _valid_line_no(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return _LINE_NO.validate_python(value)
    except ValueError:
        return None


def _valid_identifier(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return normalize_identifier(value)
    except ValueError:
        return None


def _render(value: object) -> str | None:
    """The offending value as upstream sent it (JSON-ish), escaped and clipped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, int | Decimal | float):
        return safe_text(str(value))  # a 5,000-digit number is clipped like any other text
    return safe_text(_short(value, _MAX_RENDER))


def _short(value: object, budget: int, depth: int = 0) -> str:
    """A compact rendering of a container that stops at about `budget` characters (a list of a
    million serials is not rendered whole to show its first ones) and `_MAX_DEPTH` levels (a
    value nested as deep as the JSON parser allows, parsed a few frames up the stack, would
    otherwise exhaust it here and leave the document unanswered)."""
    if isinstance(value, dict | list | tuple) and depth >= _MAX_DEPTH:
        return "{…}" if isinstance(value, dict) else "[…]"
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            if budget <= 0:
                parts.append("…")
                break
            text = f"{key}: {_short(item, budget, depth + 1)}"
            parts.append(text)
            budget -= len(text)
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list | tuple):
        parts = []
        for item in value:
            if budget <= 0:
                parts.append(f"… ({len(value)} items)")
                break
            text = _short(item, budget, depth + 1)
            parts.append(text)
            budget -= len(text)
        return "[" + ", ".join(parts) + "]"
    text = _render(value) or ""
    return text if len(text) <= max(budget, 20) else text[: max(budget, 20)] + "…"
