"""Alert rules and their evaluation on hand-built daily series (no warehouse needed).

The calendar here is written by hand from the promotion windows of docs/metrics.md (618: June 1-18,
11.11: November 1-11) and China's 2026 National Day holiday, independently of dim_date's SQL.
"""

from __future__ import annotations

import textwrap
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dagster_project.lib.alerts.engine import current_states, evaluate
from dagster_project.lib.alerts.rules import RULES_DIR, RuleFileError, load_rules, load_team_file

START, END = date(2026, 5, 20), date(2026, 11, 30)
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
NOW = datetime(2026, 12, 1, 7, 0)


def calendar() -> pl.DataFrame:
    def promo(d: date) -> str | None:
        if d.month == 6 and d.day <= 18:
            return "618 mid-year sale"
        if d.month == 11 and d.day <= 11:
            return "Singles Day (11.11)"
        return None

    holiday = {date(2026, 10, d) for d in range(1, 8)}
    return pl.DataFrame({
        "date_day": DAYS,
        "iso_day_of_week": [d.isoweekday() for d in DAYS],
        "is_promotion_day": [promo(d) is not None for d in DAYS],
        "is_public_holiday": [d in holiday for d in DAYS],
        "promotion_name_en": [promo(d) for d in DAYS],
        "holiday_name_en": ["National Day" if d in holiday else None for d in DAYS],
    })


def rule_from(tmp_path, body: str, team: str = "growth"):
    path = tmp_path / f"{team}.yml"
    path.write_text(f"team: {team}\nrules:\n" + textwrap.indent(textwrap.dedent(body), "  "))
    return load_team_file(path)[0]


def series(values, days=DAYS, dims: str = "") -> pl.DataFrame:
    return pl.DataFrame({"metric_date": days, "dims": [dims] * len(days), "value": values})


def dates_in(frame: pl.DataFrame, state: str) -> list[date]:
    return frame.filter(pl.col("state") == state)["metric_date"].to_list()


def retention_series(rng, users_per_day: int, rates: dict[date, float]) -> list[float]:
    """Daily D1 retention as a binomial share of users_per_day, with a weekday pattern."""
    weekday_effect = [0.0, -0.01, 0.0, 0.01, 0.02, 0.03, 0.02]
    return [rng.binomial(users_per_day, rates.get(d, 0.40) + weekday_effect[d.weekday()]) / users_per_day
            for d in DAYS]


ANOMALY_BELOW = """\
- name: d1_retention_dip
  title: {zh: 新用户次日留存异常下降, en: New-user D1 retention dropped}
  metric: {table: mart_activity_retention, date: registration_date, numerator: d1_users,
           denominator: new_users, unit: share}
  anomaly: {direction: below}
"""


def test_a_planted_one_week_dip_fires_exactly_on_its_dates_and_resolves_the_day_after(tmp_path):
    rule = rule_from(tmp_path, ANOMALY_BELOW)
    dip = [date(2026, 8, 10) + timedelta(days=i) for i in range(7)]
    rng = np.random.default_rng(7)
    planted = series(retention_series(rng, 400, {d: 0.20 for d in dip})).with_columns(denominator=pl.lit(400.0))
    out = evaluate(rule, planted, calendar(), NOW)

    assert dates_in(out, "firing") == dip
    assert set(out.filter(pl.col("state") == "firing")["since"]) == {dip[0]}
    assert dates_in(out, "resolved") == [date(2026, 8, 17)]
    assert out.filter(pl.col("state") == "resolved")["since"].to_list() == [dip[0]]
    # the dip is in the baseline's window for 8 weeks after, and the median ignores it
    after = out.filter(pl.col("metric_date") > date(2026, 8, 17))
    assert set(after["state"]) <= {"ok", "not_evaluated"}
    # the baseline on the dip's first day is near the planted 40% (+ weekday effect), not the dip
    first = out.filter(pl.col("metric_date") == dip[0]).row(0, named=True)
    assert abs(first["baseline"] - (0.40 + [0.0, -0.01, 0.0, 0.01, 0.02, 0.03, 0.02][dip[0].weekday()])) < 0.02
    assert first["z_score"] < -4 and first["value"] < first["threshold"] < first["baseline"]


def gmv_series(rng) -> list[float]:
    """GMV with a weekday pattern, 3% noise, slow growth, and the 11.11 ramp (x5 on the day)."""
    weekday = [1.0, 0.95, 0.97, 1.0, 1.1, 1.3, 1.25]
    out = []
    for i, d in enumerate(DAYS):
        level = 100_000 * (1 + 0.3 * i / len(DAYS)) * weekday[d.weekday()]
        if d.month == 11 and d.day <= 11:
            level *= 1.5 + (3.5 if d.day == 11 else 0.0)
        if d.month == 6 and d.day <= 18:
            level *= 1.4 + (2.0 if d.day == 18 else 0.0)
        out.append(level * (1 + 0.03 * rng.standard_normal()))
    return out


def test_11_11_and_the_normal_days_after_it_do_not_fire(tmp_path):
    rule = rule_from(tmp_path, """\
        - name: gmv_anomaly
          title: {zh: GMV异常, en: GMV anomaly}
          metric: {table: fct_orders, date: order_date, value: gmv, unit: yuan}
          anomaly: {direction: both}
        """)
    out = evaluate(rule, series(gmv_series(np.random.default_rng(3))), calendar(), NOW)
    assert dates_in(out, "firing") == []
    peak = out.filter(pl.col("metric_date") == date(2026, 11, 11)).row(0, named=True)
    assert peak["state"] == "not_evaluated" and "Singles Day" in peak["reason"]
    # the Tuesday after 11.11 is evaluated against normal days and is fine; its baseline is within 10%
    # of the level the series was generated at (no 11.11 in it)
    tuesday = out.filter(pl.col("metric_date") == date(2026, 11, 17)).row(0, named=True)
    generated = 100_000 * (1 + 0.3 * DAYS.index(date(2026, 11, 17)) / len(DAYS)) * 0.95
    assert tuesday["state"] == "ok" and abs(tuesday["baseline"] / generated - 1) < 0.1
    assert out.filter(pl.col("metric_date") == date(2026, 11, 12))["state"].item() == "ok"
    # National Day is a holiday without a year-earlier value: not evaluated either
    assert out.filter(pl.col("metric_date") == date(2026, 10, 1))["state"].item() == "not_evaluated"


def test_the_same_series_with_a_real_drop_on_a_normal_day_does_fire(tmp_path):
    """The previous test is not passing because the detector is blind: halve one normal Thursday."""
    rule = rule_from(tmp_path, """\
        - name: gmv_anomaly
          title: {zh: GMV异常, en: GMV anomaly}
          metric: {table: fct_orders, date: order_date, value: gmv, unit: yuan}
          anomaly: {direction: both}
        """)
    values = gmv_series(np.random.default_rng(3))
    bad = DAYS.index(date(2026, 11, 19))
    values[bad] *= 0.5
    out = evaluate(rule, series(values), calendar(), NOW)
    assert dates_in(out, "firing") == [date(2026, 11, 19)]
    assert dates_in(out, "resolved") == [date(2026, 11, 20)]


def test_a_change_rule_never_compares_a_normal_day_with_11_11(tmp_path):
    rule = rule_from(tmp_path, """\
        - name: gmv_day_on_day
          title: {zh: GMV环比下降, en: GMV down on the previous day}
          metric: {table: fct_orders, date: order_date, value: gmv, unit: yuan}
          change: {compare_to: previous_period, drop: 30%}
        """)
    out = evaluate(rule, series(gmv_series(np.random.default_rng(3))), calendar(), NOW)
    assert dates_in(out, "firing") == []
    day_after = out.filter(pl.col("metric_date") == date(2026, 11, 12)).row(0, named=True)
    assert day_after["state"] == "not_evaluated" and "not comparable" in day_after["reason"]


def test_an_aa_like_noisy_series_never_fires(tmp_path):
    """An A/A split: both arms convert at the same rate; only sampling noise differs day to day."""
    rule = rule_from(tmp_path, """\
        - name: checkout_conversion
          title: {zh: 结算转化异常, en: Checkout conversion anomaly}
          metric: {table: mart_experiment_daily, date: assignment_date, numerator: converted,
                   denominator: users, by: [variant], unit: share}
          anomaly: {direction: both}
        """)
    fired = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        frames = [series([rng.binomial(300, 0.12) / 300 for _ in DAYS], dims=f"variant={arm}")
                  .with_columns(denominator=pl.lit(300.0)) for arm in ("control", "treatment")]
        out = evaluate(rule, pl.concat(frames), calendar(), NOW)
        assert out.filter(pl.col("state") != "not_evaluated").height > 2 * 120  # it did look
        fired += out.filter(pl.col("state") == "firing").select("dims", "metric_date").rows()
    assert fired == []


def test_threshold_change_and_state_machine_on_a_small_series(tmp_path):
    days = [date(2026, 7, 1) + timedelta(days=i) for i in range(10)]
    values = [0.9, 0.7, 0.75, 0.85, None, 0.7, 0.6, 0.9, 0.95, 0.5]
    rule = rule_from(tmp_path, """\
        - name: retention_floor
          title: {zh: 留存低于80%, en: Retention below 80%}
          metric: {table: mart_activity_retention, date: registration_date, value: d7_rate, unit: share}
          threshold: {below: 80%}
          for_days: 2
          settle_days: 1
        """)
    out = evaluate(rule, series(values, days), None, NOW)
    states = dict(zip(out["metric_date"], out["state"]))
    d = days
    # 7-2 breaches once (not yet 2 days) -> ok; 7-3 second breach -> firing since 7-2
    assert [states[x] for x in d] == ["ok", "ok", "firing", "resolved", "not_evaluated", "ok", "firing",
                                     "resolved", "ok", "not_evaluated"]
    since = dict(zip(out["metric_date"], out["since"]))
    assert since[d[2]] == d[1] and since[d[3]] == d[1] and since[d[6]] == d[5]
    assert out.filter(pl.col("metric_date") == d[2])["threshold"].item() == pytest.approx(0.8)
    latest = current_states(out)
    assert latest.height == 1 and latest["metric_date"].item() == d[8] and latest["state"].item() == "ok"

    week = rule_from(tmp_path, """\
        - name: orders_vs_last_week
          title: {zh: 订单较上周同日下降, en: Orders down on the same weekday last week}
          metric: {table: fct_orders, date: order_date, value: orders, unit: count}
          change: {compare_to: same_weekday_last_week, drop: 20%}
        """)
    days = [date(2026, 7, 6) + timedelta(days=i) for i in range(15)]
    values = [100.0] * 7 + [100, 79, 81, 100, 100, 100, 100] + [60]
    out = evaluate(week, series(values, days), None, NOW)
    assert dates_in(out, "firing") == [date(2026, 7, 14), date(2026, 7, 20)]
    assert out.filter(pl.col("metric_date") == date(2026, 7, 14))["baseline"].item() == 100
    # the day after compares 81 with 100 (-19%): not a breach; 7-20 compares 60 with 7-13
    assert dates_in(out, "resolved") == [date(2026, 7, 15)]
    assert out.filter(pl.col("metric_date") == date(2026, 7, 20))["baseline"].item() == 100


def test_the_shipped_rule_files_are_valid():
    rules = load_rules(RULES_DIR)
    assert len(rules) >= 5
    assert len({r.rule_id for r in rules}) == len(rules)
    assert {r.rule.kind for r in rules} == {"threshold", "change", "anomaly", "variants"}


@pytest.mark.parametrize("body, expected", [
    ("- name: x\n  title: {zh: a, en: b}\n  metric: {table: t, date: d, value: v}\n",
     "growth.yml:3: rules[0] (x): give exactly one of threshold, change, anomaly or variants"),
    ("- name: x\n  title: {zh: a, en: b}\n  metric: {table: t, date: d, value: v}\n"
     "  threshold: {below: eighty}\n",
     "growth.yml:6: rules[0] (x).threshold.below: Input should be a valid number"),
    ("- name: x\n  title: {zh: a, en: b}\n  metric:\n    table: t\n    date: d\n    value: v\n"
     "    numerator: n\n  threshold: {below: 80%}\n",
     "growth.yml:5: rules[0] (x).metric: give either value, or numerator and denominator, not both"),
    ("- name: x\n  title: {zh: a}\n  metric: {table: t, date: d, value: v}\n  threshold: {below: 1}\n",
     "growth.yml:4: rules[0] (x).title.en: Field required"),
    ("- name: x\n  title: {zh: a, en: b}\n  metric: {table: t, date: d, value: v}\n  threshold: {below: 1}\n"
     "  treshold_typo: 1\n",
     "growth.yml:7: rules[0] (x).treshold_typo: Extra inputs are not permitted"),
    ("- name: x\n  title: {zh: a, en: b}\n  metric: {table: \"t; drop table\", date: d, value: v}\n"
     "  threshold: {below: 1}\n",
     "growth.yml:5: rules[0] (x).metric.table: String should match pattern"),
    ("- name: x\n  title: {zh: a, en: b}\n  metric: {table: t, date: d, value: v}\n  threshold: {below: 1}\n"
     "- name: x\n  title: {zh: a, en: b}\n  metric: {table: t, date: d, value: v}\n  threshold: {below: 1}\n",
     "growth.yml:7: rules[1] (x): duplicate rule name (first on line 3)"),
    ("- name: x\n  title: {zh: a, en: [b\n", "growth.yml:5: not valid YAML"),
])
def test_rule_file_errors_name_file_line_and_field(tmp_path, body, expected):
    path = tmp_path / "growth.yml"
    path.write_text("team: growth\nrules:\n" + textwrap.indent(body, "  "))
    with pytest.raises(RuleFileError) as exc:
        load_team_file(path)
    assert any(expected in p and str(path) in p for p in exc.value.problems), exc.value.problems


def test_two_files_for_one_team_are_refused(tmp_path):
    body = ("team: growth\nrules:\n  - name: x\n    title: {zh: a, en: b}\n"
            "    metric: {table: t, date: d, value: v}\n    threshold: {below: 1}\n")
    (tmp_path / "a.yml").write_text(body)
    (tmp_path / "b.yml").write_text(body)
    with pytest.raises(RuleFileError, match="team growth is already defined in .*a.yml: one file per team"):
        load_rules(tmp_path)


def test_a_shop_younger_than_the_settle_window_has_nothing_evaluated(tmp_path):
    """Two dates of a rule that holds back its last 3: both are still filling in. The slice
    days[:2 - 3] kept the first date, so a two-day-old shop could fire on it."""
    rule = rule_from(tmp_path, """\
        - name: payment_lag
          title: {zh: 支付事件延迟, en: Payment events late}
          metric: {table: mart_data_quality, date: check_date, value: lag_hours, unit: count}
          threshold: {above: 8}
          settle_days: 3
        """)
    days = [date(2026, 7, 1), date(2026, 7, 2)]
    out = evaluate(rule, series([50.0, 50.0], days), None, NOW)
    assert out["state"].to_list() == ["not_evaluated", "not_evaluated"]
    assert all("still filling in" in r for r in out["reason"].to_list())
    # with a fourth date the first is settled and, far above 8, breaches
    days4 = days + [date(2026, 7, 3), date(2026, 7, 4)]
    out4 = evaluate(rule, series([50.0] * 4, days4), None, NOW)
    assert out4["state"].to_list() == ["firing", "not_evaluated", "not_evaluated", "not_evaluated"]
