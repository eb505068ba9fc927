"""One export file + its mapping -> contract rows (orders, order_items, returns, shipments, buyers)
and refused rows, each pointing at the export's row.

Every data row of the export is either converted or refused with a rule and a reason
(IMPORT_RULES); `convert_export` asserts exported = converted + refused for every sheet. An order
is converted whole or not at all: when one row of a multi-row order is refused, its other rows are
refused too (rule `with_refused_row`), so no order loads with a line missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from dagster_project.lib.platforms import read, values
from dagster_project.lib.platforms.mapping import FIELD_KINDS, Mapping, Report
from dagster_project.lib.platforms.values import Refused

IMPORT_RULES = {
    "bad_export_value": "a cell that cannot become a contract value: words in an amount, an id Excel "
                        "turned into a number or scientific notation, a date in no known format",
    "missing_required": "a field the contract requires is empty (order id, order time, amount, …)",
    "unmapped_status": "a status the mapping's status_map does not list",
    "unconverted_currency": "an amount in another currency than yuan with no rate given (--rates)",
    "out_of_range": "a number outside the contract's range (a line quantity below 1)",
    "inconsistent_order": "an order-level value repeated on every row of an order differs between rows",
    "duplicate_key": "the order (or return) appears again in the same export",
    "with_refused_row": "another row of the same order was refused, so the order is left out whole",
    "bad_encoding": "bytes that are not valid text in the file's encoding",
}
ORDER_AMOUNTS = ("items_amount", "discount_amount", "shipping_fee", "pay_amount", "refund_amount")
TS_FIELDS = ("order_ts", "paid_ts", "shipped_at", "delivered_at", "requested_at", "approved_at",
             "completed_at", "registered_at")
SOURCE_OF_KIND = {"orders": "orders", "items": "order_items", "returns": "returns", "customers": "users"}


class ExportError(ValueError):
    """The export cannot be converted at all (unreadable, no recognised report, a column the
    mapping requires is missing); the message names the file and what to do."""


@dataclass
class Refusal:
    source: str
    row: int
    raw_text: str
    rule: str
    column: str | None
    reason: str


@dataclass
class SheetResult:
    file_name: str       # the export's name, with `!<sheet>` for a workbook's sheet
    report: str
    kind: str
    encoding: str
    header_row: int
    rows_exported: int = 0
    rows_converted: int = 0
    rows_quarantined: int = 0


@dataclass
class Conversion:
    export_name: str
    platform: str
    sheets: list[SheetResult] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)
    order_items: list[dict] = field(default_factory=list)
    returns: list[dict] = field(default_factory=list)
    shipments: list[dict] = field(default_factory=list)
    buyers: list[dict] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_exported(self) -> int:
        return sum(s.rows_exported for s in self.sheets)

    @property
    def rows_converted(self) -> int:
        return sum(s.rows_converted for s in self.sheets)

    @property
    def rows_quarantined(self) -> int:
        return sum(s.rows_quarantined for s in self.sheets)

    @property
    def as_of(self) -> str | None:
        """The latest time the export knows of: a newer export of the same orders wins by it."""
        latest = None
        for table in (self.orders, self.order_items, self.returns, self.shipments, self.buyers):
            for r in table:
                for f in TS_FIELDS:
                    ts = r.get(f)
                    if ts and (latest is None or values.timestamp_key(ts) > latest):
                        latest = values.timestamp_key(ts)
        return latest.isoformat(sep=" ") if latest else None


class _RowRefused(Exception):
    def __init__(self, rule: str, column: str | None, reason: str):
        super().__init__(reason)
        self.rule, self.column, self.reason = rule, column, reason


# ---------------------------------------------------------------------------------------------
def _find_report(mapping: Mapping, sheet: read.Sheet) -> tuple[Report, int] | None:
    for report in mapping.reports:
        if report.sheet is not None and report.sheet != sheet.name:
            continue
        for i, (_, cells) in enumerate(sheet.rows[:report.header_search_rows]):
            names = {read.header_name(c) for c in cells}
            if all(d in names for d in report.detect):
                return report, i
    return None


class _Row:
    """One data row with the mapping's columns located. Cleaned text values are memoised per
    export (`cache`): order-level values repeat on every line, dates and statuses repeat a lot."""

    def __init__(self, number: int, cells: list, index: dict[str, int], report: Report, cache: dict):
        self.number, self.cells, self.index, self.report, self.cache = number, cells, index, report, cache

    def cell(self, column: str):
        i = self.index.get(column)
        if i is None or i >= len(self.cells):
            return None
        v = self.cells[i]
        return None if isinstance(v, str) and v == "" else v

    def _clean(self, kind: str, column: str, v):
        if type(v) is str:
            key = (kind, v)
            hit = self.cache.get(key)
            if hit is None:
                try:
                    hit = (True, self._clean_value(kind, v))
                except Refused as exc:
                    hit = (False, str(exc))
                self.cache[key] = hit
            if hit[0]:
                return hit[1]
            raise _RowRefused("bad_export_value", column, f"column {column}: {hit[1]}")
        try:
            return self._clean_value(kind, v)
        except Refused as exc:
            raise _RowRefused("bad_export_value", column, f"column {column}: {exc}") from None

    def _clean_value(self, kind: str, v):
        if kind == "id":
            return values.ident(v)
        if kind == "ts":
            return values.timestamp(v, self.report.timestamp_formats)
        if kind == "amount":
            return values.amount(v)
        if kind == "int":
            return values.integer(v)
        return values.text(v)

    def get(self, fname: str):
        spec = self.report.fields.get(fname)
        if spec is None:
            return None
        kind = FIELD_KINDS[fname]
        if spec.op == "const":
            return self._clean(kind, fname, spec.value)
        if spec.op == "join":
            parts = [values.text(self.cell(c)) or "" for c in spec.columns]
            return " | ".join(parts) if any(parts) else None
        cleaned = [self._clean(kind, c, self.cell(c)) for c in spec.columns]
        if spec.op == "column":
            return cleaned[0]
        if spec.op == "first_of":
            return next((v for v in cleaned if v is not None), None)
        if all(v is None for v in cleaned):
            return None
        c = [values.cents(v) for v in cleaned]
        total = sum(c) if spec.op == "sum" else c[0] - sum(c[1:])
        if total < 0:
            raise _RowRefused("bad_export_value", spec.columns[0],
                              f"{fname} = {' - '.join(spec.columns)} is negative ({values.from_cents(total)})")
        return values.from_cents(total)

    def required(self, fname: str):
        v = self.get(fname)
        if v is None:
            spec = self.report.fields[fname]
            cols = ", ".join(spec.columns) or fname
            raise _RowRefused("missing_required", cols, f"{fname} (column {cols}) is empty")
        return v

    def raw(self) -> str:
        return read.raw_text(self.cells)


def _status(report: Report, raw: str | None, refund: str | None, column: str) -> str:
    if raw is None:
        raise _RowRefused("missing_required", column, f"status (column {column}) is empty")
    value = raw
    for prefix in report.status_strip:
        if value.startswith(prefix):
            value = value[len(prefix):].strip()
    rule = report.status_map.get(value)
    if rule is None:
        rule = next((r for pattern, r in report.status_map.items() if _wildcard(pattern, value)), None)
    if rule is None:
        raise _RowRefused("unmapped_status", column,
                          f"status {values.shown(raw)} is not in the mapping's status_map")
    if rule.when_refunded and refund is not None and values.cents(refund) > 0:
        return rule.when_refunded
    return rule.status


def _wildcard(pattern: str, value: str) -> bool:
    if "*" not in pattern:
        return False
    regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
    return re.match(regex, value) is not None


# ---------------------------------------------------------------------------------------------
class _Converter:
    def __init__(self, mapping: Mapping, export_name: str, rates: dict[str, Decimal]):
        self.mapping, self.export_name, self.rates = mapping, export_name, rates
        self.out = Conversion(export_name, mapping.platform)
        self.seen_orders: dict[str, int] = {}
        self.seen_returns: dict[str, int] = {}

    # -- helpers
    def _currency(self, row: _Row) -> Decimal | None:
        """Rate to yuan for this row's amounts (None: already yuan)."""
        cur = (row.get("currency") if "currency" in row.report.fields else None) or self.mapping.currency
        cur = cur.strip().upper()
        if cur in ("CNY", "RMB", "人民币"):
            return None
        rate = self.rates.get(cur)
        if rate is None:
            col = ", ".join(row.report.fields["currency"].columns) if "currency" in row.report.fields else None
            raise _RowRefused("unconverted_currency", col,
                              f"amounts are in {cur}, not yuan; give a rate table (--rates) to convert them")
        return rate

    @staticmethod
    def _convert_amount(a: str | None, rate: Decimal | None) -> str | None:
        if a is None or rate is None:
            return a
        return str((Decimal(a) * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))

    def _user(self, row: _Row, order_id: str) -> tuple[str, str | None, bool]:
        ns = self.mapping.user_namespace
        phone = row.get("phone")
        digits = values.phone_digits(phone)
        ph = values.phone_hash(phone)
        key = row.get("buyer_key")
        if key is not None:
            return values.buyer_user_id(ns, key), ph, True
        if digits is not None:
            return values.buyer_user_id(ns, f"phone:{digits}"), ph, True
        return values.buyer_user_id(ns, f"order:{order_id}"), None, False

    def _channel(self, row: _Row) -> str:
        if self.mapping.channel_column:
            v = values.text(row.cell(self.mapping.channel_column))
            if v in self.mapping.channel_values:
                return self.mapping.channel_values[v]
        return self.mapping.channel

    def _refuse(self, source: str, row: _Row, rule: str, column: str | None, reason: str, sheet: SheetResult):
        self.out.refusals.append(Refusal(source, row.number, row.raw(), rule, column, reason))
        sheet.rows_quarantined += 1

    # -- orders
    def _order_fields(self, row: _Row) -> dict:
        f = {k: row.get(k) for k in ("paid_ts", "items_amount", "discount_amount", "shipping_fee",
                                     "refund_amount", "coupon_id", "campaign_id", "province", "city",
                                     "address", "shipped_at", "delivered_at", "carrier", "tracking_no")}
        f["order_ts"] = row.required("order_ts")
        f["pay_amount"] = row.required("pay_amount")
        f["_status_raw"] = row.get("status")
        f["_rate"] = self._currency(row)
        f["_channel"] = self._channel(row)
        return f

    def _emit_order(self, order_id: str, first: _Row, f: dict, lines: list[dict], sheet: SheetResult):
        report = first.report
        rate = f["_rate"]
        for k in ORDER_AMOUNTS:
            f[k] = self._convert_amount(f[k], rate)
        for line in lines:
            for k in ("unit_price", "discount_amount"):
                line[k] = self._convert_amount(line[k], rate)
        if f["items_amount"] is None:
            if not lines:
                raise _RowRefused("missing_required", None, "items_amount is empty")
            f["items_amount"] = values.from_cents(sum(values.cents(li["unit_price"]) * int(li["quantity"])
                                                      for li in lines))
        status_col = ", ".join(report.status_columns)
        status = _status(report, f["_status_raw"], f["refund_amount"], status_col)
        if f["discount_amount"] is None:
            d = values.cents(f["items_amount"]) + values.cents(f["shipping_fee"]) - values.cents(f["pay_amount"])
            f["discount_amount"] = values.from_cents(d) if d >= 0 else None
        province, city = f["province"], f["city"]
        if province is None and f["address"] is not None:
            province, city = values.split_address(f["address"])
        user_id, ph, identified = self._user(first, order_id)
        out = self.out
        out.orders.append({
            "order_id": order_id, "user_id": user_id, "channel": f["_channel"], "order_ts": f["order_ts"],
            "paid_ts": f["paid_ts"], "status": status, "items_amount": f["items_amount"],
            "discount_amount": f["discount_amount"], "shipping_fee": f["shipping_fee"],
            "pay_amount": f["pay_amount"], "coupon_id": f["coupon_id"], "campaign_id": f["campaign_id"],
            "province": province, "city": city, "_origin_row": first.number,
        })
        for i, line in enumerate(lines, start=1):
            out.order_items.append({
                "order_id": order_id, "line_no": line["line_no"] or str(i), "sku_id": line["sku_id"],
                "quantity": line["quantity"], "unit_price": line["unit_price"],
                "discount_amount": line["discount_amount"], "_origin_row": line["_origin_row"],
            })
        out.buyers.append({
            "user_id": user_id, "first_order_ts": f["order_ts"], "channel": f["_channel"], "phone_hash": ph,
            "province": province, "city": city, "identified": identified, "_origin_row": first.number,
        })
        if f["shipped_at"] is not None:
            out.shipments.append({
                "shipment_id": f"{order_id}:{f['tracking_no']}" if f["tracking_no"] else order_id,
                "order_id": order_id, "carrier": f["carrier"], "warehouse_id": None,
                "shipped_at": f["shipped_at"], "delivered_at": f["delivered_at"], "province": province,
                "_origin_row": first.number,
            })
        if report.derive_returns and f["refund_amount"] and values.cents(f["refund_amount"]) > 0:
            # the export names no refund time: the order's latest known time stands in for it
            times = [t for t in (f["delivered_at"], f["shipped_at"], f["paid_ts"], f["order_ts"]) if t]
            when = max(times, key=values.timestamp_key)
            out.returns.append({
                "return_id": f"{order_id}:refund", "order_id": order_id, "sku_id": None, "quantity": None,
                "amount": f["refund_amount"], "reason": None, "requested_at": when, "approved_at": when,
                "completed_at": when, "status": "completed", "_origin_row": first.number,
            })

    def _line(self, row: _Row) -> dict:
        quantity = row.required("quantity")
        if int(quantity) < 1:
            cols = ", ".join(row.report.fields["quantity"].columns)
            raise _RowRefused("out_of_range", cols, f"quantity (column {cols}) is {quantity}, below 1")
        return {"sku_id": row.required("sku_id"), "quantity": quantity,
                "unit_price": row.required("unit_price"), "discount_amount": row.get("line_discount"),
                "line_no": row.get("line_no"), "_origin_row": row.number}

    def orders_by_order(self, rows: list[_Row], sheet: SheetResult):
        for row in rows:
            try:
                order_id = row.required("order_id")
                if order_id in self.seen_orders:
                    raise _RowRefused("duplicate_key", "order_id",
                                      f"order {order_id} already appears at row {self.seen_orders[order_id]}")
                f = self._order_fields(row)
                self._emit_order(order_id, row, f, [], sheet)
            except _RowRefused as r:
                self._refuse("orders", row, r.rule, r.column, r.reason, sheet)
                continue
            self.seen_orders[order_id] = row.number
            sheet.rows_converted += 1

    def _groups(self, rows: list[_Row], source: str, sheet: SheetResult) -> dict[str, list[_Row]]:
        groups: dict[str, list[_Row]] = {}
        for row in rows:
            try:
                order_id = row.required("order_id")
            except _RowRefused as r:
                self._refuse(source, row, r.rule, r.column, r.reason, sheet)
                continue
            groups.setdefault(order_id, []).append(row)
        return groups

    def _refuse_group(self, source: str, group: list[_Row], culprit: _Row, r: _RowRefused, sheet: SheetResult):
        for row in group:
            if row is culprit:
                self._refuse(source, row, r.rule, r.column, r.reason, sheet)
            else:
                self._refuse(source, row, "with_refused_row", r.column,
                             f"row {culprit.number} of the same order was refused ({r.reason})", sheet)

    @staticmethod
    def _detect(groups: dict[str, list[_Row]], report: Report) -> dict[str, str]:
        """Per order amount: repeated (every line carries the order's amount) unless, in some
        multi-line order of the export, its lines differ: then it is per line, and summed."""
        modes = {}
        for k in ORDER_AMOUNTS:
            if k not in report.fields:
                continue
            cols = report.fields[k].columns
            differs = any(len(group) > 1 and any(len({str(r.cell(c)) for r in group}) > 1 for c in cols)
                          for group in groups.values())
            modes[k] = "per_line" if differs else "repeated"
        return modes

    def orders_by_line(self, rows: list[_Row], sheet: SheetResult, report: Report):
        groups = self._groups(rows, "orders", sheet)
        mode = report.order_amounts
        modes = {k: mode for k in ORDER_AMOUNTS}
        if mode == "detect":
            modes = self._detect(groups, report)
            self.out.notes.append(f"{sheet.file_name}: " + ", ".join(
                f"{k} {m.replace('_', ' ')}" for k, m in modes.items()) + " (detected from multi-line orders)")
        for order_id, group in groups.items():
            culprit = group[0]
            try:
                if order_id in self.seen_orders:
                    raise _RowRefused("duplicate_key", "order_id",
                                      f"order {order_id} already appears at row {self.seen_orders[order_id]}")
                f = self._order_fields(group[0])
                lines = []
                for row in group:
                    culprit = row
                    lines.append(self._line(row))
                    if row is group[0]:
                        continue
                    if mode == "first_row":
                        continue
                    for k in ORDER_AMOUNTS:
                        if modes.get(k) == "repeated":
                            v = row.get(k)
                            if v != f[k]:
                                cols = ", ".join(report.fields[k].columns)
                                raise _RowRefused(
                                    "inconsistent_order", cols,
                                    f"{k} (column {cols}) is {v} here but {f[k]} at row {group[0].number} of "
                                    f"the same order: an order-level amount must repeat unchanged")
                        elif modes.get(k) == "per_line":
                            v = row.get(k)
                            if v is not None:
                                f[k] = values.from_cents(values.cents(f[k]) + values.cents(v))
                culprit = group[0]
                self._emit_order(order_id, group[0], f, lines, sheet)
            except _RowRefused as r:
                self._refuse_group("orders", group, culprit, r, sheet)
                continue
            self.seen_orders[order_id] = group[0].number
            sheet.rows_converted += len(group)

    def items(self, rows: list[_Row], sheet: SheetResult):
        for order_id, group in self._groups(rows, "order_items", sheet).items():
            culprit = group[0]
            try:
                lines = []
                for row in group:
                    culprit = row
                    lines.append(self._line(row))
                rate = self._currency(group[0])
            except _RowRefused as r:
                self._refuse_group("order_items", group, culprit, r, sheet)
                continue
            for i, line in enumerate(lines, start=1):
                self.out.order_items.append({
                    "order_id": order_id, "line_no": line["line_no"] or str(i), "sku_id": line["sku_id"],
                    "quantity": line["quantity"], "unit_price": self._convert_amount(line["unit_price"], rate),
                    "discount_amount": self._convert_amount(line["discount_amount"], rate),
                    "_origin_row": line["_origin_row"],
                })
            sheet.rows_converted += len(group)

    def returns(self, rows: list[_Row], sheet: SheetResult, report: Report):
        for row in rows:
            try:
                return_id = row.required("return_id")
                if return_id in self.seen_returns:
                    raise _RowRefused("duplicate_key", "return_id",
                                      f"return {return_id} already appears at row {self.seen_returns[return_id]}")
                rec = {
                    "return_id": return_id, "order_id": row.required("order_id"), "sku_id": row.get("sku_id"),
                    "quantity": row.get("quantity"),
                    "amount": self._convert_amount(row.required("amount"), self._currency(row)),
                    "reason": row.get("reason"), "requested_at": row.required("requested_at"),
                    "approved_at": row.get("approved_at"), "completed_at": row.get("completed_at"),
                    "status": _status(report, row.get("status"), None, ", ".join(report.status_columns)),
                    "_origin_row": row.number,
                }
            except _RowRefused as r:
                self._refuse("returns", row, r.rule, r.column, r.reason, sheet)
                continue
            self.seen_returns[return_id] = row.number
            self.out.returns.append(rec)
            sheet.rows_converted += 1

    def customers(self, rows: list[_Row], sheet: SheetResult):
        ns = self.mapping.user_namespace
        for row in rows:
            try:
                key = row.required("buyer_key")
                province, city = row.get("province"), row.get("city")
                if province is None and row.get("address") is not None:
                    province, city = values.split_address(row.get("address"))
                rec = {"user_id": values.buyer_user_id(ns, key), "first_order_ts": row.get("registered_at"),
                       "channel": self._channel(row), "phone_hash": values.phone_hash(row.get("phone")),
                       "province": province, "city": city, "identified": True, "_origin_row": row.number}
            except _RowRefused as r:
                self._refuse("users", row, r.rule, r.column, r.reason, sheet)
                continue
            self.out.buyers.append(rec)
            sheet.rows_converted += 1


def convert_export(path: Path, mapping: Mapping, *, display_name: str | None = None,
                   rates: dict[str, Decimal] | None = None) -> Conversion:
    """Convert one export file. Raises ExportError when nothing of it can be read."""
    path = Path(path)
    name = display_name or path.name
    try:
        sheets = read.read_export(path)
    except read.ExportFileError as exc:
        raise ExportError(str(exc)) from None
    conv = _Converter(mapping, name, rates or {})
    matched = 0
    for sheet in sheets:
        found = _find_report(mapping, sheet)
        if found is None:
            if sheet.name is not None and not all(read.is_blank(c) for _, c in sheet.rows):
                conv.out.notes.append(f"{name}: sheet {sheet.name!r} is not a report of the {mapping.platform} "
                                      f"mapping (skipped)")
            continue
        matched += 1
        report, header_i = found
        file_name = name if sheet.name is None or len(sheets) == 1 else f"{name}!{sheet.name}"
        header_no, header_cells = sheet.rows[header_i]
        index: dict[str, int] = {}
        for i, c in enumerate(header_cells):
            index.setdefault(read.header_name(c), i)
        missing = sorted(c for c in report.columns() if c not in index)
        required_cols = {c for f in _required_fields(report) for c in report.fields[f].columns}
        if any(c in required_cols for c in missing):
            raise ExportError(
                f"{file_name}: the header at row {header_no} lacks column(s) "
                f"{', '.join(c for c in missing if c in required_cols)} that the {mapping.platform} mapping "
                f"({report.name}) needs; is this the right export, or did the platform rename a column?")
        if missing:
            conv.out.notes.append(f"{file_name}: column(s) {', '.join(missing)} absent (read as empty)")
        result = SheetResult(file_name, report.name, report.kind, sheet.encoding, header_no)
        rows = []
        cache: dict = {}
        for number, cells in sheet.rows[header_i + 1:]:
            if read.is_blank(cells):
                continue
            result.rows_exported += 1
            row = _Row(number, cells, index, report, cache)
            if any(isinstance(c, str) and "\ufffd" in c for c in cells):
                conv._refuse(SOURCE_OF_KIND[report.kind], row, "bad_encoding", None,
                             f"bytes that are not valid {sheet.encoding} text", result)
                continue
            rows.append(row)
        conv.out.sheets.append(result)
        if report.kind == "orders" and report.grain == "order":
            conv.orders_by_order(rows, result)
        elif report.kind == "orders":
            conv.orders_by_line(rows, result, report)
        elif report.kind == "items":
            conv.items(rows, result)
        elif report.kind == "returns":
            conv.returns(rows, result, report)
        else:
            conv.customers(rows, result)
        if result.rows_exported != result.rows_converted + result.rows_quarantined:
            raise AssertionError(
                f"{file_name}: {result.rows_exported} rows exported but {result.rows_converted} converted + "
                f"{result.rows_quarantined} quarantined")
    if matched == 0:
        expected = "; ".join(f"{r.name}: {', '.join(r.detect)}" for r in mapping.reports)
        raise ExportError(f"{name}: no report of the {mapping.platform} mapping found (looked for a header "
                          f"row with {expected}); is this a {mapping.platform} export?")
    return conv.out


def _required_fields(report: Report) -> list[str]:
    from dagster_project.lib.platforms.mapping import LINE_REQUIRED, REQUIRED

    req = list(REQUIRED[report.kind])
    if report.kind == "orders" and report.grain == "line":
        req += LINE_REQUIRED
    return [f for f in req if report.fields[f].op != "const"]


def read_rates(path: Path) -> dict[str, Decimal]:
    """A rate table: CSV with columns currency, cny_per_unit (e.g. `USD,7.1`)."""
    import csv

    rates: dict[str, Decimal] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for i, rec in enumerate(csv.DictReader(fh), start=2):
            try:
                cur = rec["currency"].strip().upper()
                rate = Decimal(rec["cny_per_unit"].strip())
            except (KeyError, AttributeError, ArithmeticError) as exc:
                raise ExportError(f"{path}:{i}: a rate table needs columns currency, cny_per_unit "
                                  f"with a number ({exc!r})") from None
            if rate <= 0:
                raise ExportError(f"{path}:{i}: rate for {cur} must be positive")
            rates[cur] = rate
    return rates
