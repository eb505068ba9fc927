"""Tests of the synthetic demo-data generator (dagster_project.lib.generator)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_project.lib.contract import AMOUNT, DATE, INT, SOURCES, TS
from dagster_project.lib.generator import generate
from dagster_project.lib.generator.writers import FORMAT

SMALL = dict(customers=300, days=40, seed=7, bad_rate=0.02)
START = date(2026, 5, 20)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    summary = generate(root / "landing", **SMALL)
    truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
    return root / "landing", truth, summary


def _files(landing: Path) -> dict[str, bytes]:
    return {str(p.relative_to(landing)): p.read_bytes() for p in sorted(landing.rglob("*")) if p.is_file()}


def _decode_csv(raw: bytes, name: str) -> list[list[str]]:
    """Rows (header first) of a landed CSV/CSV.GZ file; invalid UTF-8 kept as surrogates."""
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    if raw.startswith(b"\xef\xbb\xbf"):
        text = raw[3:].decode("utf-8", errors="surrogateescape")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", errors="surrogateescape")
    return list(csv.reader(io.StringIO(text, newline="")))


def _landed(folder: Path) -> list[Path]:
    """The data files of one source folder, sorted, without their `.done` markers."""
    return sorted(p for p in folder.iterdir() if not p.name.endswith(".done"))


def _rows(landing: Path, source: str, path: Path) -> tuple[list[str], list[dict]]:
    cols = list(SOURCES[source].column_names)
    fmt = FORMAT[source]
    if fmt == "parquet":
        t = pq.read_table(path)
        return t.column_names, t.to_pylist()
    if fmt == "jsonl":
        out = []
        for line in path.read_bytes().split(b"\n"):
            if line:
                out.append(json.loads(line.decode("utf-8", errors="surrogateescape")))
        return cols, out
    rows = _decode_csv(path.read_bytes(), path.name)
    header = rows[0]
    return header, [{c: (v if v != "" else None) for c, v in zip(header, r)} for r in rows[1:]]


def test_all_sources_and_formats(run):
    landing, truth, summary = run
    assert sorted(p.name for p in landing.iterdir()) == sorted(SOURCES)
    for src in SOURCES:
        files = _landed(landing / src)
        assert files, src
        # the generator marks each file finished, so a run right after it loads without waiting
        markers = sorted(p for p in (landing / src).iterdir() if p.name.endswith(".done"))
        assert [m.name for m in markers] == [f.name + ".done" for f in files]
        assert all(m.stat().st_mtime_ns >= f.stat().st_mtime_ns for m, f in zip(markers, files))
        for f in files:
            assert f.name.startswith(f"{src}_") and f.name.endswith("." + FORMAT[src]), f.name
            datetime.strptime(f.name[len(src) + 1:len(src) + 9], "%Y%m%d")
    # a GB18030 users file (day index 2) with Chinese text that is not valid UTF-8
    gbk = (landing / "users" / f"users_{(START + timedelta(days=2)):%Y%m%d}.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
    assert any(ch in gbk.decode("gb18030") for ch in "省市")
    prod = (landing / "products" / f"products_{START:%Y%m%d}.csv").read_bytes().decode("gb18030")
    assert "维生素" in prod
    assert all(c in prod for c in ("vitamins", "protein_powder", "clothing", "home", "beauty", "fresh_food"))
    # BOM on weekend orders files (2026-05-23 is a Saturday), not on weekdays
    sat = (landing / "orders" / "orders_20260523.csv").read_bytes()
    assert sat.startswith(b"\xef\xbb\xbf")
    assert not (landing / "orders" / "orders_20260521.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    gz = next(iter(_landed(landing / "inventory_snapshots"))).read_bytes()
    assert gz[:2] == b"\x1f\x8b" and gz[4:8] == b"\x00\x00\x00\x00" and not gz[3] & 0x08  # mtime 0, no name
    t = pq.read_table(next(iter(_landed(landing / "shipments"))))
    assert t.schema.field("shipped_at").type == pa.timestamp("us", tz="UTC")
    line = next(iter(_landed(landing / "events"))).read_bytes().split(b"\n")[0]
    obj = json.loads(line)
    assert list(obj) == list(SOURCES["events"].column_names)
    assert obj["event_ts"].endswith("Z")


def test_headers_match_contract(run):
    landing, _, _ = run
    for src in FORMAT:
        for f in _landed(landing / src):
            header, _ = _rows(landing, src, f)
            assert list(header) == list(SOURCES[src].column_names), f.name


def test_deterministic(run, tmp_path):
    landing, _, _ = run
    generate(tmp_path / "a" / "landing", **SMALL)
    a = _files(tmp_path / "a" / "landing")
    assert a == _files(landing)
    assert (tmp_path / "a" / "truth.json").read_bytes() == (landing.parent / "truth.json").read_bytes()
    generate(tmp_path / "b" / "landing", **{**SMALL, "seed": SMALL["seed"] + 1})
    b = _files(tmp_path / "b" / "landing")
    assert a != b


def _planted(truth) -> dict[tuple[str, int], dict]:
    return {(b["file_name"], b["row_number"]): b for b in truth["bad_rows"]}


def _is_bad_type(kind: str, v) -> bool:
    if v is None:
        return False
    s = str(v)
    try:
        if kind == INT:
            int(s)
        elif kind == AMOUNT:
            float(s)
            if "," in s:
                return True
        elif kind == TS:
            datetime.fromisoformat(s.replace("Z", "+00:00"))
        elif kind == DATE:
            date.fromisoformat(s)
        return False
    except ValueError:
        return True


def test_bad_rows_match_truth(run):
    landing, truth, _ = run
    planted = _planted(truth)
    assert truth["bad_rows_total"] == len(planted) > 0
    assert sum(truth["bad_rows_per_source"].values()) == truth["bad_rows_total"]
    rules_seen = set()
    all_order_ids = set()
    for f in _landed(landing / "orders"):
        all_order_ids |= {r["order_id"] for r in _rows(landing, "orders", f)[1]}
    for src in SOURCES:
        spec = SOURCES[src]
        for f in _landed(landing / src):
            _, rows = _rows(landing, src, f)
            good = truth["rows_per_file"][src][f.name]
            bad_here = {k[1]: v for k, v in planted.items() if k[0] == f.name}
            assert len(rows) == good + len(bad_here), f.name
            for i, r in enumerate(rows, 1):
                b = bad_here.get(i)
                if b is None:
                    continue
                rule, col = b["rule"], b["column"]
                rules_seen.add(rule)
                if rule == "duplicate_key":
                    assert r in rows[:i - 1]
                elif rule == "missing_required":
                    assert spec.column(col).required and r[col] is None
                elif rule == "bad_enum":
                    assert r[col] not in spec.column(col).enum
                elif rule == "negative_amount":
                    assert str(r[col]).startswith("-")
                elif rule == "bad_type":
                    assert _is_bad_type(spec.column(col).kind, r[col]), (f.name, i, col, r[col])
                elif rule == "unknown_key":
                    assert src == "order_items" and r["order_id"] not in all_order_ids
                elif rule == "bad_encoding":
                    raw = str(r[col]).encode("utf-8", errors="surrogateescape")
                    with pytest.raises(UnicodeDecodeError):
                        raw.decode("utf-8")
    assert {"duplicate_key", "missing_required", "bad_type", "bad_enum", "bad_encoding"} <= rules_seen


def test_good_rows_valid(run):
    """Good rows: unique keys per file, pay arithmetic, FKs, timestamps inside the window."""
    landing, truth, _ = run
    planted = _planted(truth)
    lo = datetime(2026, 5, 19, 16, tzinfo=timezone.utc)
    hi = lo + timedelta(days=SMALL["days"])
    skus = set()
    for f in _landed(landing / "products"):
        skus |= {r["sku_id"] for r in _rows(landing, "products", f)[1]}
    order_ids = set()
    for src in SOURCES:
        spec = SOURCES[src]
        for f in _landed(landing / src):
            _, rows = _rows(landing, src, f)
            keys = set()
            for i, r in enumerate(rows, 1):
                if (f.name, i) in planted:
                    continue
                k = tuple(r[c] for c in spec.key)
                assert k not in keys, (f.name, k)
                keys.add(k)
                for c in spec.columns:
                    v = r[c.name]
                    if c.required:
                        assert v is not None, (f.name, i, c.name)
                    if v is None:
                        continue
                    if c.enum:
                        assert v in c.enum
                    if c.kind == TS:
                        if isinstance(v, str):
                            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
                            if t.tzinfo is None:
                                t = t.replace(tzinfo=timezone(timedelta(hours=8)))
                        else:
                            t = v
                        assert lo <= t < hi, (f.name, c.name, v)
                    if c.kind == AMOUNT:
                        s = str(v)
                        assert float(s) >= 0 and len(s.split(".")[1]) == 2
                if src == "orders":
                    order_ids.add(r["order_id"])
                    cents = {c: round(float(r[c] or 0) * 100) for c in
                             ("items_amount", "discount_amount", "shipping_fee", "pay_amount")}
                    assert cents["pay_amount"] == (cents["items_amount"] - cents["discount_amount"]
                                                   + cents["shipping_fee"])
                if src == "order_items":
                    assert r["sku_id"] in skus
    for f in _landed(landing / "order_items"):
        _, rows = _rows(landing, "order_items", f)
        for i, r in enumerate(rows, 1):
            if (f.name, i) not in planted:
                assert r["order_id"] in order_ids


def test_truth_sane(run):
    _, truth, summary = run
    c = truth["counts"]
    assert c["cross_channel_customers"] > 0
    assert 0 < c["buyers"] <= c["customers"] <= c["users"]

    def rates(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if ("rate" in k or k in ("coverage", "buyer_share", "payment_dropoff")) and isinstance(v, float):
                    yield k, v
                else:
                    yield from rates(v)
        elif isinstance(o, list):
            for v in o:
                yield from rates(v)
    found = list(rates({k: v for k, v in truth.items() if k != "planted"}))
    assert found
    for k, v in found:
        assert 0.0 <= v <= 1.0, k
    steps = truth["funnel"]["steps"]
    for counts in [truth["funnel"]["all"], *truth["funnel"]["by_platform"].values()]:
        vals = [counts[s] for s in steps]
        assert all(a >= b for a, b in zip(vals, vals[1:])), counts
    assert truth["funnel"]["all"]["payment_success"] > 0
    assert truth["tracking_coverage"]["coverage"] > 0.9
    assert set(truth["experiment"]["arms"]) == {"control", "treatment"}
    assert truth["experiment"]["planted_factor"] == 1.25
    assert summary["rows_per_source"] == truth["rows_per_source"]
    assert all(summary["rows_per_source"][s] > 0 for s in SOURCES)
    assert truth["definitions"]["valid_order"]


def test_tiny_is_fast(tmp_path):
    s = generate(tmp_path / "landing", customers=200, days=30, seed=1)
    assert s["seconds"] < 5
    assert (tmp_path / "truth.json").exists()
    assert not (tmp_path / "landing" / "truth.json").exists()


@pytest.mark.parametrize("customers,seed", [(1, 1), (3, 9), (20, 1)])
def test_a_world_with_no_orders_or_touches_generates(customers, seed):
    """A shop's first week with a handful of customers may have no order, touch or event at all: every plant
    drawn from the finished rows (ad spend, private domain, win-back, referral) then has nothing to draw from,
    and the world still generates (their empty tables come typed Null, which a join on user_id used to refuse)."""
    from dagster_project.lib.generator.world import build_world

    w = build_world(customers=customers, days=7, seed=seed, start=START, timezone="Asia/Shanghai")
    assert w.tables["users"].height >= customers
    assert set(w.tables) >= {"orders", "ad_spend", "private_domain_events", "marketing_touches", "events"}


def test_member_events_follow_users_member_level_and_paid_orders():
    """The membership history ends at the level the users file gives, members only, and every points
    earning is the planted rate on the whole yuan of a paid order of the member's own account."""
    from dagster_project.lib.generator.members import MEMBER_PARAMS
    from dagster_project.lib.generator.world import build_world

    world = build_world(customers=300, days=40, seed=7, start=START, timezone="Asia/Shanghai")
    users, events, orders = world.tables["users"], world.tables["member_events"], world.tables["orders"]
    level = dict(zip(users["user_id"].to_list(), users["member_level"].to_list()))
    last: dict[str, int] = {}
    for uid, kind, lv in events.sort("event_ts", "event_id").select("user_id", "type", "level").rows():
        assert level[uid] >= 1, uid
        if kind in ("join", "level_up", "level_down"):
            last[uid] = lv
    assert last == {u: lv for u, lv in level.items() if lv >= 1}
    assert world.planted["member_events"] == MEMBER_PARAMS
    pay = dict(zip(orders["order_id"].to_list(), orders["pay_amount"].to_list()))
    owner = dict(zip(orders["order_id"].to_list(), orders["user_id"].to_list()))
    earned = events.filter(events["type"] == "points_earned")
    assert earned.height > 0
    for uid, oid, pts in earned.select("user_id", "order_id", "points").rows():
        assert owner[oid] == uid
        assert pts == pay[oid] // 100 * MEMBER_PARAMS["points_per_yuan"]
    assert events["event_id"].n_unique() == events.height
    # joins are spread over the days after registering, not piled onto the window's last day
    joins = events.filter(events["type"] == "join").group_by("_day").len().sort("_day")["len"].to_list()
    assert joins[-1] <= 1.5 * max(joins[-8:-1]) + 3, joins


def test_ad_spend_plants_each_channels_cac_month_by_month():
    """A paid channel's spend in a month is its planted CAC times the customers whose first valid order
    is on that channel in that month (counted here from the orders and users tables); offline has none;
    keys are unique, brand spend has no campaign, clicks never exceed impressions."""
    from collections import defaultdict

    from dagster_project.lib.generator.ad_spend import ACQUISITION_PARAMS
    from dagster_project.lib.generator.world import build_world

    world = build_world(customers=300, days=40, seed=7, start=START, timezone="Asia/Shanghai")
    ad, orders, users = world.tables["ad_spend"], world.tables["orders"], world.tables["users"]
    assert world.planted["acquisition"] == ACQUISITION_PARAMS
    customer = {u: p if p is not None else "user:" + u for u, p in zip(users["user_id"], users["phone_hash"])}
    current = {}
    for oid, uid, ch, ts, paid, status, day in orders.select(
            "order_id", "user_id", "channel", "order_ts", "paid_ts", "status", "_day").rows():
        if oid not in current or day >= current[oid][-1]:
            current[oid] = (uid, ch, ts, paid, status, day)
    first = {}
    for oid, (uid, ch, ts, paid, status, _) in current.items():
        c = customer[uid]
        if paid is not None and status != "cancelled" and (c not in first or (ts, oid) < first[c][:2]):
            first[c] = (ts, oid, ch)
    offset = world.clock.offset
    new = defaultdict(int)
    for ts, _, ch in first.values():
        new[(datetime.fromtimestamp(ts + offset, timezone.utc).strftime("%Y-%m"), ch)] += 1
    spent = defaultdict(int)
    for d, ch, cents in ad.select("date", "channel", "spend").rows():
        spent[(d[:7], ch)] += cents
    cac = ACQUISITION_PARAMS["cac_yuan"]
    assert spent == {k: round(cac[k[1]] * 100) * n for k, n in new.items() if k[1] in cac}
    assert ad["channel"].is_in(["offline"]).sum() == 0
    assert ad.select("date", "channel", "campaign_id").is_duplicated().sum() == 0
    assert ad["campaign_id"].null_count() > 0 and ad["campaign_id"].null_count() < ad.height
    assert (ad["clicks"] <= ad["impressions"]).all() and (ad["spend"] >= 0).all()


def test_planted_behaviour_properties_follow_their_weights():
    """A product view's source, a payment submit's method and a search's keyword are drawn from the planted
    weights (their own stream), on those event types only; the other events carry no properties but the
    referral share codes."""
    from dagster_project.lib.generator.events import BEHAVIOUR_PARAMS
    from dagster_project.lib.generator.world import build_world

    world = build_world(customers=300, days=40, seed=7, start=START, timezone="Asia/Shanghai")
    assert world.planted["behaviour"] == BEHAVIOUR_PARAMS
    events = world.tables["events"]
    keys = {"product_view": ("source", "view_source_weights"), "payment_submit": ("pay_method", "pay_method_weights"),
            "search": ("keyword", "search_keyword_weights")}
    referral = ("share_code", "ref_share_code")  # planted on their own stream by referral.py
    for name, props in events.select("event_name", "properties").rows():
        own = {k for k in json.loads(props) if k not in referral} if props else set()
        assert bool(own) == (name in keys), name
    for name, (key, weights) in keys.items():
        values = [json.loads(p)[key] for p in events.filter(events["event_name"] == name)["properties"].to_list()]
        assert len(values) > 100, name
        for value, weight in BEHAVIOUR_PARAMS[weights].items():
            noise = 4 * (weight * (1 - weight) / len(values)) ** 0.5  # four standard errors
            assert values.count(value) / len(values) == pytest.approx(weight, abs=noise), (name, value)


def test_private_domain_events_are_their_own_stream_and_plausible():
    """private_domain_events come from their own stream: the other tables are what they were without them
    (same rows as a world built with the module's maker stubbed out); reads and clicks follow their send,
    group events name their group, event ids are unique, and some contacts are unbound (no user_id)."""
    from unittest import mock

    import polars as pl

    from dagster_project.lib.generator import world as world_mod
    from dagster_project.lib.generator.private_domain import PD_PARAMS
    from dagster_project.lib.generator.world import build_world

    w = build_world(customers=300, days=40, seed=7, start=START, timezone="Asia/Shanghai")
    pde = w.tables["private_domain_events"]
    assert w.planted["private_domain"] == PD_PARAMS
    with mock.patch.object(world_mod, "make_private_domain_events", return_value=pde.clear()):
        bare = build_world(customers=300, days=40, seed=7, start=START, timezone="Asia/Shanghai")
    for name in ("orders", "users", "events", "member_events", "ad_spend"):
        assert bare.tables[name].equals(w.tables[name]), name
    assert pde["event_id"].is_unique().all()
    msg = pde.filter(pl.col("sent_at").is_not_null())
    assert msg.height and (msg["event_ts"] >= msg["sent_at"]).all()
    assert set(msg["event_type"].unique()) == {"message_read", "link_clicked"}
    assert pde.filter((pl.col("channel") == "wecom_group") & pl.col("group_id").is_null()).height == 0
    assert 0 < pde["user_id"].null_count() < pde.height
    assert set(pde["event_type"].unique()) <= set(SOURCES["private_domain_events"].column("event_type").enum)
def test_behaviour_target_plants_move_only_browse_hours_and_add_touchpoints(monkeypatch):
    """The seeds' behaviour targets (evening 65%, content 3%, live room 25%) are planted on their own stream after
    every draw of the main one: every other source is the same as without them, and the events differ only in
    the browse sessions' times (same day) and the added content_view / live_view events."""
    import numpy as np
    import polars as pl

    from dagster_project.lib.generator import events as events_module
    from dagster_project.lib.generator import world as world_mod
    from dagster_project.lib.generator.world import build_world

    kwargs = dict(customers=300, days=40, seed=7, start=START, timezone="Asia/Shanghai")
    # the referral plant codes the first events of new users, which the moved hours change: it is left
    # out of both worlds here (test_marts_referral checks it on its own)
    monkeypatch.setattr(world_mod, "plant_referrals", lambda seed, clock, events, *a: (events, {}))
    planted = build_world(**kwargs)
    monkeypatch.setattr(events_module, "_plant_touchpoint_conversion",
                        lambda rng, own, code, ts, *a: (np.zeros(0, np.int64), np.zeros(0, code.dtype),
                                                        np.zeros(0, np.int64), np.zeros(0, np.int64)))
    monkeypatch.setattr(events_module, "_plant_evening_hours", lambda rng, clock, own, ts, *a, **k: ts)
    plain = build_world(**kwargs)
    for name, table in plain.tables.items():
        if name != "events":
            assert planted.tables[name].equals(table), name
    assert {k: v for k, v in planted.planted.items() if k != "behaviour"} == {
        k: v for k, v in plain.planted.items() if k != "behaviour"}

    before, after = plain.tables["events"], planted.tables["events"]
    joined = before.join(after, on="event_id", how="left", suffix="_p")
    assert joined["event_ts_p"].null_count() == 0
    # a live_view's campaign is the one running on the event's day, the file day follows it too
    for c in (c for c in before.columns if c not in ("event_id", "event_ts", "_day", "campaign_id")):
        assert joined[c].equals(joined[f"{c}_p"]), c
    moved = joined.filter(pl.col("event_ts") != pl.col("event_ts_p"))
    assert moved.height > 0
    # moved: whole sessions of browse visits, by the same amount, within the day the session began on
    purchase_sessions = set(before.filter(pl.col("order_id").is_not_null())["session_id"])
    assert not set(moved["session_id"]) & purchase_sessions
    shifts = moved.group_by("session_id").agg((pl.col("event_ts_p") - pl.col("event_ts")).n_unique().alias("n"))
    assert (shifts["n"] == 1).all()
    offset = planted.clock.offset
    starts = joined.group_by("session_id").agg(pl.col("event_ts").min().alias("a"),
                                               pl.col("event_ts_p").min().alias("b"))
    assert ((starts["a"] + offset) // 86400 == (starts["b"] + offset) // 86400).all()
    # added: touchpoint events only, in existing sessions, without properties
    added = after.join(before, on="event_id", how="anti")
    assert set(added["event_name"]) <= {"content_view", "live_view"} and added.height > 0
    assert set(added["session_id"]) <= set(before["session_id"])
    assert added["properties"].null_count() == added.height
    share = lambda t: float(((t["event_ts"] + offset) // 3600 % 24 >= 18).mean())  # noqa: E731
    assert share(after) == pytest.approx(events_module.BEHAVIOUR_PARAMS["evening_event_share_target"], abs=0.01)
    assert share(before) < 0.5
def test_campaign_and_winback_plants_move_no_main_stream_draw(monkeypatch):
    """campaign_effects.py draws on its own stream: without it the same orders (ids, buyers, times, statuses)
    and events come out; it only re-chooses campaign tags (and with them the tagged orders' prices) and adds
    win-back touches, all labelled with a campaign of the calendar."""
    import polars as pl

    from dagster_project.lib.generator import orders, world

    kw = dict(customers=800, days=130, seed=5, start=date(2026, 5, 20), timezone="Asia/Shanghai")
    planted = world.build_world(**kw)
    monkeypatch.setattr(orders, "restamp_campaign_orders", lambda seed, clock, c, camp, in_camp, *a: in_camp)
    monkeypatch.setattr(world, "make_winback_touches", lambda seed, clock, u, o, e, touches, c: touches)
    plain = world.build_world(**kw)
    cols = ["order_id", "user_id", "order_ts", "paid_ts", "status", "_day"]
    assert planted.tables["orders"].select(cols).equals(plain.tables["orders"].select(cols))
    assert planted.tables["events"].equals(plain.tables["events"])
    assert not planted.tables["orders"]["campaign_id"].equals(plain.tables["orders"]["campaign_id"])
    touches, before = planted.tables["marketing_touches"], plain.tables["marketing_touches"]
    kept = touches.filter(pl.col("touch_id").is_in(before["touch_id"].implode()))
    assert kept.sort("touch_id").equals(before.sort("touch_id")) and touches.height > before.height
    assert set(touches["campaign_id"]) <= set(planted.tables["campaigns"]["campaign_id"])
    assert touches["touch_id"].is_unique().all()
