"""Private-domain events exported from WeCom (企业微信): contacts, customer groups, the shop's messages.

Drawn after the rest of the world from a stream of its own, PCG64([seed, 0x9D0]), and from the finished
users and orders, so adding them changed no other row. Planted (PD_PARAMS, truth.json planted.private_domain):

- "contact_share" of customers (one account each) add the shop's WeCom as a contact (contact_added) some
  days after registering (exponential, mean "add_delay_days"); "contact_lost_p" of them delete it later.
  "unbound_share" of the contacts are known to WeCom only as an external contact: their rows have no
  user_id. "group_share" of the contacts also join a customer group (社群; groups of "group_size" in
  joining order), "group_left_p" of them leave it later.
- The shop sends (message_sent, one row per recipient): a 1v1 message to a contact on a day with
  probability messages_per_week["wecom_contact"] / 7; a moments post (朋友圈) seen by every contact with
  that weekly rate; a message to a group, every member a recipient, with the weekly rate spread so that the
  member day (会员日, weekday "member_weekday", 2 = Wednesday) has "member_day_factor" times the rate of
  another day.
- A recipient reads a message with probability read_rate[channel] (message_read, sent_at = its send);
  a reader clicks its link with probability click_rate[channel] (link_clicked). Who clicks is chosen
  knowing whether the customer places a valid order in the 7 days after the click, so that the share of
  clicks followed by one is conversion[channel] (a bound contact; an unbound one cannot be linked to an
  order). Group members post (member_posted) on a day with probability "post_p_per_day".
- Rows are exported daily: a row lands in the file of its event's business day.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .model import DAY

CHANNELS = ("wecom_contact", "wecom_group", "moments")
PD_PARAMS = {
    "contact_share": 0.25,
    "add_delay_days": 20.0,
    "unbound_share": 0.05,
    "contact_lost_p": 0.10,
    "group_share": 0.5,
    "group_size": 60,
    "group_left_p": 0.15,
    "staff": 8,
    "messages_per_week": {"wecom_contact": 1.0, "wecom_group": 3.0, "moments": 1.0},
    "member_weekday": 2,
    "member_day_factor": 3.0,
    "read_rate": {"wecom_contact": 0.6, "wecom_group": 0.35, "moments": 0.25},
    "click_rate": {"wecom_contact": 0.2, "wecom_group": 0.12, "moments": 0.08},
    "conversion": {"wecom_contact": 0.3, "wecom_group": 0.2, "moments": 0.12},
    "post_p_per_day": 0.02,
    "conversion_days": 7,
}

SCHEMA = {"event_id": pl.Utf8, "external_user_id": pl.Utf8, "user_id": pl.Utf8, "event_ts": pl.Int64,
          "channel": pl.Utf8, "event_type": pl.Utf8, "group_id": pl.Utf8, "campaign_id": pl.Utf8,
          "staff_id": pl.Utf8, "sent_at": pl.Int64, "_day": pl.Int64}


def _valid_orders(users: pl.DataFrame, orders: pl.DataFrame) -> tuple[dict, pl.DataFrame]:
    """customer of each user (phone_hash, else the user) and the valid orders (current rows) with theirs."""
    cust = users.sort("_day").unique("user_id", keep="last").select(
        "user_id", "registered_at", pl.coalesce("phone_hash", pl.lit("user:") + pl.col("user_id")).alias("customer"))
    current = orders.sort("_day").group_by("order_id", maintain_order=True).last()
    # a world without orders has them typed Null: the key is text on both sides
    valid = current.filter(pl.col("paid_ts").is_not_null() & (pl.col("status") != "cancelled")).with_columns(
        pl.col("user_id").cast(pl.Utf8))
    return cust, valid.join(cust.select("user_id", "customer"), on="user_id").select("customer", "order_ts")


def make_private_domain_events(seed: int, clock, users: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    P = PD_PARAMS
    rng = np.random.Generator(np.random.PCG64([seed, 0x9D0]))
    t0, end = clock.t0, clock.end
    cust, valid = _valid_orders(users, orders)
    # one account per customer: the earliest registered (then user_id)
    accounts = cust.sort("registered_at", "user_id").unique("customer", keep="first", maintain_order=True)
    n_cust = accounts.height
    pick = np.sort(rng.choice(n_cust, size=int(round(P["contact_share"] * n_cust)), replace=False))
    uid = np.array(accounts["user_id"].to_list(), dtype=object)[pick]
    customer = np.array(accounts["customer"].to_list(), dtype=object)[pick]
    reg = accounts["registered_at"].to_numpy()[pick]
    n = len(pick)
    join = reg + 60 + (rng.exponential(P["add_delay_days"] * DAY, n)).astype(np.int64)
    keep = join < end
    uid, customer, join = uid[keep], customer[keep], join[keep]
    n = len(uid)
    ext = np.array([f"wm{int(x):012x}" for x in rng.integers(0, 16 ** 12, n)], dtype=object)
    bound = rng.random(n) >= P["unbound_share"]
    staff = np.array([f"S{int(x) + 1:02d}" for x in rng.integers(0, P["staff"], n)], dtype=object)
    lost = rng.random(n) < P["contact_lost_p"]
    leave = np.where(lost, join + (rng.random(n) * (end - join)).astype(np.int64) + 1, np.iinfo(np.int64).max)
    leave = np.where(leave >= end, np.iinfo(np.int64).max, leave)
    in_group = (rng.random(n) < P["group_share"]) & ~lost
    g_join = join + 60 + rng.exponential(3 * DAY, n).astype(np.int64)
    in_group &= g_join < end
    g_members = np.nonzero(in_group)[0]
    g_members = g_members[np.argsort(g_join[g_members], kind="stable")]
    group_of = np.full(n, -1)
    group_of[g_members] = np.arange(len(g_members)) // P["group_size"]
    n_groups = int(group_of.max()) + 1 if len(g_members) else 0
    g_left = in_group & (rng.random(n) < P["group_left_p"])
    g_leave = np.where(g_left, g_join + (rng.random(n) * (end - g_join)).astype(np.int64) + 1,
                       np.iinfo(np.int64).max)
    g_leave = np.where(g_leave >= end, np.iinfo(np.int64).max, g_leave)

    rows: dict[str, list] = {"i": [], "ts": [], "channel": [], "type": [], "group": [], "sent": []}

    def add(idx, ts, channel, kind, group=None, sent=None):
        idx = np.asarray(idx)
        rows["i"].append(idx)
        rows["ts"].append(np.broadcast_to(np.asarray(ts, dtype=np.int64), idx.shape).copy())
        rows["channel"].append(np.full(idx.shape, channel, dtype=object))
        rows["type"].append(np.full(idx.shape, kind, dtype=object))
        rows["group"].append(np.full(idx.shape, -1) if group is None else np.asarray(group))
        rows["sent"].append(np.full(idx.shape, -1, dtype=np.int64) if sent is None else np.asarray(sent))

    add(np.arange(n), join, "wecom_contact", "contact_added")
    add(np.nonzero(lost & (leave < end))[0], leave[lost & (leave < end)], "wecom_contact", "contact_lost")
    add(g_members, g_join[g_members], "wecom_group", "group_joined", group_of[g_members])
    gl = np.nonzero(g_left & (g_leave < end))[0]
    add(gl, g_leave[gl], "wecom_group", "group_left", group_of[gl])

    weekly = P["messages_per_week"]
    factor = P["member_day_factor"]
    g_base = weekly["wecom_group"] / (6 + factor)
    weekday = clock.weekday
    sends = []  # (member indices, send ts, channel, group)
    for d in range(clock.days):
        day0 = t0 + d * DAY
        # 1v1: each contact of the day end... of the send time
        ts = day0 + 9 * 3600 + rng.integers(0, 12 * 3600, n)
        on = (join <= ts) & (ts < leave) & (rng.random(n) < weekly["wecom_contact"] / 7)
        sends.append((np.nonzero(on)[0], ts[on], "wecom_contact", None))
        post_ts = day0 + 9 * 3600 + int(rng.integers(0, 12 * 3600))
        if rng.random() < weekly["moments"] / 7:
            on = np.nonzero((join <= post_ts) & (post_ts < leave))[0]
            sends.append((on, np.full(len(on), post_ts), "moments", None))
        p_g = g_base * (factor if weekday[d] == P["member_weekday"] else 1.0)
        g_send = rng.random(n_groups) < p_g
        g_ts = day0 + 9 * 3600 + rng.integers(0, 12 * 3600, n_groups)
        if n_groups:
            member_ts = g_ts[np.maximum(group_of, 0)]
            on = np.nonzero((group_of >= 0) & g_send[np.maximum(group_of, 0)]
                            & (g_join <= member_ts) & (member_ts < g_leave))[0]
            sends.append((on, member_ts[on], "wecom_group", group_of[on]))
            post_at = day0 + rng.integers(8 * 3600, 23 * 3600, n)
            posted = np.nonzero((group_of >= 0) & (g_join <= post_at) & (post_at < g_leave)
                                & (rng.random(n) < P["post_p_per_day"]))[0]
            add(posted, post_at[posted], "wecom_group", "member_posted", group_of[posted])

    # valid orders per customer as one sorted key, to ask "an order in (t, t + 7 days]"
    codes = {c: k for k, c in enumerate(np.unique(np.concatenate(
        [customer.astype(str), np.array(valid["customer"].to_list(), dtype=str)])).tolist())}
    span = np.int64(1) << 34
    order_key = np.sort(np.array([codes[c] for c in valid["customer"].to_list()], dtype=np.int64) * span
                        + valid["order_ts"].to_numpy().astype(np.int64))
    c_code = np.array([codes[c] for c in customer.tolist()], dtype=np.int64)
    horizon = P["conversion_days"] * DAY
    for ch in CHANNELS:
        parts = [s for s in sends if s[2] == ch]
        if not parts:
            continue
        idx = np.concatenate([p[0] for p in parts]).astype(np.int64)
        sent = np.concatenate([p[1] for p in parts]).astype(np.int64)
        grp = (np.concatenate([p[3] for p in parts]) if ch == "wecom_group" else None)
        add(idx, sent, ch, "message_sent", grp)
        read = rng.random(len(idx)) < P["read_rate"][ch]
        read_ts = sent + 1 + rng.exponential(2 * 3600, len(idx)).astype(np.int64)
        read &= read_ts < end
        r = np.nonzero(read)[0]
        add(idx[r], read_ts[r], ch, "message_read", None if grp is None else grp[r], sent[r])
        click_ts = read_ts[r] + 1 + rng.exponential(300, len(r)).astype(np.int64)
        base = c_code[idx[r]] * span + click_ts
        lo = np.searchsorted(order_key, base, side="right")
        hi = np.searchsorted(order_key, base + horizon, side="right")
        orders_next = (hi > lo) & bound[idx[r]]
        want = P["click_rate"][ch] * len(r)
        n_o, n_n = int(orders_next.sum()), int((~orders_next).sum())
        a = min(1.0, P["conversion"][ch] * want / n_o) if n_o else 0.0
        b = min(1.0, (1 - P["conversion"][ch]) * want / n_n) if n_n else 0.0
        click = (rng.random(len(r)) < np.where(orders_next, a, b)) & (click_ts < end)
        c = np.nonzero(click)[0]
        add(idx[r][c], click_ts[c], ch, "link_clicked", None if grp is None else grp[r][c], sent[r][c])

    i = np.concatenate(rows["i"]).astype(np.int64)
    ts = np.concatenate(rows["ts"])
    group = np.concatenate(rows["group"])
    order = np.lexsort((i, ts))
    i, ts, group = i[order], ts[order], group[order]
    ch = np.concatenate(rows["channel"])[order]
    kind = np.concatenate(rows["type"])[order]
    sent = np.concatenate(rows["sent"])[order]
    m = len(i)
    group_staff = np.array([f"S{k % P['staff'] + 1:02d}" for k in range(max(n_groups, 1))], dtype=object)
    return pl.DataFrame({
        "event_id": [f"PD{k + 1:09d}" for k in range(m)],
        "external_user_id": ext[i].tolist(),
        "user_id": np.where(bound[i], uid[i], None).tolist(),
        "event_ts": ts,
        "channel": ch.tolist(),
        "event_type": kind.tolist(),
        "group_id": [f"G{g + 1:03d}" if g >= 0 else None for g in group.tolist()],
        "campaign_id": [None] * m,
        "staff_id": np.where(group >= 0, group_staff[np.maximum(group, 0)], staff[i]).tolist(),
        "sent_at": [s if s >= 0 else None for s in sent.tolist()],
        "_day": clock.day_of(ts),
    }, schema=SCHEMA)
