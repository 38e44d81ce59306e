"""The operations dashboard: one server-rendered page of `OpsSummary`.

No script, no framework, nothing fetched from elsewhere (the machine may have no internet): a
meta refresh reloads it every few seconds. Every value is HTML-escaped here, whatever was
already made safe upstream: identifiers, reasons and dead-letter bytes come from anyone who
can write to a topic.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from services.ledger.schemas import (
    DeadLetterOut,
    DocumentOut,
    LedgerHealth,
    MfrLotStock,
    OpsSummary,
    RefusalOut,
    WarningOut,
    plain,
)

Cell = str | int | float | Decimal | date | datetime | None

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ddd;padding:2px 6px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.num{text-align:right}
code,pre{font:12px monospace;white-space:pre-wrap;word-break:break-all;max-width:60em;margin:0}
.muted{color:#777}.warn{color:#a40}
"""


def unavailable(reason: str, *, address: str | None = None, refresh_seconds: int = 5) -> str:
    """The page in place of the dashboard while the database does not answer: where the ledger
    connects (`address`, never a password; None: not known) and what failed (`reason`, as
    `api.failure` says it), reloading every `refresh_seconds` so it shows the dashboard again
    once the database answers."""
    at = "" if address is None else f" at <code>{_e(address)}</code>"
    return "".join(
        [
            "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
            f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">',
            "<title>lotline operations: database unavailable</title>",
            f"<style>{_STYLE}</style></head><body>",
            "<h1>lotline operations</h1>",
            f"<p><strong>The ledger's database does not answer</strong>{at}: {_e(reason)}.</p>",
            f'<p class="muted">This page reloads every {int(refresh_seconds)} s. The services'
            " retry their batches meanwhile: nothing they read is lost. Health:"
            ' <a href="/healthz">/healthz</a>.</p>',
            "</body></html>",
        ]
    )


def render(
    summary: OpsSummary,
    *,
    refresh_seconds: int = 5,
    as_of: date | None = None,
    limit: int | None = None,
) -> str:
    """The whole page. `as_of` and `limit` go into the link to the page's JSON (None: left
    out): `as_of` only when the request named one, so a page of today links to today's data
    whenever it is followed, and one of a day asked keeps it (a reload keeps the whole URL)."""
    json_url = "/ops/summary" + _query({"limit": limit, "as_of": as_of})
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">',
        "<title>lotline operations</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>lotline operations</h1>",
        f'<p class="muted">{_as_of(summary)}; at {_e(summary.generated_at)}; counts over the '
        f"last {_e(summary.window_hours)} h; refreshes every {int(refresh_seconds)} s. "
        f'<a href="{_e(json_url)}">JSON</a> · <a href="/docs">API</a></p>',
        *_ledger(summary.ledger),
        "<h2>Documents by latest answer</h2>",
        _table(
            ("kind", "status", "documents"),
            [(c.kind, c.status, c.documents) for c in summary.documents_by_status],
        ),
        "<h2>Latest answered documents</h2>",
        _warned_count(summary),
        _documents(summary.latest_documents),
        "<h2>Refusals by reason code</h2>",
        _superseded_count(summary),
        _table(
            ("reason code", "refusals", "problems"),
            [(r.reason_code, r.refusals, r.problems) for r in summary.refusals_by_reason],
        ),
        "<h2>Latest refusals</h2>",
        _table(
            (
                "when",
                "type",
                "document",
                "LIC",
                "line",
                "reason code",
                "offending",
                "reason",
                "since",
            ),
            [
                (
                    r.occurred_at,
                    r.type,
                    r.document,
                    r.lic,
                    r.line_no,
                    r.reason_code,
                    r.offending,
                    r.reason,
                    _since(r),
                )
                for r in summary.latest_refusals
            ],
        ),
        f"<h2>Dead letters ({_e(summary.dead_letters_in_window)} in the window)</h2>",
        _dead_letters(summary.latest_dead_letters),
        "</body></html>",
    ]
    return "\n".join(parts)


def _documents(documents: Sequence[DocumentOut]) -> str:
    """The latest answered documents, each with its warnings (`_warnings`)."""
    rows = [
        "<tr>"
        + "".join(
            f"<td>{_e(c)}</td>"
            for c in (d.occurred_at, d.kind, d.document, d.status, d.reason_code, d.lic)
        )
        + f"<td>{_e(_adjusted(d))}</td><td>{_warnings(d.warnings)}</td></tr>"
        for d in documents
    ]
    head = ("when", "kind", "document", "status", "reason code", "LIC", "adjusted", "warnings")
    return _wrap(head, rows)


def _warnings(warnings: Sequence[WarningOut]) -> str:
    """A short cell: each code once (with how many times, past one), its messages shown on
    hover, and all of them, one a line, below on a click."""
    by_code: dict[str, list[str]] = {}
    for w in warnings:
        by_code.setdefault(w.code, []).append(w.message)
    codes = ", ".join(
        f'<span class=warn title="{_e(chr(10).join(messages))}">{_e(code)}'
        f"{f' ×{len(messages)}' if len(messages) > 1 else ''}</span>"
        for code, messages in by_code.items()
    )
    if not codes:
        return ""
    listed = "<br>".join(f"{_e(w.code)}: {_e(w.message)}" for w in warnings)
    return f"{codes}<details><summary>messages</summary>{listed}</details>"


def _warned_count(summary: OpsSummary) -> str:
    n = summary.documents_with_warnings_in_window
    if not n:
        return ""
    s = "" if n == 1 else "s"
    return f'<p class="warn">{_e(n)} document{s} posted with warnings in the window</p>'


def _adjusted(d: DocumentOut) -> str | None:
    """An adjustment's kind and signed quantity (`count -3`); nothing for other documents."""
    if d.adjustment_kind is None:
        return None
    return f"{d.adjustment_kind} {'' if d.quantity is None else plain(d.quantity)}".strip()


def _since(r: RefusalOut) -> str:
    """What became of a refused document: open, or superseded by its posting (a corrected
    resend of the same adjustment, say), when it is history rather than a problem."""
    if r.superseded_by is None:
        return "open"
    when = "" if r.superseded_at is None else f" at {r.superseded_at.isoformat(timespec='seconds')}"
    return f"superseded by {r.superseded_by}{when}"


def _superseded_count(summary: OpsSummary) -> str:
    n = summary.superseded_refusals_in_window
    if not n:
        return ""
    return (
        '<p class="muted">Refusals in the window since superseded by a later posting of their'
        f" document (not open problems): {_e(n)}</p>"
    )


def _as_of(summary: OpsSummary) -> str:
    """The day expiry and the day's usage are read against, and today's when it is another."""
    day, today = summary.ledger.as_of, summary.generated_at.astimezone(UTC).date()
    other = "" if day == today else f"; <span class=warn>today is {_e(today)}</span>"
    return f"as of <strong>{_e(day)}</strong> (UTC{other})"


def _query(params: Mapping[str, Cell]) -> str:
    """`?name=value&…` of the parameters given (None: left out), or nothing."""
    given = {k: str(v) for k, v in params.items() if v is not None}
    return f"?{urlencode(given)}" if given else ""


def _ledger(health: LedgerHealth) -> list[str]:
    last = health.last_event
    if last is None:
        event = '<span class="muted">no event recorded yet</span>'
    else:
        event = (
            f"{_e(last.event_type)} {_e(last.message_id)} (LIC {_e(last.lic)}) occurred "
            f"{_e(last.occurred_at)}, recorded {_e(last.recorded_at)}: lag "
            f"{_e(round(last.lag_seconds, 1))} s, {_e(round(last.idle_seconds, 1))} s ago"
        )
    return [
        "<h2>Ledger</h2>",
        f"<p>Last event: {event}</p>",
        f"<p>Usage records on {_e(health.as_of)} (UTC): {_e(health.usage_records_today)} "
        f"(cost {_e(health.usage_cost_today)})</p>",
        *_expired(health),
        *_quarantined(health),
        *_expiring(health),
        *_unmatched_po(health),
    ]


# Both expiry tables: one row per manufacturer lot of an item at an office.
_STOCK_HEAD = ("LIC", "mfr lot", "office", "on hand", "allocated", "value", "inventory lots")


def _stock_cells(x: MfrLotStock) -> tuple[Cell, ...]:
    lots = ", ".join(x.lot_ids)
    return (x.lic, x.mfr_lot, x.office, x.current_qty, x.allocated_qty, x.current_value, lots)


def _expired(health: LedgerHealth) -> list[str]:
    """Stock past its expiry still on the shelf: to quarantine or write off (a `loss`)."""
    title = f"Expired stock on hand (before {_e(health.as_of)}, UTC)"
    if not health.expired_lots:
        return [f"<p>{title}: none</p>"]
    return [
        f"<p class=warn><b>{title}: {_e(health.expired_lots)} manufacturer lots, value "
        f"{_e(health.expired_value)}</b>{_shown(health.expired, health.expired_lots)}</p>",
        _table(
            ("expired", "days over", *_STOCK_HEAD),
            [(x.expires_on, x.days_expired, *_stock_cells(x)) for x in health.expired],
        ),
    ]


def _quarantined(health: LedgerHealth) -> list[str]:
    """Stock held by a QA or recall quarantine: on hand, but no sale takes it until released."""
    title = "Stock in quarantine"
    if not health.quarantined_lots:
        return [f"<p>{title}: none</p>"]
    return [
        f"<p class=warn><b>{title}: {_e(health.quarantined_lots)} manufacturer lots, value "
        f"{_e(health.quarantined_value)}</b>"
        f"{_shown(health.quarantined, health.quarantined_lots)}</p>",
        _table(
            ("quarantine", "reason", *_STOCK_HEAD),
            [
                (
                    ", ".join(x.quarantine_ids),
                    x.reason,
                    x.lic,
                    x.mfr_lot or "",
                    x.office,
                    x.current_qty,
                    x.allocated_qty,
                    x.current_value,
                    ", ".join(x.lot_ids),
                )
                for x in health.quarantined
            ],
        ),
    ]


def _expiring(health: LedgerHealth) -> list[str]:
    # The window of the last dates ends on the last date there is (9999-12-31).
    last = health.as_of + timedelta(days=min(health.expiring_days, (date.max - health.as_of).days))
    return [
        f"<p>Manufacturer lots with stock expiring within {_e(health.expiring_days)} days "
        f"({_e(health.as_of)} to {_e(last)}): {_e(health.expiring_lots)}, value "
        f"{_e(health.expiring_value)}{_shown(health.expiring, health.expiring_lots)}</p>",
        _table(
            ("expires", "days left", *_STOCK_HEAD),
            [(x.expires_on, x.days_left, *_stock_cells(x)) for x in health.expiring],
        ),
    ]


def _unmatched_po(health: LedgerHealth) -> list[str]:
    """PO lines no receipt named: a PO awaiting its goods, or a misspelled reference (`PO-10O`)
    that would otherwise price a later receipt naming it without anyone seeing it. The longest
    waiting first: a typo only gets older."""
    title = "PO lines pricing no lot"
    total = health.unmatched_po_lines
    if not total:
        return [f"<p>{title}: none</p>"]
    more = total - len(health.unmatched_po)
    return [
        f"<p><b>{title}: {_e(total)}</b> (no receipt named the PO for the LIC: a receipt"
        " still to come, or a misspelled PO)"
        f"{f'; {_e(more)} more not shown' if more > 0 else ''}</p>",
        _table(
            ("PO", "LIC", "ordered", "purchased", "actual unit cost", "closed on", "last update"),
            [
                (
                    x.po,
                    x.lic,
                    x.ordered_qty,
                    x.purchased_qty,
                    x.act_unit_cost,
                    x.closed_on if x.closed else "open",
                    x.updated_at,
                )
                for x in health.unmatched_po
            ],
        ),
    ]


def _shown(rows: Sequence[object], total: int) -> str:
    return f"; the first {len(rows)} shown" if len(rows) < total else ""


def _dead_letters(letters: Sequence[DeadLetterOut]) -> str:
    rows = []
    for d in letters:
        headers = "\n".join(f"{k}: {v}" for k, v in sorted(d.headers.items()))
        rows.append(
            "<tr>"
            f"<td>{_e(d.dead_at)}<br><span class=muted>DLQ partition {_e(d.dlq_partition)},"
            f" offset {_e(d.dlq_offset)}</span></td>"
            f"<td class=warn>{_e(d.error)}</td>"
            f"<td>{_e(d.source_topic)} [{_e(d.source_partition)}] @{_e(d.source_offset)}</td>"
            f"<td>{_e(d.consumer)}</td><td>{_e(d.answered)}</td>"
            f"<td>{_e(d.key)}</td><td class=num>{_e(d.payload_bytes)}</td>"
            f"<td><pre>{_e(d.preview)}</pre></td>"
            f"<td><details><summary>{len(d.headers)}</summary><pre>{_e(headers)}</pre>"
            "</details></td></tr>"
        )
    head = (
        "when",
        "error",
        "source",
        "consumer",
        "answered",
        "key",
        "bytes",
        "preview",
        "headers",
    )
    return _wrap(head, rows)


def _table(head: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    body = [
        "<tr>"
        + "".join(
            f"<td class=num>{_e(c)}</td>" if _numeric(c) else f"<td>{_e(c)}</td>" for c in row
        )
        + "</tr>"
        for row in rows
    ]
    return _wrap(head, body)


def _wrap(head: Sequence[str], rows: Sequence[str]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _numeric(value: Cell) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _e(value: Cell) -> str:
    """A value as escaped HTML text (None: empty); times to the second."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.isoformat(timespec="seconds")
    elif isinstance(value, Decimal):
        value = plain(value)
    return html.escape(str(value), quote=True)
