"""Private-domain mart against the generator's truth.json (docs/metrics.md "Private domain (私域)").

The generator plants WeCom contacts, groups, the shop's messages, their read and click rates, the 7-day
conversion of clicks and a member day (private_domain.py, planted.private_domain); truth.json's
`private_domain` recounts every figure from the generated rows alone (truth_private_domain.py).
"""

from __future__ import annotations

import math

import pytest
from mart_rows import dict_rows as _rows  # tests/ is on sys.path (pytest rootdir conftest)

COUNTS = ("members", "joins", "leaves", "messages", "sent_to", "reached", "interacting", "clickers", "converted")


@pytest.fixture(scope="module")
def daily(truth_warehouse):
    rows = _rows(truth_warehouse.db, "select * from marts.mart_private_domain_daily")
    return {(r["business_date"].isoformat(), r["channel"]): r for r in rows}


def _pooled(daily: dict, channel: str) -> dict:
    out = {k: 0 for k in COUNTS}
    for (_, ch), r in daily.items():
        if ch == channel:
            for k in COUNTS:
                out[k] += r[k]
    return out


def test_daily_mart_equals_truth(daily, truth_warehouse):
    truth = truth_warehouse.truth["private_domain"]["daily"]
    assert truth, "the truth world has private-domain events"
    assert set(daily) == {(t["date"], t["channel"]) for t in truth}
    for t in truth:
        row = daily[(t["date"], t["channel"])]
        assert {k: row[k] for k in COUNTS} == {k: t[k] for k in COUNTS}, (t["date"], t["channel"])
        assert row["iso_weekday"] == t["iso_weekday"]
        for rate, num, den in (("reach_rate", "reached", "sent_to"), ("interaction_rate", "interacting", "members"),
                               ("conversion_rate", "converted", "clickers")):
            expected = t[num] / t[den] if t[den] else None
            assert row[rate] == (pytest.approx(expected) if expected is not None else None), (t["date"], rate)


def _tolerance(p: float, n: int) -> float:
    """Three binomial standard errors of a rate over n draws, plus 0.02 for what the day grain pools."""
    return 3 * math.sqrt(p * (1 - p) / n) + 0.02


def test_planted_reach_click_and_conversion_per_channel(daily, truth_warehouse):
    """Reach ~ the planted read rate, clickers / readers ~ the planted click rate, conversion ~ the planted
    7-day conversion, per channel over the window, each within three standard errors (+0.02)."""
    planted = truth_warehouse.truth["planted"]["private_domain"]
    for ch in ("wecom_contact", "wecom_group", "moments"):
        s = _pooled(daily, ch)
        assert s["sent_to"] > 500 and s["clickers"] > 30, (ch, s)
        checks = (("read_rate", s["reached"], s["sent_to"]), ("click_rate", s["clickers"], s["reached"]),
                  ("conversion", s["converted"], s["clickers"]))
        for param, num, den in checks:
            p = planted[param][ch]
            assert abs(num / den - p) <= _tolerance(p, den), (ch, param, num / den, p)


def test_member_day_has_more_group_messages(daily, truth_warehouse):
    """Group messages per member and day on the member day (Wednesday, ISO 3) over the other days ~ the
    planted factor (within 25%); the 1v1 contact messages show no member day (within 25% of 1)."""
    planted = truth_warehouse.truth["planted"]["private_domain"]
    assert planted["member_weekday"] + 1 == 3

    def ratio(ch):
        num = {True: [0, 0], False: [0, 0]}
        for (_, c), r in daily.items():
            if c == ch:
                num[r["iso_weekday"] == 3][0] += r["messages"]
                num[r["iso_weekday"] == 3][1] += r["members"]
        return (num[True][0] / num[True][1]) / (num[False][0] / num[False][1])

    assert ratio("wecom_group") == pytest.approx(planted["member_day_factor"], rel=0.25)
    assert ratio("wecom_contact") == pytest.approx(1.0, rel=0.25)
    truth = truth_warehouse.truth["private_domain"]["channels"]
    assert ratio("wecom_group") == pytest.approx(truth["wecom_group"]["member_day_ratio"])


def test_members_are_a_planted_share_of_customers(daily, truth_warehouse):
    """Contacts at the end are at most the planted share of customers and most of it (some are added
    only after the window, some are lost); groups hold at most the planted share of the contacts."""
    planted = truth_warehouse.truth["planted"]["private_domain"]
    last = max(d for d, _ in daily)
    customers = truth_warehouse.truth["counts"]["customers"]
    contacts, groups = daily[(last, "wecom_contact")]["members"], daily[(last, "wecom_group")]["members"]
    assert 0.5 * planted["contact_share"] <= contacts / customers <= planted["contact_share"]
    assert 0.5 * planted["group_share"] * contacts <= groups <= planted["group_share"] * contacts
