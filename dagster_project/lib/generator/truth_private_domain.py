"""Ground truth of "Private domain" (docs/metrics.md), from the generated rows alone.

Plain loops over the world's tables by the definitions' wording; nothing here is shared with the
generator's planting (private_domain.py) or the warehouse's SQL.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import polars as pl

CHANNELS = ("wecom_contact", "wecom_group", "moments")
JOIN = {"contact_added", "group_joined"}
LEAVE = {"contact_lost", "group_left"}
CONVERSION_DAYS = 7

DEFINITIONS = {
    "private_domain": "member = the customer (phone_hash, else the user) of a private_domain_events row's user_id, "
                      "else 'wecom:' + external_user_id. Per business date from the first event's to data_end_date "
                      "and channel: members at day end = members whose latest membership event (by event time, "
                      "then event_id) per channel and group up to the day is a join (contact_added, group_joined); "
                      "a join of a non-member / a leave of a member counts in joins / leaves, other membership "
                      "events change nothing; moments' members are wecom_contact's. messages = message_sent rows; "
                      "sent_to = members with one that day; reached = those with a message_read whose sent_at is "
                      "that day; reach_rate = reached / sent_to; interacting = members with a link_clicked or "
                      "member_posted that day, interaction_rate = interacting / members; clickers = members with a "
                      "link_clicked that day, converted = those with a valid order (current row paid, not "
                      "cancelled) of the same customer within (click, click + 7 days]; conversion = converted / "
                      "clickers",
}


def _bdate(ts: int, offset: int) -> date:
    return (datetime(1970, 1, 1) + timedelta(seconds=ts + offset)).date()


def private_domain_truth(tables: dict[str, pl.DataFrame], *, offset: int, end_date: date) -> dict:
    pd_events = tables.get("private_domain_events")
    out = {"daily": [], "channels": {}, "definitions": DEFINITIONS}
    if pd_events is None or pd_events.height == 0:
        return out
    users = tables["users"]
    customer_of = {}
    for uid, ph in zip(users["user_id"].to_list(), users["phone_hash"].to_list()):
        customer_of[uid] = ph if ph is not None else "user:" + uid
    current: dict[str, tuple] = {}
    orders = tables["orders"]
    for oid, uid, ots, pts, st, day in zip(orders["order_id"].to_list(), orders["user_id"].to_list(),
                                           orders["order_ts"].to_list(), orders["paid_ts"].to_list(),
                                           orders["status"].to_list(), orders["_day"].to_list()):
        if oid not in current or day >= current[oid][0]:
            current[oid] = (day, uid, ots, pts, st)
    order_times: dict[str, list[int]] = defaultdict(list)
    for _, uid, ots, pts, st in current.values():
        if pts is not None and st != "cancelled":
            order_times[customer_of.get(uid, uid)].append(ots)

    rows = []
    for eid, ext, uid, ts, ch, kind, grp, sent in zip(
            pd_events["event_id"].to_list(), pd_events["external_user_id"].to_list(),
            pd_events["user_id"].to_list(), pd_events["event_ts"].to_list(), pd_events["channel"].to_list(),
            pd_events["event_type"].to_list(), pd_events["group_id"].to_list(), pd_events["sent_at"].to_list()):
        member = (customer_of.get(uid, uid)) if uid is not None else "wecom:" + ext
        rows.append((ts, eid, member, ch, kind, grp or "", _bdate(ts, offset),
                     _bdate(sent, offset) if sent is not None else None))
    rows.sort()
    first = min(r[6] for r in rows)
    days = [first + timedelta(days=k) for k in range((end_date - first).days + 1)]

    # membership: state per (member, channel, group); periods [join date, leave date)
    state: dict[tuple, bool] = {}
    periods: dict[str, list[tuple]] = defaultdict(list)  # channel -> (member, start, end or None)
    open_at: dict[tuple, date] = {}
    joins: dict[tuple, set] = defaultdict(set)
    leaves: dict[tuple, set] = defaultdict(set)
    sent_to: dict[tuple, set] = defaultdict(set)
    messages: dict[tuple, int] = defaultdict(int)
    reads: set = set()
    interacting: dict[tuple, set] = defaultdict(set)
    clicks: dict[tuple, dict] = defaultdict(dict)
    horizon = CONVERSION_DAYS * 86400
    for ts, _eid, member, ch, kind, grp, d, sd in rows:
        if kind in JOIN or kind in LEAVE:
            key = (member, ch, grp)
            is_join = kind in JOIN
            if is_join == state.get(key, False):
                continue
            state[key] = is_join
            if is_join:
                open_at[key] = d
                joins[(d, ch)].add(member)
            else:
                periods[ch].append((member, open_at.pop(key), d))
                leaves[(d, ch)].add(member)
        elif kind == "message_sent":
            messages[(d, ch)] += 1
            sent_to[(d, ch)].add(member)
        elif kind == "message_read":
            reads.add((sd, ch, member))
        elif kind in ("link_clicked", "member_posted"):
            interacting[(d, ch)].add(member)
            if kind == "link_clicked":
                converts = any(ts < o <= ts + horizon for o in order_times.get(member, ()))
                clicks[(d, ch)][member] = clicks[(d, ch)].get(member, False) or converts
    for (member, ch, _grp), start in open_at.items():
        periods[ch].append((member, start, None))

    members_on: dict[tuple, int] = {}
    for ch in ("wecom_contact", "wecom_group"):
        by_day: dict[date, set] = defaultdict(set)
        for member, start, stop in periods[ch]:
            for d in days:
                if start <= d and (stop is None or stop > d):
                    by_day[d].add(member)
        for d in days:
            members_on[(d, ch)] = len(by_day[d])
    for d in days:
        members_on[(d, "moments")] = members_on[(d, "wecom_contact")]

    daily = []
    totals: dict[str, dict] = {ch: defaultdict(int) for ch in CHANNELS}
    for d in days:
        for ch in CHANNELS:
            st = sent_to.get((d, ch), set())
            reached = sum(1 for m in st if (d, ch, m) in reads)
            clicked = clicks.get((d, ch), {})
            row = {"date": d.isoformat(), "channel": ch, "iso_weekday": d.isoweekday(),
                   "members": members_on[(d, ch)], "joins": len(joins.get((d, ch), ())),
                   "leaves": len(leaves.get((d, ch), ())), "messages": messages.get((d, ch), 0),
                   "sent_to": len(st), "reached": reached, "interacting": len(interacting.get((d, ch), ())),
                   "clickers": len(clicked), "converted": sum(clicked.values())}
            daily.append(row)
            t = totals[ch]
            for k in ("members", "messages", "sent_to", "reached", "interacting", "clickers", "converted"):
                t[k] += row[k]
            wk = "member_weekday" if d.isoweekday() == 3 else "other_weekdays"
            t[f"days_{wk}"] += 1
            t[f"messages_{wk}"] += row["messages"]
            t[f"members_{wk}"] += row["members"]
    channels = {}
    for ch, t in totals.items():
        per_member = {wk: t[f"messages_{wk}"] / t[f"members_{wk}"] if t[f"members_{wk}"] else None
                      for wk in ("member_weekday", "other_weekdays")}
        channels[ch] = {
            **{k: t[k] for k in ("messages", "sent_to", "reached", "interacting", "clickers", "converted")},
            "reach_rate": t["reached"] / t["sent_to"] if t["sent_to"] else None,
            "interaction_rate": t["interacting"] / t["members"] if t["members"] else None,
            "conversion_rate": t["converted"] / t["clickers"] if t["clickers"] else None,
            "members_at_end": members_on[(days[-1], ch)],
            "messages_per_member_day": per_member,
            "member_day_ratio": (per_member["member_weekday"] / per_member["other_weekdays"]
                                 if per_member["member_weekday"] and per_member["other_weekdays"] else None),
        }
    out.update(daily=daily, channels=channels)
    return out
