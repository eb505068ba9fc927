"""Platform exports -> contract files: the generator's fixture exports of each platform, every quirk
of docs/imports.md, identity, re-exports, mapping files. No pipeline run here (see
test_platform_imports_e2e.py); the warehouse side is checked on a DuckDB file of its own."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dagster_project.lib import platforms
from dagster_project.lib.generator import generate
from dagster_project.lib.generator.exports import buyer_key, export_order_id, platform_world
from dagster_project.lib.generator.world import build_world
from dagster_project.lib.platforms import values
from dagster_project.lib.platforms.mapping import MappingError, parse_mapping
from dagster_project.lib.platforms.store import import_exports

PLATFORMS = ("taobao", "tmall", "jd", "douyin", "pinduoduo", "youzan", "shopify")
WORLD = dict(customers=1500, days=40, seed=7, start=date(2026, 5, 20), timezone="Asia/Shanghai")


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    summary = generate(root / "landing", bad_rate=0.0, truth_path=root / "truth.json",
                       platform_exports=root / "exports", **WORLD)
    world = build_world(**WORLD)
    tables = platform_world(world.tables, WORLD["seed"])
    return root / "exports", summary["exports"], tables


def _import(home: Path, platform: str, files: list[Path], **kw):
    return import_exports(home, home / "landing", platforms.shipped_mapping(platform), files, **kw)


def _landed(home: Path, source: str, owner: str) -> pl.DataFrame:
    files = sorted((home / "landing" / source).glob(f"{source}_*_import_{owner}.csv"))
    from dagster_project.lib.contract import SOURCES

    frames = [pl.read_csv(f, infer_schema=False) for f in files]
    return pl.concat(frames) if frames else pl.DataFrame(schema={c: pl.Utf8 for c in SOURCES[source].column_names})


def _cents(s) -> int:
    return values.cents(s) if s else 0


def _expected(tables, platform: str) -> dict[str, dict]:
    """Each order of the channel as the world ends it, keyed by the platform's order number."""
    orders = tables["orders"].filter(pl.col("channel") == platform).group_by("order_id", maintain_order=True).last()
    refunds = dict(tables["returns"].group_by("return_id", maintain_order=True).last()
                   .filter(pl.col("status") == "completed").group_by("order_id").agg(pl.col("amount").sum())
                   .iter_rows())
    lines: dict[str, list] = {}
    for r in tables["order_items"].iter_rows(named=True):
        lines.setdefault(r["order_id"], []).append((r["sku_id"], r["quantity"], r["unit_price"]))
    out = {}
    for o in orders.iter_rows(named=True):
        out[export_order_id(platform, o["order_id"])] = {
            "status": o["status"], "pay": o["pay_amount"], "items": o["items_amount"],
            "discount": o["discount_amount"] or 0, "shipping": o["shipping_fee"] or 0,
            "paid": o["paid_ts"] is not None, "refund": refunds.get(o["order_id"], 0),
            "lines": sorted(lines.get(o["order_id"], [])), "user_id": o["user_id"]}
    return out


@pytest.mark.parametrize("platform", PLATFORMS)
def test_fixture_exports_import_exactly_with_every_row_accounted_for(tmp_path, fixtures, platform):
    exports, manifest, tables = fixtures
    files = sorted((exports / platform).iterdir())
    records, written = _import(tmp_path, platform, files)
    assert written
    by_file = {m["file"].split("!")[0]: m for m in manifest["files"] if m["platform"] == platform}
    refused = {}
    for rec in records:
        if rec.status == "already_imported":  # two empty refund exports have the same bytes
            continue
        m = by_file[rec.export_name]
        assert rec.rows_exported == m["rows"], rec.export_name
        assert rec.rows_exported == rec.rows_converted + rec.rows_quarantined
        ref = pl.read_parquet(platforms.store.store_dir(tmp_path) / platform / rec.export_id / "refusals.parquet")
        refused[rec.export_name] = sorted((r["row"], r["rule"]) for r in ref.iter_rows(named=True))
        assert refused[rec.export_name] == sorted((p["row"], p["rule"]) for p in m["planted"]), rec.export_name

    expected = _expected(tables, platform)
    orders = _landed(tmp_path, "orders", platform)
    assert orders.height == orders["order_id"].n_unique() == len(expected)
    items = _landed(tmp_path, "order_items", platform)
    lines: dict[str, list] = {}
    for r in items.iter_rows(named=True):
        lines.setdefault(r["order_id"], []).append((r["sku_id"], int(r["quantity"]), _cents(r["unit_price"])))
    returns = _landed(tmp_path, "returns", platform)
    refunds: dict[str, int] = {}
    for r in returns.filter(pl.col("status") == "completed").iter_rows(named=True):
        refunds[r["order_id"]] = refunds.get(r["order_id"], 0) + _cents(r["amount"])
    for o in orders.iter_rows(named=True):
        e = expected[o["order_id"]]
        status = "shipped" if (platform == "shopify" and e["status"] == "delivered") else e["status"]
        assert o["status"] == status, (o["order_id"], o["status"], e["status"])
        assert (_cents(o["pay_amount"]), _cents(o["items_amount"]), _cents(o["discount_amount"]),
                _cents(o["shipping_fee"])) == (e["pay"], e["items"], e["discount"], e["shipping"]), o["order_id"]
        assert (o["paid_ts"] is not None) == e["paid"]
        assert sorted(lines.get(o["order_id"], [])) == e["lines"], o["order_id"]
        assert refunds.get(o["order_id"], 0) == e["refund"], o["order_id"]
        assert o["channel"] == platform


def test_second_import_changes_nothing(tmp_path, fixtures):
    exports, _, _ = fixtures
    files = sorted((exports / "jd").iterdir())
    _import(tmp_path, "jd", files)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "landing").rglob("*.csv")}
    records, written = _import(tmp_path, "jd", files)
    assert written == {}
    assert {r.status for r in records} == {"already_imported"}
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "landing").rglob("*.csv")}
    assert after == before


def test_overlapping_reexport_updates_statuses_in_any_import_order(tmp_path, fixtures):
    exports, _, tables = fixtures
    first = sorted((exports / "taobao").glob("*_1.*"))
    second = sorted((exports / "taobao").glob("*_2.*"))
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    _import(home_a, "taobao", first)
    old = dict(_landed(home_a, "orders", "taobao").select("order_id", "status").iter_rows())
    _import(home_a, "taobao", second)
    new = dict(_landed(home_a, "orders", "taobao").select("order_id", "status").iter_rows())
    changed = {k for k in old if new[k] != old[k]}
    assert changed, "the fixture's second download must update some statuses"
    assert set(old) < set(new) and len(new) == _landed(home_a, "orders", "taobao").height
    expected = _expected(tables, "taobao")
    assert all(new[k] == expected[k]["status"] for k in new)
    # the newer export wins by what it knows (its latest time), not by the order of the imports
    _import(home_b, "taobao", second)
    _import(home_b, "taobao", first)
    files = lambda h: {p.name: p.read_bytes() for p in (h / "landing").rglob("*.csv")}  # noqa: E731
    assert files(home_a) == files(home_b)


def test_refused_rows_reach_raw_quarantine_at_the_exports_row(tmp_path, fixtures):
    exports, manifest, _ = fixtures
    for platform in ("taobao", "jd"):
        _import(tmp_path, platform, sorted((exports / platform).iterdir()))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    platforms.sync_warehouse(con, tmp_path)
    platforms.sync_warehouse(con, tmp_path)  # idempotent
    got = sorted(con.execute("select file_name, row_number, rule from raw.quarantine").fetchall())
    planted = sorted((m["file"], p["row"], p["rule"]) for m in manifest["files"]
                     if m["platform"] in ("taobao", "jd") for p in m["planted"])
    assert got == planted and planted
    reason = con.execute("select reason from raw.quarantine where rule = 'bad_export_value' and raw_text like "
                         "'%系统计算中%' limit 1").fetchone()[0]
    assert "168.00（系统计算中…）" in reason and "not a number" in reason
    (n_exported, n_conv, n_quar), = con.execute(
        "select sum(rows_exported), sum(rows_converted), sum(rows_quarantined) from raw._imports").fetchall()
    assert n_exported == n_conv + n_quar and n_quar == len(planted)
    # lineage: every landed row of the taobao orders files points at a row of an export
    lin = con.execute("select count(*), count(distinct landing_file) from raw._import_lineage "
                      "where source = 'orders' and platform = 'taobao'").fetchone()
    assert lin[0] == _landed(tmp_path, "orders", "taobao").height and lin[1] >= 1
    con.close()


# ------------------------------------------------------------------------------- quirks, one by one
def test_excel_text_guards_tabs_and_apostrophes_are_removed():
    assert values.ident('="1930000000100000123"') == "1930000000100000123"
    assert values.ident("\t261115-000000100000001\t") == "261115-000000100000001"
    assert values.text("'13812345678") == "13812345678"
    assert values.ident(7022550000000.0) == "7022550000000"


def test_amounts_with_yuan_and_thousands_separators():
    assert values.amount("168.00元") == "168.00"
    assert values.amount("1,299.5") == "1299.50"
    assert values.amount("¥12") == "12.00"
    assert values.amount(12.3) == "12.30"


@pytest.mark.parametrize("bad", ["168.00（系统计算中…）", "约100", "12,5", "1.234", "-5.00"])
def test_text_inside_amounts_is_refused_not_guessed(bad):
    with pytest.raises(values.Refused):
        values.amount(bad)


def test_excel_dates_resaved_and_serial_numbers():
    assert values.timestamp("2016/5/23 22:02") == "2016-05-23 22:02:00"
    assert values.timestamp(42513.918055556) == "2016-05-23 22:02:00"
    assert values.timestamp("42513.918055556") == "2016-05-23 22:02:00"
    assert values.timestamp("2025-12-07 19:08:25 +0000") == "2025-12-07T19:08:25+00:00"
    with pytest.raises(values.Refused):
        values.timestamp("23/05/2016")


@pytest.mark.parametrize("mangled", ["7.02255E+12", "1.93012e+18", 1.9301200000000004e18])
def test_ids_mangled_by_excel_are_refused(mangled):
    with pytest.raises(values.Refused):
        values.ident(mangled)


def test_address_split_into_province_and_city():
    assert values.split_address("吉林省 通化市 柳河县 某街道(135300)") == ("吉林省", "通化市")
    assert values.split_address("上海 上海市 浦东新区 某路1号") == ("上海市", "上海市")
    assert values.split_address("浙江省杭州市西湖区文三路") == ("浙江省", "杭州市")
    assert values.split_address("广西 南宁市 青秀区") == ("广西壮族自治区", "南宁市")
    assert values.split_address("") == (None, None)


def _write(path: Path, rows: list[list], encoding="utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


JD_HEAD = ["订单号", "商品ID", "商品名称", "订购数量", "下单时间", "京东价", "订单金额", "应付金额", "订单状态",
           "下单帐号", "联系电话", "客户地址", "运费金额", "付款确认时间", "出库时间", "快递公司", "运单号", "货号",
           "订单完成时间"]


def _jd_row(oid, sku, qty, price, status="完成", items="300.00", pay="306.00"):
    return [oid, "1", "维生素", qty, "2026-06-01 10:00:00", price, items, pay, status, "jd_buyer",
            "1******6198", "上海 上海市 浦东新区", "6.00", "2026-06-01 10:05:00", "", "", "", sku, ""]


def test_jd_repeated_order_amounts_are_taken_once_never_summed(tmp_path):
    path = _write(tmp_path / "jd.csv", [JD_HEAD, _jd_row("300000000001", "SKU1", 1, "100.00"),
                                        _jd_row("300000000001", "SKU2", 2, "100.00"),
                                        _jd_row("300000000002", "SKU1", 1, "100.00", "(删除)已取消", "100.00",
                                                "106.00")],
                  "gb18030")
    conv = platforms.convert_export(path, platforms.shipped_mapping("jd"))
    o = {r["order_id"]: r for r in conv.orders}
    assert o["300000000001"]["pay_amount"] == "306.00" and o["300000000001"]["items_amount"] == "300.00"
    assert o["300000000001"]["discount_amount"] == "0.00"
    assert o["300000000002"]["status"] == "cancelled"  # "(删除)" prefix stripped
    assert len(conv.order_items) == 3 and conv.rows_converted == 3


SHOPIFY_HEAD = ["Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Currency",
                "Subtotal", "Shipping", "Total", "Discount Amount", "Created at", "Lineitem quantity", "Lineitem price",
                "Lineitem sku", "Refunded Amount", "Phone", "Shipping Province Name", "Shipping City"]


def _shopify(tmp_path, currency="CNY"):
    return _write(tmp_path / "orders_export.csv", [
        SHOPIFY_HEAD,
        ["#1001", "a@example.com", "paid", "2025-12-07 19:10:00 +0000", "fulfilled", "2025-12-08 01:00:00 +0000",
         currency, "90.00", "10.00", "100.00", "10.00", "2025-12-07 19:08:25 +0000", "1", "60.00", "SKU1", "0.00",
         "'+86 138 1234 5678", "浙江省", "杭州市"],
        ["#1001", "a@example.com", "", "", "", "", "", "", "", "", "", "", "2", "20.00", "SKU2", "", "", "", ""],
        ["#1002", "b@example.com", "refunded", "2025-12-09 10:00:00 +0000", "fulfilled", "", currency, "50.00",
         "0.00", "50.00", "0.00", "2025-12-09 09:00:00 +0000", "1", "50.00", "SKU3", "50.00", "", "", ""],
    ])


def test_shopify_order_fields_come_from_the_first_row_only(tmp_path):
    conv = platforms.convert_export(_shopify(tmp_path), platforms.shipped_mapping("shopify"))
    o = {r["order_id"]: r for r in conv.orders}
    assert o["#1001"]["items_amount"] == "100.00" and o["#1001"]["pay_amount"] == "100.00"
    assert o["#1001"]["order_ts"] == "2025-12-07T19:08:25+00:00" and o["#1001"]["status"] == "shipped"
    assert [(li["sku_id"], li["quantity"], li["line_no"]) for li in conv.order_items if li["order_id"] == "#1001"] \
        == [("SKU1", "1", "1"), ("SKU2", "2", "2")]
    assert o["#1002"]["status"] == "refunded"
    assert [(r["order_id"], r["amount"], r["status"]) for r in conv.returns] == [("#1002", "50.00", "completed")]
    buyer = next(b for b in conv.buyers if b["user_id"] == o["#1001"]["user_id"])
    assert buyer["phone_hash"] == hashlib.sha256(b"13812345678").hexdigest()


def test_non_cny_amounts_are_refused_unless_a_rate_is_given(tmp_path):
    mapping = platforms.shipped_mapping("shopify")
    conv = platforms.convert_export(_shopify(tmp_path, "USD"), mapping)
    assert conv.orders == [] and conv.rows_quarantined == 3
    assert {r.rule for r in conv.refusals} == {"unconverted_currency", "with_refused_row"}
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,cny_per_unit\nUSD,7.1\n")
    conv = platforms.convert_export(_shopify(tmp_path, "USD"), mapping, rates=platforms.read_rates(rates))
    o = {r["order_id"]: r for r in conv.orders}
    assert o["#1001"]["pay_amount"] == "710.00" and o["#1002"]["pay_amount"] == "355.00"
    assert sorted(li["unit_price"] for li in conv.order_items) == ["142.00", "355.00", "426.00"]


def test_header_not_on_line_one_and_tabs_in_cells(fixtures):
    exports, manifest, _ = fixtures
    conv = platforms.convert_export(exports / "pinduoduo" / "pinduoduo_orders_1.csv",
                                    platforms.shipped_mapping("pinduoduo"))
    assert conv.sheets[0].header_row == 3
    assert all("\t" not in o["order_id"] for o in conv.orders) and conv.rows_quarantined == 0


def test_statuses_map_to_the_contracts_six_and_unknown_ones_are_refused(tmp_path):
    head = ["订单编号", "买家会员名", "买家应付货款", "买家应付邮费", "总金额", "买家实际支付金额", "订单状态",
            "订单创建时间", "退款金额"]
    rows = [head] + [[f'="19300000000000000{i:02d}"', "t_1", "10.00", "0.00", "10.00", "10.00", st,
                      "2026-06-01 10:00:00", refund] for i, (st, refund) in enumerate([
                          ("等待买家付款", "0"), ("买家已付款，等待卖家发货", "0"), ("卖家已发货，等待买家确认", "0"),
                          ("交易成功", "0"), ("交易关闭", "0"), ("交易关闭", "10.00元"), ("已拼团", "0")])]
    conv = platforms.convert_export(_write(tmp_path / "tb.csv", rows, "gb18030"), platforms.shipped_mapping("taobao"))
    assert [o["status"] for o in conv.orders] == ["created", "paid", "shipped", "delivered", "cancelled", "refunded"]
    (r,) = conv.refusals
    assert (r.row, r.rule, r.column) == (8, "unmapped_status", "订单状态") and "已拼团" in r.reason


# ------------------------------------------------------------------------------- identity
def test_phone_hash_only_from_unmasked_mainland_numbers():
    h = hashlib.sha256(b"13812345678").hexdigest()
    for shown in ("13812345678", "'13812345678", "+8613812345678", "86-13812345678", "\t138 1234 5678"):
        assert values.phone_hash(shown) == h, shown
    for masked in ("138****5678", "1******5678", "0571-88888888", "2381234567", ""):
        assert values.phone_hash(masked) is None, masked


def test_buyer_keys_become_hashed_per_platform_user_ids_and_nothing_is_kept_in_clear(tmp_path, fixtures):
    exports, _, tables = fixtures
    for p in PLATFORMS:
        _import(tmp_path, p, sorted((exports / p).iterdir()))
    a = values.buyer_user_id("taobao", "t_0000000001")
    assert a == values.buyer_user_id("taobao", "t_0000000001") != values.buyer_user_id("jd", "t_0000000001")
    # a Taobao buyer who bought twice is one user: repurchase works with no phone at all
    expected = _expected(tables, "taobao")
    orders = _landed(tmp_path, "orders", "taobao")
    by_world_user: dict[str, set] = {}
    for o in orders.iter_rows(named=True):
        by_world_user.setdefault(expected[o["order_id"]]["user_id"], set()).add(o["user_id"])
    assert all(len(ids) == 1 for ids in by_world_user.values())
    assert any(len([1 for e in expected.values() if e["user_id"] == u]) > 1 for u in by_world_user)
    # Taobao and Tmall share buyer accounts (one namespace); Douyin orders have no buyer: own user each
    assert all(u.startswith("taobao:") for u in _landed(tmp_path, "orders", "tmall")["user_id"])
    dy = _landed(tmp_path, "orders", "douyin")
    assert dy["user_id"].n_unique() == dy.height
    # masked phones give no phone_hash; Youzan's full numbers do
    users = _landed(tmp_path, "users", "youzan")
    assert users["phone_hash"].drop_nulls().len() > 0
    # never in clear: buyer keys and phone numbers from the exports appear in no file the import wrote
    secrets = set()
    for uid, ch, phone in tables["users"].select("user_id", "channel", "_phone").iter_rows():
        if ch in PLATFORMS:
            if (k := buyer_key(ch, uid)) is not None:
                secrets.add(k.encode())
            if phone:
                secrets.add(phone.encode())
    written = [p for p in list((tmp_path / "landing").rglob("*")) + list((tmp_path / "imports").rglob("*"))
               if p.is_file()]
    blob = b"\n".join(p.read_bytes() for p in written if p.suffix == ".csv")
    assert secrets and not [s for s in secrets if s in blob]
    for p in written:
        if p.suffix == ".parquet":
            text = json.dumps(pl.read_parquet(p).to_dicts(), ensure_ascii=False, default=str).encode()
            leaked = [s for s in secrets if s in text]
            # refused rows keep the export's raw text (for the user to find and fix them)
            assert not leaked or p.name == "refusals.parquet", (p, leaked[:3])


def test_identity_map_links_masked_buyers_by_phone(tmp_path, fixtures):
    exports, _, tables = fixtures
    _import(tmp_path, "jd", sorted((exports / "jd").glob("*_2.xlsx")))
    users = _landed(tmp_path, "users", "jd")
    assert users["phone_hash"].null_count() == users.height  # the XLSX masks every phone
    namespaces = {"jd": "jd", "taobao": "taobao", "tmall": "taobao"}
    n = platforms.import_identity_map(tmp_path, exports / "identity_map.csv", namespaces)
    assert n > 0
    platforms.store.rebuild(tmp_path, tmp_path / "landing", "jd", platforms.store.load_identity(tmp_path))
    users = _landed(tmp_path, "users", "jd")
    phones = dict(tables["users"].select("user_id", "phone_hash").iter_rows())
    world_of = {values.buyer_user_id("jd", buyer_key("jd", u)): u for u in phones}
    linked = users.filter(pl.col("phone_hash").is_not_null())
    assert linked.height > 0
    assert all(phones[world_of[u]] == ph for u, ph in linked.select("user_id", "phone_hash").iter_rows())
    kept = platforms.store.identity_path(tmp_path).read_text()
    with open(exports / "identity_map.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and not [r for r in rows if r["phone"] in kept or r["buyer_key"] in kept]


# ------------------------------------------------------------------------------- mapping files
@pytest.mark.parametrize("text, where", [
    ("platform: x\nchannel: taobao\nreports:\n  - name: a\n    kind: orders\n    detect: [A]\n    fields:\n"
     "      order_id: A\n      order_ts: B\n      status: C\n      pay_amount: D\n      items_amount: E\n"
     "      colour: F\n    status_map: {x: paid}\n",
     ":13: reports[0].fields: 'colour' is not a field of orders reports"),
    ("platform: x\nchannel: taobao\nreports:\n  - name: a\n    kind: orders\n    detect: [A]\n    fields:\n"
     "      order_id: A\n      order_ts: B\n      status: C\n      pay_amount: D\n      items_amount: E\n"
     "    status_map:\n      付款: shipping_soon\n", ":14: reports[0].status_map.付款: 'shipping_soon' is not one"),
    ("platform: x\nchannel: myspace\nreports: []\n", ":2: channel: 'myspace' is not a contract channel"),
    ("platform: x\nchannel: jd\nreports:\n  - name: a\n    kind: items\n    detect: [A]\n    fields:\n"
     "      order_id: A\n", ":8: reports[0].fields: 'sku_id' is required"),
    ("platform: x\nchannel: jd\nreports:\n  - name: a\n    kind: orders\n  detect: [A\n", ":6: not valid YAML"),
])
def test_mapping_errors_name_the_line_and_field(text, where):
    with pytest.raises(MappingError) as exc:
        parse_mapping(text, "my_export.yml")
    assert str(exc.value).startswith("my_export.yml:") and where in str(exc.value), str(exc.value)


def test_shipped_mappings_are_valid_and_cover_six_platforms():
    assert set(PLATFORMS) <= set(platforms.shipped_platforms())
    for p in PLATFORMS:
        m = platforms.shipped_mapping(p)
        assert m.channel == p and m.reports


WOO_MAPPING = """\
# A WooCommerce "Order Export" plugin CSV: one row per line item, order totals repeated
format: 1
platform: woocommerce
channel: web
user_namespace: woo
reports:
  - name: orders
    kind: orders
    grain: line
    order_amounts: repeated
    detect: [Order Number, Order Status, Item SKU]
    fields:
      order_id: Order Number
      buyer_key: Billing Email
      phone: Billing Phone
      order_ts: Order Date
      paid_ts: Paid Date
      pay_amount: Order Total
      shipping_fee: Shipping Total
      discount_amount: Cart Discount
      status: Order Status
      province: Shipping State
      city: Shipping City
      sku_id: Item SKU
      quantity: Quantity
      unit_price: Item Cost
    status_map:
      Pending payment: created
      Processing: paid
      Completed: delivered
      Cancelled: cancelled
      Refunded: refunded
"""


def test_a_custom_mapping_loads_a_hand_written_export(tmp_path, ew_home):
    mapping_path = tmp_path / "woo.yml"
    mapping_path.write_text(WOO_MAPPING, encoding="utf-8")
    export = _write(tmp_path / "woo-orders.csv", [
        ["Order Number", "Order Status", "Order Date", "Paid Date", "Billing Email", "Billing Phone",
         "Order Total", "Shipping Total", "Cart Discount", "Shipping State", "Shipping City", "Item SKU",
         "Quantity", "Item Cost"],
        ["W-1", "Completed", "2026-06-01 10:00", "2026-06-01 10:02", "x@example.com", "13912345678", "95.00",
         "5.00", "10.00", "广东省", "深圳市", "SKU10001", "2", "50.00"],
        ["W-1", "Completed", "2026-06-01 10:00", "2026-06-01 10:02", "x@example.com", "13912345678", "95.00",
         "5.00", "10.00", "广东省", "深圳市", "SKU10002", "1", "0.00"],
        ["W-2", "On hold", "2026-06-02 11:00", "", "y@example.com", "", "20.00", "0.00", "0.00", "", "",
         "SKU10003", "1", "20.00"],
    ])
    from dagster_project.cli import main

    assert main(["import", "--mapping", str(mapping_path), str(export)]) == 0
    orders = _landed(Path(ew_home.home), "orders", "woocommerce")
    assert orders.select("order_id", "items_amount", "pay_amount", "status", "channel").rows() == [
        ("W-1", "100.00", "95.00", "delivered", "web")]
    users = _landed(Path(ew_home.home), "users", "woo")
    assert users["phone_hash"].to_list() == [hashlib.sha256(b"13912345678").hexdigest()]
    assert users["user_id"][0].startswith("woo:")
    # W-2's status is not in the mapping: refused at its row
    (r,) = [x for x in pl.read_parquet(next(platforms.store.store_dir(Path(ew_home.home)).rglob("refusals.parquet")))
            .iter_rows(named=True)]
    assert (r["row"], r["rule"]) == (4, "unmapped_status")


def test_drop_folder_imports_new_exports_once(tmp_path, fixtures):
    exports, _, _ = fixtures
    drop = platforms.imports_dir(tmp_path) / "youzan"
    shutil.copytree(exports / "youzan", drop)
    first = platforms.import_drop_folder(tmp_path, tmp_path / "landing")
    assert [r.platform for r in first] == ["youzan"] and first[0].written and not first[0].errors
    again = platforms.import_drop_folder(tmp_path, tmp_path / "landing")
    assert again[0].written == {} and {r.status for r in again[0].records} == {"already_imported"}
    from dagster_project.defs.ingest.sensors import import_fingerprints

    assert sorted(import_fingerprints(tmp_path)) == sorted(f"imports/youzan/{p.name}" for p in drop.iterdir())
    (drop / "broken.xlsx").write_bytes(b"not a workbook")
    res = platforms.import_drop_folder(tmp_path, tmp_path / "landing")
    assert len(res[0].errors) == 1 and "broken.xlsx" in res[0].errors[0]


def test_landing_sensor_starts_a_run_for_exports_dropped_in_the_imports_folder(ew_home, fixtures):
    import dagster as dg

    from dagster_project.definitions import defs

    sensor = defs.resolve_sensor_def("landing_sensor")
    ctx = dg.build_sensor_context()
    assert isinstance(sensor(ctx), dg.SkipReason)
    shutil.copytree(fixtures[0] / "shopify", platforms.imports_dir(Path(ew_home.home)) / "shopify")
    ctx = dg.build_sensor_context(cursor=ctx.cursor)
    result = sensor(ctx)
    assert isinstance(result, dg.RunRequest) and result.tags["ew/changed_files"] == "2"
