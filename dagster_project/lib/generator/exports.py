"""The demo world's platform orders written as seller-centre exports (`ecomwh generate --platform-exports`).

The world's channels are split so every shipped platform has buyers (`platform_world`: some Tmall
users become Taobao or Shopify buyers, some single-SKU JD buyers Pinduoduo's, some offline buyers
Youzan's; nothing else changes). Then the orders of the platform channels (taobao, tmall, jd,
douyin, pinduoduo, youzan, shopify) are written as each platform's exports, in its layout, encoding
and quirks (docs/imports.md lists them), into `<exports>/<platform>/`:

- two downloads per platform: the first half of the window as of its middle day, then the whole
  window as of its end, so every order of the first half is re-exported with its newer status;
- planted bad rows are extra rows (a copy of a real order under a fresh id with one broken value),
  so the real orders stay exact; `manifest.json` lists every file with its data rows and the
  planted rows' numbers and rules;
- `identity_map.csv`: the phone of every Taobao/Tmall/JD buyer whose exports mask it, as a shop
  would get from a membership binding, so those buyers link to their other channels.

Never a copy of a real export: every value comes from the simulated world.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

PLATFORM_CHANNELS = ("taobao", "tmall", "jd", "douyin", "pinduoduo", "youzan", "shopify")
# channels whose exports carry no buyer key at all (docs/imports.md: what exports cannot carry)
KEYLESS_CHANNELS = ("douyin", "pinduoduo")


def platform_world(tables: dict[str, pl.DataFrame], seed: int) -> dict[str, pl.DataFrame]:
    """Split the world's marketplace and offline users over all shipped platforms, on a separate
    random stream (every other value of the world is unchanged)."""
    rng = np.random.Generator(np.random.PCG64([seed, 0x91A7]))
    users, orders, items = tables["users"], tables["orders"], tables["order_items"]
    lines = items.group_by("order_id").agg(pl.len().alias("n"))
    multi = (orders.select("order_id", "user_id").unique().join(lines, on="order_id")
             .filter(pl.col("n") > 1).get_column("user_id").unique().to_list())
    multi = set(multi)
    u = rng.random(users.height)
    new = []
    for uid, ch, x in zip(users["user_id"].to_list(), users["channel"].to_list(), u):
        if ch == "tmall":
            ch = "taobao" if x < 0.45 else "shopify" if x < 0.55 else ch
        elif ch == "jd" and uid not in multi and x < 0.5:
            ch = "pinduoduo"
        elif ch == "offline" and x < 0.6:
            ch = "youzan"
        new.append(ch)
    channel_of = dict(zip(users["user_id"].to_list(), new))
    out = dict(tables)
    out["users"] = users.with_columns(pl.Series("channel", new))
    out["orders"] = orders.with_columns(
        pl.col("user_id").replace_strict(channel_of, default=None).fill_null(pl.col("channel")).alias("channel"))
    return out


def identifiable_world(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The world without what platform exports cannot carry (the end-to-end comparison's rule):
    users of keyless channels (Douyin, Pinduoduo: no buyer key, masked phones) with all their rows,
    and platform users who never ordered (exports list buyers only)."""
    users, orders = tables["users"], tables["orders"]
    buyers = set(orders.get_column("user_id").unique().to_list())
    drop = set(users.filter(pl.col("channel").is_in(KEYLESS_CHANNELS)
                            | (pl.col("channel").is_in(PLATFORM_CHANNELS)
                               & ~pl.col("user_id").is_in(list(buyers)))).get_column("user_id").to_list())
    drop_orders = set(orders.filter(pl.col("user_id").is_in(list(drop))).get_column("order_id").to_list())
    out = {}
    for name, df in tables.items():
        if "user_id" in df.columns:
            df = df.filter(~pl.col("user_id").is_in(list(drop)) | pl.col("user_id").is_null())
        if "order_id" in df.columns and name != "orders":
            df = df.filter(~pl.col("order_id").is_in(list(drop_orders)) | pl.col("order_id").is_null())
        out[name] = df
    return out


def exported(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The contract rows the exports carry (orders of platform channels, their lines, returns and
    shipments, and platform users): the generator leaves them out of the landing folder."""
    orders = tables["orders"]
    ids = orders.filter(pl.col("channel").is_in(PLATFORM_CHANNELS)).get_column("order_id").unique().to_list()
    return {"order_ids": ids, "user_ids": tables["users"].filter(
        pl.col("channel").is_in(PLATFORM_CHANNELS)).get_column("user_id").to_list()}


def without_exported(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    ex = exported(tables)
    out = dict(tables)
    for name in ("orders", "order_items", "returns", "shipments"):
        out[name] = tables[name].filter(~pl.col("order_id").is_in(ex["order_ids"]))
    out["users"] = tables["users"].filter(~pl.col("user_id").is_in(ex["user_ids"]))
    return out


# ---------------------------------------------------------------------------------------------
def export_order_id(platform: str, order_id: str) -> str:
    """The platform's order number for a world order (a bijection per platform)."""
    n = int(order_id[1:])
    return {
        "taobao": f"{1930000000000000000 + n}", "tmall": f"{1940000000000000000 + n}",
        "jd": f"{300000000000 + n}", "douyin": f"{6920000000000000000 + n}",
        "pinduoduo": f"261115-{n:015d}", "youzan": f"E2026{n:016d}", "shopify": f"#{n}",
    }[platform]


def _h(*parts) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


def buyer_key(platform: str, user_id: str) -> str | None:
    h = _h("buyer", user_id)
    return {
        "taobao": f"t_{int(h[:10], 16) % 10**10:010d}", "tmall": f"t_{int(h[:10], 16) % 10**10:010d}",
        "jd": f"jd_{h[:10]}", "youzan": f"有赞用户{h[:6]}", "shopify": f"{h[:10]}@example.com",
    }.get(platform)


def masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def _money(c) -> str:
    return "" if c is None else f"{int(c) // 100}.{int(c) % 100:02d}"


class _Clock:
    def __init__(self, offset: int):
        self.offset = offset

    def local(self, ts) -> datetime | None:
        return None if ts is None else datetime(1970, 1, 1) + timedelta(seconds=int(ts) + self.offset)

    def text(self, ts, fmt="%Y-%m-%d %H:%M:%S") -> str:
        dt = self.local(ts)
        return "" if dt is None else dt.strftime(fmt)

    def excel(self, ts) -> str:
        """As Excel re-saves it: `2016/5/23 22:02` (no zero padding, no seconds)."""
        dt = self.local(ts)
        return "" if dt is None else f"{dt.year}/{dt.month}/{dt.day} {dt.hour}:{dt.minute:02d}"

    def utc(self, ts) -> str:
        return "" if ts is None else (datetime(1970, 1, 1) + timedelta(seconds=int(ts))).strftime(
            "%Y-%m-%d %H:%M:%S +0000")


def _as_of(df: pl.DataFrame, key: str, day: int) -> pl.DataFrame:
    return df.filter(pl.col("_day") <= day).group_by(key, maintain_order=True).last()


class _World:
    """The tables a platform's exports need, as of a download day."""

    def __init__(self, tables, clock: _Clock):
        self.t = tables
        self.clock = clock
        users = tables["users"]
        self.user = {r["user_id"]: r for r in users.select("user_id", "_phone").iter_rows(named=True)}
        self.lines: dict[str, list[dict]] = {}
        for r in tables["order_items"].sort(["order_id", "line_no"]).iter_rows(named=True):
            self.lines.setdefault(r["order_id"], []).append(r)

    def orders(self, channel: str, first_day: int, last_day: int, as_of: int) -> list[dict]:
        o = self.t["orders"].filter(pl.col("channel") == channel)
        first = o.group_by("order_id", maintain_order=True).agg(pl.col("_day").min().alias("_d0"))
        cur = _as_of(o, "order_id", as_of).join(first, on="order_id")
        cur = cur.filter((pl.col("_d0") >= first_day) & (pl.col("_d0") < last_day)).sort("order_ts", "order_id")
        rets = _as_of(self.t["returns"], "return_id", as_of)
        refund = dict(rets.filter(pl.col("status") == "completed").group_by("order_id")
                      .agg(pl.col("amount").sum()).iter_rows())
        ships = _as_of(self.t["shipments"], "shipment_id", as_of)
        ship = {r["order_id"]: r for r in ships.iter_rows(named=True)}
        out = []
        for r in cur.iter_rows(named=True):
            r["refund"] = refund.get(r["order_id"], 0)
            s = ship.get(r["order_id"])
            r["shipped_at"] = s["shipped_at"] if s else None
            r["delivered_at"] = s["delivered_at"] if s else None
            r["carrier"] = s["carrier"] if s else None
            r["tracking"] = s["shipment_id"].replace("SH", "YT") if s else None
            r["phone"] = self.user.get(r["user_id"], {}).get("_phone")
            r["lines"] = self.lines.get(r["order_id"], [])
            out.append(r)
        return out

    def returns(self, order_ids: set[str], as_of: int) -> list[dict]:
        rets = _as_of(self.t["returns"], "return_id", as_of).filter(pl.col("order_id").is_in(list(order_ids)))
        return list(rets.sort("requested_at", "return_id").iter_rows(named=True))


# ---------------------------------------------------------------------------------------------
class _Export:
    """One export file being written: header, rows, planted bad rows."""

    def __init__(self, name: str, header: list[str], preamble: list[list] | None = None):
        self.name, self.header = name, header
        self.preamble = preamble or []
        self.rows: list[list] = []
        self.planted: list[dict] = []

    def add(self, row: list):
        self.rows.append(row)

    def plant(self, row: list, rule: str, note: str):
        self.rows.append(row)
        self.planted.append({"row": self._row_number(len(self.rows) - 1), "rule": rule, "note": note})

    def _row_number(self, i: int) -> int:
        return len(self.preamble) + 1 + i + 1

    def manifest(self, platform: str) -> dict:
        return {"platform": platform, "file": self.name, "header_row": len(self.preamble) + 1,
                "rows": len(self.rows), "planted": self.planted}


def _write_csv(folder: Path, ex: _Export, encoding: str) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for r in ex.preamble + [ex.header] + ex.rows:
        w.writerow(r)
    text = buf.getvalue()
    data = text.encode("gb18030") if encoding == "gb18030" else text.encode("utf-8")
    if encoding == "utf-8-sig":
        data = b"\xef\xbb\xbf" + data
    (folder / ex.name).write_bytes(data)


def _write_xlsx(folder: Path, sheets: list[tuple[str, _Export]], name: str) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(folder / name), {"strings_to_numbers": False, "strings_to_formulas": False})
    datefmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for sheet_name, ex in sheets:
        ws = wb.add_worksheet(sheet_name)
        r = 0
        for row in ex.preamble + [ex.header] + ex.rows:
            for c, v in enumerate(row):
                if isinstance(v, datetime):
                    ws.write_datetime(r, c, v, datefmt)
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    ws.write_number(r, c, v)
                elif v not in (None, ""):
                    ws.write_string(r, c, str(v))
            r += 1
    wb.close()


def _serial(dt: datetime | None):
    """An Excel date serial number (what a date cell formatted as a number shows)."""
    if dt is None:
        return ""
    return round((dt - datetime(1899, 12, 30)).total_seconds() / 86400, 6)


# ---------------------------------------------------------------------------------------------
TAOBAO_ORDER_HEADER = [
    "订单编号", "买家会员名", "买家应付货款", "买家应付邮费", "总金额", "买家实际支付金额", "订单状态",
    "收货人姓名", "收货地址 ", "联系手机", "订单创建时间", "订单付款时间 ", "发货时间", "物流单号", "物流公司",
    "退款金额", "确认收货时间", "宝贝总数量",
]
TAOBAO_ITEM_HEADER = ["订单编号", "标题", "价格", "购买数量", "商家编码", "商品属性", "订单状态"]
TAOBAO_REFUND_HEADER = ["退款编号", "订单编号", "商家编码", "买家退款金额", "退款原因", "退款的申请时间",
                        "卖家同意时间", "退款完结时间", "退款状态"]


def _taobao_status(o) -> str:
    return {"created": "等待买家付款", "paid": "买家已付款，等待卖家发货", "shipped": "卖家已发货，等待买家确认",
            "delivered": "交易成功", "cancelled": "交易关闭", "refunded": "交易关闭"}[o["status"]]


def _address(o) -> str:
    if not o["province"]:
        return ""
    prov = o["province"]
    if prov in ("北京市", "上海市", "天津市", "重庆市"):
        prov = prov[:-1]  # Taobao writes municipalities without 市: "上海 上海市 浦东新区 …"
    return f"{prov} {o['city']} 某区 某街道{int(_h(o['order_id'])[:3], 16) % 200 + 1}号(100000)"


def write_taobao(folder: Path, w: _World, channel: str, product_names: dict, periods) -> list[dict]:
    """GBK CSV (first download: ids as ="…", phones with a leading ', amounts with 元, dates re-saved
    by Excel) and XLSX (second: date cells, some as serial numbers)."""
    out = []
    for k, (d0, d1, asof) in enumerate(periods, start=1):
        xlsx = k == 2
        orders = w.orders(channel, d0, d1, asof)
        c = w.clock
        oe = _Export(f"{channel}_ExportOrderList_{k}.{'xlsx' if xlsx else 'csv'}", TAOBAO_ORDER_HEADER)
        ie = _Export(f"{channel}_ExportOrderDetailList_{k}.{'xlsx' if xlsx else 'csv'}", TAOBAO_ITEM_HEADER)
        for i, o in enumerate(orders):
            oid = export_order_id(channel, o["order_id"])
            phone = o["phone"]
            # phones unmasked on about half the buyers (older exports), masked on the rest
            shown = "" if phone is None else (masked(phone) if int(_h("mask", o["user_id"])[:2], 16) < 128
                                              else ("'" + phone if not xlsx else phone))
            total = o["items_amount"] + (o["shipping_fee"] or 0)

            def ts(v, i=i):
                if xlsx:
                    dt = c.local(v)
                    return _serial(dt) if (dt is not None and i % 7 == 0) else (dt or "")
                return c.excel(v)

            def money(v):
                if xlsx:
                    return int(v) / 100 if v is not None else ""
                return _money(v) + ("元" if i % 5 == 0 else "")

            row = [oid if xlsx else f'="{oid}"', buyer_key(channel, o["user_id"]), money(o["items_amount"]),
                   money(o["shipping_fee"] or 0), money(total), money(o["pay_amount"]), _taobao_status(o),
                   "*" + "某", _address(o), shown, ts(o["order_ts"]), ts(o["paid_ts"]), ts(o["shipped_at"]),
                   o["tracking"] or "", o["carrier"] or "", money(o["refund"]), ts(o["delivered_at"]),
                   sum(li["quantity"] for li in o["lines"])]
            oe.add(row)
            for li in o["lines"]:
                ie.add([oid if xlsx else f'="{oid}"', product_names.get(li["sku_id"], ""),
                        money(li["unit_price"]), li["quantity"], li["sku_id"], "", _taobao_status(o)])
            if i == len(orders) // 3 and not xlsx:
                bad = list(row)
                bad[0] = '="' + export_order_id(channel, "O9" + o["order_id"][2:]) + '"'
                bad[5] = "168.00（系统计算中…）"
                oe.plant(bad, "bad_export_value", "text inside 买家实际支付金额")
                bad = list(row)
                bad[0] = "1.93012E+18"
                oe.plant(bad, "bad_export_value", "order id mangled into scientific notation by Excel")
        if xlsx:
            _write_xlsx(folder, [("订单报表", oe)], oe.name)
            _write_xlsx(folder, [("宝贝报表", ie)], ie.name)
        else:
            _write_csv(folder, oe, "gb18030")
            _write_csv(folder, ie, "gb18030")
        re_ = _Export(f"{channel}_ExportRefundList_{k}.csv", TAOBAO_REFUND_HEADER)
        for r in w.returns({o["order_id"] for o in orders}, asof):
            re_.add([r["return_id"].replace("R", "9"), export_order_id(channel, r["order_id"]), r["sku_id"] or "",
                     _money(r["amount"]), r["reason"] or "", c.text(r["requested_at"]), c.text(r["approved_at"]),
                     c.text(r["completed_at"]), _taobao_refund_status(r)])
        _write_csv(folder, re_, "gb18030")
        out += [oe.manifest(channel), ie.manifest(channel), re_.manifest(channel)]
    return out


def _taobao_refund_status(r) -> str:
    return {"requested": "买家已经申请退款，等待卖家同意", "approved": "卖家已经同意退款，等待买家退货",
            "rejected": "卖家拒绝退款", "completed": "退款成功"}[r["status"]]


def _returns(w: _World, platform: str, ex: _Export, orders: list[dict], as_of: int, id_digit: str,
             statuses: dict[str, str]) -> _Export:
    """A refund report laid out as JD's and Douyin's: id, order, SKU, quantity, amount, reason, the
    three times and the status."""
    c = w.clock
    for r in w.returns({o["order_id"] for o in orders}, as_of):
        ex.add([r["return_id"].replace("R", id_digit), export_order_id(platform, r["order_id"]), r["sku_id"] or "",
                r["quantity"] or "", _money(r["amount"]), r["reason"] or "", c.text(r["requested_at"]),
                c.text(r["approved_at"]), c.text(r["completed_at"]), statuses[r["status"]]])
    return ex


JD_HEADER = ["订单号", "商品ID", "商品名称", "订购数量", "下单时间", "京东价", "订单金额", "应付金额", "订单状态",
             "下单帐号", "联系电话", "客户地址", "运费金额", "付款确认时间", "出库时间", "快递公司", "运单号", "货号",
             "订单完成时间", "商家备注"]
JD_RETURN_HEADER = ["服务单号", "订单号", "货号", "申请数量", "退款金额", "问题描述", "申请时间", "审核时间",
                    "处理完成时间", "服务单状态"]


def write_jd(folder: Path, w: _World, product_names: dict, periods) -> list[dict]:
    """One row per SKU with the order amounts repeated. First download GBK CSV with thousands
    separators; second XLSX with masked phones and a "(删除)" status prefix on some orders."""
    out = []
    c = w.clock
    status = {"created": "等待付款", "paid": "等待出库", "shipped": "等待确认收货", "delivered": "完成",
              "cancelled": "已取消", "refunded": "退款成功"}
    for k, (d0, d1, asof) in enumerate(periods, start=1):
        xlsx = k == 2
        orders = w.orders("jd", d0, d1, asof)
        ex = _Export(f"jd_订单导出_{k}.{'xlsx' if xlsx else 'csv'}", JD_HEADER)

        def money(v):
            if v is None:
                return ""
            s = f"{int(v) // 100:,}.{int(v) % 100:02d}"
            return s if not xlsx else s.replace(",", "")

        for i, o in enumerate(orders):
            oid = export_order_id("jd", o["order_id"])
            st = status[o["status"]]
            if xlsx and st == "已取消" and i % 2 == 0:
                st = "(删除)" + st
            phone = o["phone"]
            shown = "" if phone is None else (phone[:1] + "******" + phone[-4:] if xlsx else phone)
            rows = []
            for li in o["lines"]:
                rows.append([oid, str(int(_h("jdsku", li["sku_id"])[:8], 16)), product_names.get(li["sku_id"], ""),
                             li["quantity"], c.text(o["order_ts"]), money(li["unit_price"]), money(o["items_amount"]),
                             money(o["pay_amount"]), st, buyer_key("jd", o["user_id"]), shown, _address(o),
                             money(o["shipping_fee"] or 0), c.text(o["paid_ts"]), c.text(o["shipped_at"]),
                             o["carrier"] or "", o["tracking"] or "", li["sku_id"], c.text(o["delivered_at"]), ""])
            for r in rows:
                ex.add(r)
            if i == len(orders) // 2 and len(rows) > 1 and not xlsx:
                fake = export_order_id("jd", "O9" + o["order_id"][2:])
                for j, r in enumerate(rows):
                    bad = list(r)
                    bad[0] = fake
                    if j == 1:
                        bad[6] = money(o["items_amount"] + 100)
                        ex.plant(bad, "inconsistent_order", "订单金额 differs between two rows of one order")
                    else:
                        ex.plant(bad, "with_refused_row", "the other row of that order")
            if i == len(orders) // 4 and xlsx:
                bad = list(rows[0])
                bad[0] = export_order_id("jd", "O8" + o["order_id"][2:])
                bad[7] = "168.00（系统计算中…）"
                ex.plant(bad, "bad_export_value", "text inside 应付金额")
        if xlsx:
            _write_xlsx(folder, [("订单", ex)], ex.name)
        else:
            _write_csv(folder, ex, "gb18030")
        re_ = _returns(w, "jd", _Export(f"jd_售后服务单_{k}.csv", JD_RETURN_HEADER), orders, asof, "7",
                       {"requested": "待审核", "approved": "待收货", "rejected": "审核不通过", "completed": "已完成"})
        _write_csv(folder, re_, "gb18030")
        out += [ex.manifest("jd"), re_.manifest("jd")]
    return out


DOUYIN_HEADER = ["主订单编号", "子订单编号", "选购商品", "商品规格", "商品数量", "商品单价", "商家编码", "订单应付金额",
                 "运费", "平台实际承担优惠金额", "商家实际承担优惠金额", "达人实际承担优惠金额", "收件人", "收件人手机号",
                 "省", "市", "订单提交时间", "支付完成时间", "发货时间", "签收时间", "快递公司", "快递单号", "订单状态",
                 "达人ID", "流量来源"]
DOUYIN_RETURN_HEADER = ["售后单号", "订单编号", "商家编码", "申请数量", "退款金额", "售后原因", "申请时间", "同意时间",
                        "完结时间", "售后状态"]


def _split(total: int, weights: list[int]) -> list[int]:
    """Cents split in proportion to weights, the remainder on the last part (sums exactly)."""
    s = sum(weights) or 1
    parts = [total * wt // s for wt in weights[:-1]]
    return parts + [total - sum(parts)]


def write_douyin(folder: Path, w: _World, product_names: dict, periods) -> list[dict]:
    """First download XLSX with order amounts repeated on every line; second a UTF-8-BOM CSV with
    amounts split per line. Masked phones, no buyer id. 售后 (refunds) as a separate CSV."""
    out = []
    c = w.clock
    status = {"created": "待支付", "paid": "待发货", "shipped": "已发货", "delivered": "已完成",
              "cancelled": "已关闭", "refunded": "退款成功"}
    for k, (d0, d1, asof) in enumerate(periods, start=1):
        per_line = k == 2
        orders = w.orders("douyin", d0, d1, asof)
        ex = _Export(f"douyin_订单_{k}.{'csv' if per_line else 'xlsx'}", DOUYIN_HEADER)
        for o in orders:
            oid = export_order_id("douyin", o["order_id"])
            lines = o["lines"]
            gross = [li["unit_price"] * li["quantity"] for li in lines]
            pays = _split(o["pay_amount"], gross) if per_line else [o["pay_amount"]] * len(lines)
            ships = _split(o["shipping_fee"] or 0, gross) if per_line else [o["shipping_fee"] or 0] * len(lines)
            discs = _split(o["discount_amount"] or 0, gross) if per_line else [o["discount_amount"] or 0] * len(lines)
            phone = masked(o["phone"]) if o["phone"] else ""
            for j, li in enumerate(lines):
                ex.add([oid, f"{oid}{j + 1}", product_names.get(li["sku_id"], ""), "", li["quantity"],
                        _money(li["unit_price"]), li["sku_id"], _money(pays[j]), _money(ships[j]), "0.00",
                        _money(discs[j]), "0.00", "*" + "某", phone, o["province"] or "", o["city"] or "",
                        c.text(o["order_ts"]), c.text(o["paid_ts"]), c.text(o["shipped_at"]),
                        c.text(o["delivered_at"]), o["carrier"] or "", o["tracking"] or "", status[o["status"]],
                        "", "自然流量"])
        if per_line:
            _write_csv(folder, ex, "utf-8-sig")
        else:
            _write_xlsx(folder, [("订单", ex)], ex.name)
        re_ = _returns(w, "douyin", _Export(f"douyin_售后_{k}.csv", DOUYIN_RETURN_HEADER), orders, asof, "6",
                       {"requested": "待商家处理", "approved": "待买家退货", "rejected": "拒绝售后", "completed": "退款成功"})
        _write_csv(folder, re_, "utf-8-sig")
        out += [ex.manifest("douyin"), re_.manifest("douyin")]
    return out


PDD_HEADER = ["订单号", "商品", "商品规格", "商品数量(件)", "商品单价(元)", "商家编码-SKU维度", "商品总价(元)", "邮费(元)",
              "店铺优惠折扣(元)", "平台优惠折扣(元)", "多多支付立减金额(元)", "用户实付金额(元)", "商家实收金额(元)",
              "订单状态", "订单成交时间", "支付时间", "发货时间", "确认收货时间", "快递公司", "快递单号", "收货人", "手机",
              "省", "市"]
PDD_RETURN_HEADER = ["售后编号", "订单号", "退款金额(元)", "售后原因", "申请时间", "退款完成时间", "售后状态"]


def write_pinduoduo(folder: Path, w: _World, product_names: dict, periods) -> list[dict]:
    """One row per order (single SKU). CSV with the header on line 3 under a title, tabs inside
    cells; first download UTF-8 with BOM, second GB18030. Refunds: XLSX, sheet 售后信息."""
    out = []
    c = w.clock
    status = {"created": "待支付", "paid": "待发货", "shipped": "已发货，待签收", "delivered": "已签收",
              "cancelled": "已取消", "refunded": "退款成功"}
    for k, (d0, d1, asof) in enumerate(periods, start=1):
        orders = w.orders("pinduoduo", d0, d1, asof)
        ex = _Export(f"pinduoduo_orders_{k}.csv", PDD_HEADER, preamble=[["订单列表导出"], ["导出时间", c.text(0)]])
        for o in orders:
            li = o["lines"][0]
            ex.add([export_order_id("pinduoduo", o["order_id"]) + "\t", product_names.get(li["sku_id"], "") + "\t", "",
                    li["quantity"], _money(li["unit_price"]), "\t" + li["sku_id"], _money(o["items_amount"]),
                    _money(o["shipping_fee"] or 0), _money(o["discount_amount"] or 0), "0.00", "0.00",
                    _money(o["pay_amount"]), _money(o["pay_amount"]), status[o["status"]], c.text(o["order_ts"]),
                    c.text(o["paid_ts"]), c.text(o["shipped_at"]), c.text(o["delivered_at"]), o["carrier"] or "",
                    o["tracking"] or "", "*" + "某", masked(o["phone"]) if o["phone"] else "", o["province"] or "",
                    o["city"] or ""])
        _write_csv(folder, ex, "utf-8-sig" if k == 1 else "gb18030")
        re_ = _Export(f"pinduoduo_售后_{k}.xlsx", PDD_RETURN_HEADER)
        rs = {"requested": "待商家处理", "approved": "待买家退货", "rejected": "驳回", "completed": "退款成功"}
        for r in w.returns({o["order_id"] for o in orders}, asof):
            re_.add([r["return_id"].replace("R", "5"), export_order_id("pinduoduo", r["order_id"]),
                     int(r["amount"]) / 100, r["reason"] or "", c.local(r["requested_at"]) or "",
                     c.local(r["completed_at"]) or "", rs[r["status"]]])
        notes = _Export("说明", ["说明"])
        notes.add(["本表为售后信息导出"])
        _write_xlsx(folder, [("说明", notes), ("售后信息", re_)], re_.name)
        m = re_.manifest("pinduoduo")
        m["file"] = f"{re_.name}!售后信息"
        out += [ex.manifest("pinduoduo"), m]
    return out


YOUZAN_ORDER_HEADER = ["订单号", "买家昵称", "买家手机号", "下单时间", "付款时间", "商品金额合计", "运费", "店铺优惠合计",
                       "订单实付金额", "退款金额", "订单状态", "收货人省份", "收货人城市", "发货时间", "交易完成时间",
                       "物流公司", "运单号"]
YOUZAN_ITEM_HEADER = ["订单号", "商品名称", "商品编码", "商品单价", "商品数量", "商品优惠"]


def write_youzan(folder: Path, w: _World, product_names: dict, periods) -> list[dict]:
    """UTF-8 CSV, 订单维度 + 商品维度; full phone numbers."""
    out = []
    c = w.clock
    status = {"created": "待付款", "paid": "待发货", "shipped": "已发货", "delivered": "交易完成",
              "cancelled": "交易关闭", "refunded": "交易关闭"}
    for k, (d0, d1, asof) in enumerate(periods, start=1):
        orders = w.orders("youzan", d0, d1, asof)
        oe = _Export(f"youzan_订单维度_{k}.csv", YOUZAN_ORDER_HEADER)
        ie = _Export(f"youzan_商品维度_{k}.csv", YOUZAN_ITEM_HEADER)
        for o in orders:
            oid = export_order_id("youzan", o["order_id"])
            oe.add([oid, buyer_key("youzan", o["user_id"]), o["phone"] or "", c.text(o["order_ts"]),
                    c.text(o["paid_ts"]), _money(o["items_amount"]), _money(o["shipping_fee"] or 0),
                    _money(o["discount_amount"] or 0), _money(o["pay_amount"]), _money(o["refund"]),
                    status[o["status"]], o["province"] or "", o["city"] or "", c.text(o["shipped_at"]),
                    c.text(o["delivered_at"]), o["carrier"] or "", o["tracking"] or ""])
            for li in o["lines"]:
                ie.add([oid, product_names.get(li["sku_id"], ""), li["sku_id"], _money(li["unit_price"]),
                        li["quantity"], _money(li["discount_amount"] or 0)])
        _write_csv(folder, oe, "utf-8")
        _write_csv(folder, ie, "utf-8")
        out += [oe.manifest("youzan"), ie.manifest("youzan")]
    return out


SHOPIFY_HEADER = ["Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Currency",
                  "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Created at",
                  "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku", "Lineitem discount",
                  "Shipping Province Name", "Shipping City", "Cancelled at", "Refunded Amount", "Phone", "Id"]


def write_shopify(folder: Path, w: _World, product_names: dict, periods) -> list[dict]:
    """orders_export.csv: one row per line item, order fields on the first row only, UTC offsets."""
    out = []
    c = w.clock
    for k, (d0, d1, asof) in enumerate(periods, start=1):
        orders = w.orders("shopify", d0, d1, asof)
        ex = _Export(f"orders_export_{k}.csv", SHOPIFY_HEADER)
        for o in orders:
            fin = {"created": "pending", "cancelled": "voided", "refunded": "refunded"}.get(
                o["status"], "partially_refunded" if o["refund"] else "paid")
            ful = "fulfilled" if o["shipped_at"] is not None else "unfulfilled"
            items, disc = o["items_amount"], o["discount_amount"] or 0
            phone = ("'+86" + o["phone"]) if o["phone"] else ""
            for j, li in enumerate(o["lines"]):
                line = [li["quantity"], product_names.get(li["sku_id"], ""), _money(li["unit_price"]), li["sku_id"],
                        _money(li["discount_amount"] or 0)]
                if j == 0:
                    ex.add([f"#{o['order_id'][1:]}", buyer_key("shopify", o["user_id"]), fin, c.utc(o["paid_ts"]),
                            ful, c.utc(o["shipped_at"]), "CNY", _money(items - disc), _money(o["shipping_fee"] or 0),
                            "0.00", _money(o["pay_amount"]), "", _money(disc), c.utc(o["order_ts"])] + line
                           + [o["province"] or "", o["city"] or "",
                              c.utc(o["order_ts"] + 1800) if o["status"] == "cancelled" else "",
                              _money(o["refund"]), phone, str(5600000000000 + int(o["order_id"][1:]))])
                else:
                    ex.add([f"#{o['order_id'][1:]}", buyer_key("shopify", o["user_id"])] + [""] * 12 + line
                           + ["", "", "", "", "", ""])
        _write_csv(folder, ex, "utf-8")
        out.append(ex.manifest("shopify"))
    return out


def write_exports(tables: dict[str, pl.DataFrame], exports_dir: Path, *, days: int, offset: int) -> dict:
    """Write every platform's exports and manifest.json; returns the manifest."""
    exports_dir = Path(exports_dir)
    w = _World(tables, _Clock(offset))
    names = dict(tables["products"].select("sku_id", "product_name").iter_rows())
    mid = days // 2
    periods = [(0, mid, mid), (0, days + 1, days + 7)]
    files = []
    for platform, writer in (("taobao", lambda f: write_taobao(f, w, "taobao", names, periods)),
                             ("tmall", lambda f: write_taobao(f, w, "tmall", names, periods)),
                             ("jd", lambda f: write_jd(f, w, names, periods)),
                             ("douyin", lambda f: write_douyin(f, w, names, periods)),
                             ("pinduoduo", lambda f: write_pinduoduo(f, w, names, periods)),
                             ("youzan", lambda f: write_youzan(f, w, names, periods)),
                             ("shopify", lambda f: write_shopify(f, w, names, periods))):
        folder = exports_dir / platform
        folder.mkdir(parents=True, exist_ok=True)
        files += writer(folder)
    identity = _identity_rows(tables)
    with open(exports_dir / "identity_map.csv", "w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh)
        wr.writerow(["platform", "buyer_key", "phone"])
        wr.writerows(identity)
    manifest = {"files": files, "identity_map_rows": len(identity),
                "order_id_scheme": "see dagster_project/lib/generator/exports.py export_order_id"}
    (exports_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def _identity_rows(tables) -> list[list[str]]:
    """Taobao/Tmall/JD buyers with a phone: what a membership binding gives the shop."""
    users = tables["users"].filter(pl.col("channel").is_in(["taobao", "tmall", "jd"]) & pl.col("_phone").is_not_null())
    buyers = set(tables["orders"].get_column("user_id").unique().to_list())
    return [[ch, buyer_key(ch, uid), phone] for uid, ch, phone in users.select("user_id", "channel", "_phone").iter_rows()
            if uid in buyers]
