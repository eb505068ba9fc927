"""Mapping files: how one platform's export becomes contract rows, declared in YAML (docs/imports.md).

A mapping is data, not code: the six shipped platforms (dagster_project/platforms/*.yml) and a
user's own `--mapping my_export.yml` are read and checked by the same function, and a mistake is
reported as `<file>:<line>: <where>: <what is wrong>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dagster_project.lib.contract import CHANNELS, ORDER_STATUSES, RETURN_STATUSES
from dagster_project.lib.platforms.values import DEFAULT_TIMESTAMP_FORMATS

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "platforms"

# import field -> kind of value. Required fields per report kind are listed below.
FIELD_KINDS = {
    # order level
    "order_id": "id", "order_ts": "ts", "status": "status", "pay_amount": "amount",
    "buyer_key": "text", "phone": "phone", "paid_ts": "ts", "items_amount": "amount",
    "discount_amount": "amount", "shipping_fee": "amount", "refund_amount": "amount",
    "coupon_id": "id", "campaign_id": "id", "province": "text", "city": "text", "address": "text",
    "currency": "text", "shipped_at": "ts", "delivered_at": "ts", "carrier": "text",
    "tracking_no": "id", "channel": "text", "registered_at": "ts",
    # line level
    "sku_id": "id", "quantity": "int", "unit_price": "amount", "line_discount": "amount",
    "line_no": "int",
    # returns
    "return_id": "id", "amount": "amount", "reason": "text", "requested_at": "ts",
    "approved_at": "ts", "completed_at": "ts",
}
ORDER_FIELDS = {
    "order_id", "order_ts", "status", "pay_amount", "buyer_key", "phone", "paid_ts", "items_amount",
    "discount_amount", "shipping_fee", "refund_amount", "coupon_id", "campaign_id", "province",
    "city", "address", "currency", "shipped_at", "delivered_at", "carrier", "tracking_no", "channel",
}
LINE_FIELDS = {"sku_id", "quantity", "unit_price", "line_discount", "line_no"}
ALLOWED = {
    ("orders", "order"): ORDER_FIELDS,
    ("orders", "line"): ORDER_FIELDS | LINE_FIELDS,
    ("items", None): {"order_id"} | LINE_FIELDS,
    ("returns", None): {"return_id", "order_id", "amount", "requested_at", "status", "sku_id",
                        "quantity", "reason", "approved_at", "completed_at", "currency"},
    ("customers", None): {"buyer_key", "phone", "registered_at", "province", "city", "address"},
}
REQUIRED = {
    "orders": ("order_id", "order_ts", "status", "pay_amount"),
    "items": ("order_id", "sku_id", "quantity", "unit_price"),
    "returns": ("return_id", "order_id", "amount", "requested_at", "status"),
    "customers": ("buyer_key",),
}
LINE_REQUIRED = ("sku_id", "quantity", "unit_price")
ORDER_AMOUNT_MODES = ("repeated", "first_row", "per_line", "detect")
KINDS = ("orders", "items", "returns", "customers")


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file, line and field."""


@dataclass(frozen=True)
class FieldSpec:
    """Where an import field comes from: one column, the first non-empty of several, the sum or
    difference of amount columns, or a constant."""

    op: str                      # column, first_of, sum, diff, const
    columns: tuple[str, ...] = ()
    value: str | None = None


@dataclass(frozen=True)
class StatusRule:
    status: str
    when_refunded: str | None = None  # e.g. 交易关闭: cancelled, or refunded when refund_amount > 0


@dataclass(frozen=True)
class Report:
    name: str
    kind: str
    detect: tuple[str, ...]
    fields: dict[str, FieldSpec]
    grain: str = "order"
    order_amounts: str = "repeated"
    status_map: dict[str, StatusRule] = field(default_factory=dict)
    status_strip: tuple[str, ...] = ()
    status_columns: tuple[str, ...] = ()
    timestamp_formats: tuple[str, ...] = DEFAULT_TIMESTAMP_FORMATS
    sheet: str | None = None
    header_search_rows: int = 30
    derive_returns: bool = False
    line: int = 0

    def columns(self) -> set[str]:
        cols = set(self.detect) | set(self.status_columns)
        for spec in self.fields.values():
            cols |= set(spec.columns)
        return cols


@dataclass(frozen=True)
class Mapping:
    platform: str
    channel: str
    user_namespace: str
    reports: tuple[Report, ...]
    path: str
    channel_column: str | None = None
    channel_values: dict[str, str] = field(default_factory=dict)
    currency: str = "CNY"

    def with_channel(self, channel: str) -> "Mapping":
        return Mapping(self.platform if channel == self.channel else channel, channel,
                       self.user_namespace, self.reports, self.path, self.channel_column,
                       self.channel_values, self.currency)


# ---------------------------------------------------------------------------------------------
class _Node:
    """A YAML value with the line it starts on (1-based)."""

    def __init__(self, value, line: int):
        self.value = value
        self.line = line


def _compose(node: yaml.Node) -> _Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, _Node] = {}
        for k, v in node.value:
            key = _compose(k).value
            out[str(key)] = _compose(v)
        return _Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_compose(v) for v in node.value], line)
    return _Node(_scalar(node), line)


def _scalar(node: yaml.ScalarNode):
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


class _Checker:
    def __init__(self, path: str):
        self.path = path

    def fail(self, node: _Node | None, where: str, what: str):
        line = f":{node.line}" if node is not None else ""
        raise MappingError(f"{self.path}{line}: {where}: {what}")

    def get(self, parent: _Node, key: str, where: str, *, required=False, kind=None) -> _Node | None:
        node = parent.value.get(key)
        if node is None:
            if required:
                self.fail(parent, where, f"'{key}' is required")
            return None
        if kind is not None and not isinstance(node.value, kind):
            want = {str: "a text", list: "a list", dict: "a mapping", int: "a whole number",
                    bool: "true or false"}.get(kind, str(kind))
            self.fail(node, f"{where}.{key}", f"must be {want}, got {node.value!r}")
        return node

    def unknown(self, parent: _Node, allowed: set[str], where: str):
        for k, v in parent.value.items():
            if k not in allowed:
                self.fail(v, where, f"unknown key '{k}' (expected one of {', '.join(sorted(allowed))})")

    def text_list(self, node: _Node, where: str) -> tuple[str, ...]:
        if isinstance(node.value, str):
            return (node.value,)
        if not isinstance(node.value, list) or not node.value:
            self.fail(node, where, "must be a column name or a non-empty list of them")
        out = []
        for i, item in enumerate(node.value):
            if not isinstance(item.value, str) or not item.value.strip():
                self.fail(item, f"{where}[{i}]", f"must be a column name, got {item.value!r}")
            out.append(item.value.strip())
        return tuple(out)


def _field_spec(ck: _Checker, node: _Node, where: str) -> FieldSpec:
    if isinstance(node.value, str):
        if not node.value.strip():
            ck.fail(node, where, "column name is empty")
        return FieldSpec("column", (node.value.strip(),))
    if not isinstance(node.value, dict) or len(node.value) != 1:
        ck.fail(node, where, "must be a column name or one of {column: …}, {first_of: […]}, "
                             "{sum: […]}, {diff: […]}, {join: […]}, {const: …}")
    (op, arg), = node.value.items()
    if op == "column":
        return FieldSpec("column", ck.text_list(arg, f"{where}.column")[:1])
    if op in ("first_of", "sum", "diff", "join"):
        cols = ck.text_list(arg, f"{where}.{op}")
        if op == "diff" and len(cols) < 2:
            ck.fail(arg, f"{where}.diff", "needs at least two columns (first minus the others)")
        return FieldSpec(op, cols)
    if op == "const":
        if not isinstance(arg.value, (str, int, float)):
            ck.fail(arg, f"{where}.const", "must be a text or a number")
        return FieldSpec("const", (), str(arg.value))
    ck.fail(node, where, f"unknown field form '{op}' (column, first_of, sum, diff, join, const)")


def _status_map(ck: _Checker, node: _Node, where: str, allowed: tuple[str, ...]) -> dict[str, StatusRule]:
    if not isinstance(node.value, dict) or not node.value:
        ck.fail(node, where, "must map each export status to a contract status")
    out = {}
    for value, target in node.value.items():
        w = f"{where}.{value}"
        if isinstance(target.value, str):
            status, refunded = target.value, None
        elif isinstance(target.value, dict):
            ck.unknown(target, {"status", "when_refunded"}, w)
            status = ck.get(target, "status", w, required=True, kind=str).value
            r = ck.get(target, "when_refunded", w, kind=str)
            refunded = r.value if r else None
        else:
            ck.fail(target, w, "must be a status or {status: …, when_refunded: …}")
        for s in (status, refunded):
            if s is not None and s not in allowed:
                ck.fail(target, w, f"'{s}' is not one of the contract's statuses ({', '.join(allowed)})")
        out[str(value).strip()] = StatusRule(status, refunded)
    return out


def _report(ck: _Checker, node: _Node, where: str) -> Report:
    if not isinstance(node.value, dict):
        ck.fail(node, where, "must be a mapping")
    ck.unknown(node, {"name", "kind", "detect", "grain", "order_amounts", "fields", "status_map",
                      "status_strip", "timestamp_formats", "sheet", "header_search_rows",
                      "derive_returns"}, where)
    name = ck.get(node, "name", where, required=True, kind=str).value
    kind_node = ck.get(node, "kind", where, required=True, kind=str)
    kind = kind_node.value
    if kind not in KINDS:
        ck.fail(kind_node, f"{where}.kind", f"'{kind}' is not one of {', '.join(KINDS)}")
    detect = ck.text_list(ck.get(node, "detect", where, required=True), f"{where}.detect")
    grain_node = ck.get(node, "grain", where, kind=str)
    grain = grain_node.value if grain_node else "order"
    if kind == "orders" and grain not in ("order", "line"):
        ck.fail(grain_node, f"{where}.grain", "must be 'order' (one row per order) or 'line' (one row per line)")
    if kind != "orders" and grain_node is not None:
        ck.fail(grain_node, f"{where}.grain", "only reports of kind 'orders' have a grain")
    amounts_node = ck.get(node, "order_amounts", where, kind=str)
    order_amounts = amounts_node.value if amounts_node else "repeated"
    if amounts_node is not None and (kind != "orders" or grain != "line"):
        ck.fail(amounts_node, f"{where}.order_amounts", "only for kind 'orders' with grain 'line'")
    if order_amounts not in ORDER_AMOUNT_MODES:
        ck.fail(amounts_node, f"{where}.order_amounts", f"must be one of {', '.join(ORDER_AMOUNT_MODES)}")
    fields_node = ck.get(node, "fields", where, required=True, kind=dict)
    allowed = ALLOWED[(kind, grain if kind == "orders" else None)]
    fields = {}
    for fname, spec in fields_node.value.items():
        if fname not in allowed:
            ck.fail(spec, f"{where}.fields", f"'{fname}' is not a field of {kind} reports"
                    + (f" with grain {grain}" if kind == "orders" else "")
                    + f" (expected one of {', '.join(sorted(allowed))})")
        fields[fname] = _field_spec(ck, spec, f"{where}.fields.{fname}")
        if fields[fname].op in ("sum", "diff") and FIELD_KINDS[fname] != "amount":
            ck.fail(spec, f"{where}.fields.{fname}", "sum and diff are for amounts only")
        if fields[fname].op == "join" and fname != "status":
            ck.fail(spec, f"{where}.fields.{fname}", "join (several columns read as one value) is for status only")
    required = REQUIRED[kind] + (LINE_REQUIRED if kind == "orders" and grain == "line" else ())
    for fname in required:
        if fname not in fields:
            ck.fail(fields_node, f"{where}.fields", f"'{fname}' is required for a {kind} report")
    if kind == "orders" and grain == "order" and "items_amount" not in fields:
        ck.fail(fields_node, f"{where}.fields", "'items_amount' is required for one row per order "
                                               "(with one row per line it is the sum of the lines)")
    status_map: dict[str, StatusRule] = {}
    status_columns: tuple[str, ...] = ()
    sm = ck.get(node, "status_map", where)
    if kind in ("orders", "returns"):
        if sm is None:
            ck.fail(node, where, f"'status_map' is required for a {kind} report")
        status_map = _status_map(ck, sm, f"{where}.status_map",
                                 ORDER_STATUSES if kind == "orders" else RETURN_STATUSES)
        status_columns = fields["status"].columns
        if fields["status"].op not in ("column", "first_of", "join"):
            ck.fail(fields_node, f"{where}.fields.status", "must be a column, {first_of: […]} or {join: […]}")
    elif sm is not None:
        ck.fail(sm, f"{where}.status_map", f"a {kind} report has no status")
    strip = ck.get(node, "status_strip", where)
    fmts = ck.get(node, "timestamp_formats", where)
    sheet = ck.get(node, "sheet", where, kind=str)
    hsr = ck.get(node, "header_search_rows", where, kind=int)
    derive = ck.get(node, "derive_returns", where, kind=bool)
    if derive is not None and derive.value and (kind != "orders" or "refund_amount" not in fields):
        ck.fail(derive, f"{where}.derive_returns", "needs a report of kind orders with a refund_amount field")
    return Report(
        name=name, kind=kind, detect=detect, fields=fields, grain=grain, order_amounts=order_amounts,
        status_map=status_map,
        status_strip=ck.text_list(strip, f"{where}.status_strip") if strip else (),
        status_columns=status_columns,
        timestamp_formats=(ck.text_list(fmts, f"{where}.timestamp_formats") if fmts else ())
        + DEFAULT_TIMESTAMP_FORMATS,
        sheet=sheet.value if sheet else None,
        header_search_rows=hsr.value if hsr else 30,
        derive_returns=bool(derive.value) if derive else False,
        line=node.line,
    )


def parse_mapping(text: str, path: str = "<mapping>") -> Mapping:
    ck = _Checker(path)
    try:
        composed = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise MappingError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if composed is None:
        raise MappingError(f"{path}: the mapping file is empty")
    root = _compose(composed)
    if not isinstance(root.value, dict):
        ck.fail(root, "top level", "must be a mapping (platform:, channel:, reports:)")
    ck.unknown(root, {"format", "platform", "channel", "user_namespace", "channel_map", "currency",
                      "reports"}, "top level")
    fmt = ck.get(root, "format", "top level")
    if fmt is not None and fmt.value != 1:
        ck.fail(fmt, "format", f"this version reads format 1, not {fmt.value!r}")
    platform_node = ck.get(root, "platform", "top level", required=True, kind=str)
    platform = platform_node.value.strip()
    if not platform.replace("_", "").replace("-", "").isalnum() or not platform.isascii():
        ck.fail(platform_node, "platform", "must be a short ASCII name (letters, digits, - and _)")
    channel_node = ck.get(root, "channel", "top level", required=True, kind=str)
    if channel_node.value not in CHANNELS:
        ck.fail(channel_node, "channel", f"'{channel_node.value}' is not a contract channel "
                                         f"({', '.join(CHANNELS)})")
    ns_node = ck.get(root, "user_namespace", "top level", kind=str)
    cm = ck.get(root, "channel_map", "top level", kind=dict)
    channel_column, channel_values = None, {}
    if cm is not None:
        ck.unknown(cm, {"column", "values"}, "channel_map")
        channel_column = ck.get(cm, "column", "channel_map", required=True, kind=str).value
        vals = ck.get(cm, "values", "channel_map", required=True, kind=dict)
        for k, v in vals.value.items():
            if v.value not in CHANNELS:
                ck.fail(v, f"channel_map.values.{k}", f"'{v.value}' is not a contract channel")
            channel_values[str(k)] = v.value
    cur = ck.get(root, "currency", "top level", kind=str)
    reports_node = ck.get(root, "reports", "top level", required=True, kind=list)
    if not reports_node.value:
        ck.fail(reports_node, "reports", "needs at least one report")
    reports = tuple(_report(ck, r, f"reports[{i}]") for i, r in enumerate(reports_node.value))
    names = [r.name for r in reports]
    for i, r in enumerate(reports):
        if names.index(r.name) != i:
            ck.fail(reports_node.value[i], f"reports[{i}].name", f"'{r.name}' is used twice")
    return Mapping(
        platform=platform, channel=channel_node.value,
        user_namespace=(ns_node.value.strip() if ns_node else platform), reports=reports, path=path,
        channel_column=channel_column, channel_values=channel_values,
        currency=cur.value.strip().upper() if cur else "CNY",
    )


def load_mapping(path: Path) -> Mapping:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read the mapping file ({exc})") from None
    return parse_mapping(text, str(path))


# tmall shares Taobao's seller-centre exports (千牛) and buyer accounts: same mapping, channel tmall
ALIASES = {"tmall": ("taobao", "tmall")}


def shipped_platforms() -> tuple[str, ...]:
    return tuple(sorted([p.stem for p in SHIPPED_DIR.glob("*.yml")] + list(ALIASES)))


def shipped_mapping(platform: str) -> Mapping:
    base, channel = ALIASES.get(platform, (platform, None))
    path = SHIPPED_DIR / f"{base}.yml"
    if not path.exists():
        raise MappingError(f"unknown platform '{platform}' (shipped: {', '.join(shipped_platforms())}; "
                           f"for any other export write a mapping file and use --mapping)")
    mapping = load_mapping(path)
    return mapping.with_channel(channel) if channel else mapping
