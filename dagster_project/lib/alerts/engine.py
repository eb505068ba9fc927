"""Alert evaluation: a pure function from one rule and its daily series to one row per date and group.

Input: the series (metric_date, dims, value: one value per date and group, built by series.py) and
the calendar (dim_date: weekday, public holidays, promotion days). Output: EVALUATION_SCHEMA rows,
the content of marts.mart_metric_alerts for that rule.

Baselines, by kind:
- threshold: the bound itself.
- change: the value of the previous day (previous_period) or of the same weekday a week earlier;
  a normal day is never compared with a special day (promotion or public holiday) or the reverse,
  so the Tuesday after 11.11 is not "down 60% on the previous day".
- anomaly: for a normal day, the recent level (median of the last `level_days` normal days, each
  adjusted by its weekday's effect) plus the day's weekday effect (from the last `window_weeks`
  weeks of normal days); the spread is a robust standard deviation of day-to-day changes, widened
  by the baseline's own error (seasonal_baseline). It fires
  when the value is `sensitivity` robust SDs away in the watched direction and at least
  `min_change` away relatively. Medians ignore a one-week incident inside the window, so the
  baseline does not learn it. A special day is compared with the same date a year earlier if that
  was the same special day with a value; otherwise it is not evaluated (a first 11.11 has no
  baseline, and is not an anomaly for lack of one).

States per group, in date order: a breaching date starts (after `for_days` consecutive breaches)
or continues an episode: `firing`, with `since` = its first breaching date. The first evaluated
date that does not breach after an episode is `resolved` (with that episode's since); other
non-breaching dates are `ok`. A date that cannot be evaluated (no value, too little history, a
special day without a baseline, the last `settle_days`) is `not_evaluated` with the reason, and
changes no state.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import NormalDist

import numpy as np
import polars as pl

from dagster_project.lib.alerts.rules import LoadedRule

ROBUST_SD = 1.4826  # MAD -> standard deviation for normally distributed noise

EVALUATION_SCHEMA: dict[str, pl.DataType] = {
    "rule_id": pl.Utf8,
    "team": pl.Utf8,
    "rule_name": pl.Utf8,
    "title_zh": pl.Utf8,
    "title_en": pl.Utf8,
    "kind": pl.Utf8,
    "severity": pl.Utf8,
    "metric": pl.Utf8,
    "unit": pl.Utf8,
    "dims": pl.Utf8,
    "metric_date": pl.Date,
    "value": pl.Float64,
    "baseline": pl.Float64,
    "threshold": pl.Float64,
    "direction": pl.Utf8,
    "deviation": pl.Float64,
    "z_score": pl.Float64,
    "is_breach": pl.Boolean,
    "state": pl.Utf8,
    "since": pl.Date,
    "reason": pl.Utf8,
    "chart": pl.Utf8,
    "evaluated_at": pl.Datetime("us"),
}
# denominator: for a ratio metric, the day's denominator (a rate's spread is never taken below the
# sampling noise of a share of that many); null otherwise
SERIES_SCHEMA: dict[str, pl.DataType] = {"metric_date": pl.Date, "dims": pl.Utf8, "value": pl.Float64,
                                         "denominator": pl.Float64}
# a variants rule's series adds the control's rate and denominator on the same group and date
PAIRED_SCHEMA: dict[str, pl.DataType] = SERIES_SCHEMA | {"reference": pl.Float64,
                                                         "reference_denominator": pl.Float64}
CALENDAR_COLUMNS = ["date_day", "iso_day_of_week", "is_promotion_day", "is_public_holiday",
                    "promotion_name_en", "holiday_name_en"]


@dataclass
class _Point:
    """One date's comparison before the state machine: breach is None when not evaluated."""

    value: float | None
    baseline: float | None = None
    threshold: float | None = None
    direction: str | None = None
    deviation: float | None = None
    z_score: float | None = None
    breach: bool | None = None
    reason: str | None = None


class _Series(dict):
    """One group's values by date, with its dates in order: an anomaly's window is found by bisection,
    so a rule over N dates costs N x the window, not N^2."""

    def __init__(self, items):
        super().__init__(items)
        self.days = sorted(self)

    def between(self, start: date, end: date) -> list[tuple[date, float | None]]:
        """Dates start <= d < end with their values."""
        return [(d, self[d]) for d in self.days[bisect_left(self.days, start):bisect_left(self.days, end)]]


@dataclass(frozen=True)
class _Sample:
    """A date's sample sizes: the denominator of a rate, and a variants rule's control rate and size."""

    n: float | None = None
    reference: float | None = None
    reference_n: float | None = None


class Calendar:
    """What evaluation needs of dim_date: each date's weekday and whether (and why) it is special."""

    def __init__(self, frame: pl.DataFrame | None):
        self.special: dict[date, str] = {}
        if frame is None:
            return
        for row in frame.select(CALENDAR_COLUMNS).iter_rows(named=True):
            if row["is_promotion_day"]:
                self.special[row["date_day"]] = row["promotion_name_en"] or "promotion"
            elif row["is_public_holiday"]:
                self.special[row["date_day"]] = row["holiday_name_en"] or "public holiday"

    def kind(self, day: date) -> str | None:
        return self.special.get(day)


def _relative(value: float, baseline: float) -> float | None:
    return (value - baseline) / abs(baseline) if baseline else None


def _threshold(rule, values: dict[date, float | None], day: date, cal: Calendar, sample: _Sample) -> _Point:
    t = rule.threshold
    v = values.get(day)
    if v is None:
        return _Point(None, reason="no value")
    if t.below is not None:
        return _Point(v, t.below, t.below, "below", _relative(v, t.below), breach=v < t.below)
    return _Point(v, t.above, t.above, "above", _relative(v, t.above), breach=v > t.above)


def _change(rule, values: dict[date, float | None], day: date, cal: Calendar, sample: _Sample) -> _Point:
    c = rule.change
    v = values.get(day)
    if v is None:
        return _Point(None, reason="no value")
    ref = day - timedelta(days=1 if c.compare_to == "previous_period" else 7)
    base = values.get(ref)
    if base is None or base == 0:
        return _Point(v, reason=f"no value to compare with on {ref}")
    if cal.kind(day) != cal.kind(ref):
        return _Point(v, base, reason=f"{day} ({cal.kind(day) or 'normal day'}) is not comparable with "
                                       f"{ref} ({cal.kind(ref) or 'normal day'})")
    dev = _relative(v, base)
    if c.drop is not None:
        return _Point(v, base, base * (1 - c.drop), "below", dev, breach=dev <= -c.drop)
    return _Point(v, base, base * (1 + c.rise), "above", dev, breach=dev >= c.rise)


def _anomaly(rule, values: _Series, day: date, cal: Calendar, sample: _Sample) -> _Point:
    a = rule.anomaly
    v = values.get(day)
    if v is None:
        return _Point(None, reason="no value")
    special = cal.kind(day)
    if special:
        last_year = day.replace(year=day.year - 1) if not (day.month == 2 and day.day == 29) else None
        base = values.get(last_year) if last_year and cal.kind(last_year) == special else None
        if base is None:
            return _Point(v, reason=f"{special}: no same day of the promotion or holiday a year earlier "
                                    f"to compare with")
        return _compare(a, v, base, None)
    start = day - timedelta(weeks=a.window_weeks)
    history = [(d, x) for d, x in values.between(start, day) if x is not None and not cal.kind(d)]
    if len(history) < a.min_history_days:
        return _Point(v, reason=f"{len(history)} normal days of history, need {a.min_history_days}")
    same_weekday = [x for d, x in history if d.weekday() == day.weekday()]
    if len(same_weekday) < 4:
        return _Point(v, reason=f"{len(same_weekday)} earlier normal {day:%A}s in the window, need 4")
    baseline, spread = seasonal_baseline(history, day, a.level_days)
    if sample.n and 0 < baseline < 1:
        # a share of n cannot be steadier than binomial sampling: a quiet stretch must not make
        # an ordinary small-sample day look like an anomaly
        spread = max(spread, float(np.sqrt(baseline * (1 - baseline) / sample.n)))
    return _compare(a, v, baseline, spread)


def seasonal_baseline(history: list[tuple[date, float]], day: date, level_days: int) -> tuple[float, float]:
    """Baseline and the standard deviation of a new day around it, from normal days before `day`.

    - weekday effect: the median of the window's values on that weekday minus the median of all;
    - level: the median of the weekday-adjusted values of the last `level_days` days (recent enough
      to follow a trend, long enough that a one-week incident is a minority it cannot move);
    - baseline = level + the day's weekday effect;
    - noise: 1.4826 x the median absolute deviation of day-to-day changes of the adjusted values,
      / sqrt(2) (differences ignore trend and level shifts; an incident adds only two outliers);
    - the spread of a new day widens that noise by the error of the two medians (variance
      pi/2 * noise^2 / n each), so a baseline from few days is trusted less.
    """
    values = np.array([x for _, x in history], dtype=float)
    weekdays = np.array([d.weekday() for d, _ in history])
    overall = float(np.median(values))
    effect = {wd: float(np.median(values[weekdays == wd])) - overall for wd in set(weekdays.tolist())}
    adjusted = values - np.array([effect[wd] for wd in weekdays])
    recent = adjusted[np.array([(day - d).days <= level_days for d, _ in history])]
    if len(recent) == 0:
        recent = adjusted[-7:]
    baseline = float(np.median(recent)) + effect[day.weekday()]
    steps = np.diff(adjusted)
    noise = ROBUST_SD * float(np.median(np.abs(steps - np.median(steps)))) / np.sqrt(2)
    n_same = int((weekdays == day.weekday()).sum())
    return baseline, noise * float(np.sqrt(1 + np.pi / 2 / len(recent) + np.pi / 2 / n_same))


def _compare(a, v: float, base: float, spread: float | None) -> _Point:
    """Anomaly verdict of `v` against `base`. A special day's single reference (spread None) and a
    flat history (spread 0) have no spread to measure by: the relative distance alone decides."""
    dev = _relative(v, base)
    far = abs(dev) >= a.min_change if dev is not None else v != base
    z = (v - base) / spread if spread else None
    side = "below" if v < base else "above"
    watched = a.direction in (side, "both") and v != base
    if a.direction != "both":  # the bound shown is the watched side's, whichever side the value is on
        side = a.direction
    strong = z is None or abs(z) >= a.sensitivity
    # the value at which this side would fire: both the z and the relative condition must hold
    sign = -1 if side == "below" else 1
    bounds = [base + sign * a.min_change * abs(base)] + ([base + sign * a.sensitivity * spread] if spread else [])
    bound = min(bounds) if side == "below" else max(bounds)
    return _Point(v, base, bound, side, dev, z, breach=watched and far and strong)


def _variants(rule, values: dict[date, float | None], day: date, cal: Calendar, sample: _Sample) -> _Point:
    """The variant's rate against its control's on the same date: a pooled two-proportion z-test.
    It fires when the difference in the watched direction is significant at `alpha` (one-sided for
    below / above, two-sided for both); the bound shown is the rate at which it would."""
    t = rule.variants
    p1, n1, p2, n2 = values.get(day), sample.n, sample.reference, sample.reference_n
    if p1 is None or not n1:
        return _Point(p1, reason="no users of the variant with a complete window")
    if p2 is None or not n2:
        return _Point(p1, reason="no users of the control with a complete window")
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = float(np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)))
    critical = NormalDist().inv_cdf(1 - (t.alpha / 2 if t.direction == "both" else t.alpha))
    z = (p1 - p2) / se if se else 0.0
    side = t.direction if t.direction != "both" else ("below" if p1 < p2 else "above")
    bound = p2 - critical * se if side == "below" else p2 + critical * se
    breach = z <= -critical if side == "below" else z >= critical
    return _Point(p1, p2, bound, side, _relative(p1, p2), z, breach=breach)


COMPARE = {"threshold": _threshold, "change": _change, "anomaly": _anomaly, "variants": _variants}
VOLUME_DAYS = 28  # a value metric's volume: the median of this many dates before


def evaluate(loaded: LoadedRule, series: pl.DataFrame, calendar: pl.DataFrame | None,
             evaluated_at: datetime, through: date | None = None) -> pl.DataFrame:
    """Evaluate one rule over every date of every group of its series (see the module docstring);
    dates after `through` (the rule's observed_through bound) are not evaluated."""
    rule = loaded.rule
    cal = Calendar(calendar)
    compare = COMPARE[rule.kind]
    rows = []
    series = series.with_columns([pl.lit(None, dtype=pl.Float64).alias(c) for c in PAIRED_SCHEMA
                                  if c not in series.columns])
    series = series.select(list(PAIRED_SCHEMA)).cast(PAIRED_SCHEMA)
    for (dims,), group in series.sort("metric_date").group_by(["dims"], maintain_order=True):
        days = group["metric_date"].to_list()
        values = _Series(zip(days, group["value"].to_list()))
        samples = {d: _Sample(*s) for d, *s in group.select(
            "metric_date", "denominator", "reference", "reference_denominator").iter_rows()}
        volumes = _volumes(rule, days, group["value"].to_list(), samples)
        # a shop with fewer dates than settle_days has none settled yet (a negative slice would keep some)
        settled = set(days[:max(0, len(days) - rule.settle_days)])
        streak: list[date] = []
        firing_since: date | None = None
        for day in days:
            if through is not None and day > through:
                bound = rule.observed_through
                p = _Point(values[day], reason=f"{bound.table}.{bound.date} has no data {bound.lag_days} day(s) "
                                               f"after this date yet")
            elif day not in settled:
                p = _Point(values[day], reason=f"within the last {rule.settle_days} dates, still filling in")
            elif rule.min_volume is not None and (volumes[day] is None or volumes[day] < rule.min_volume):
                p = _Point(values[day], reason=f"volume {_shown(volumes[day])} under min_volume "
                                               f"{_shown(rule.min_volume)}: too small to judge")
            else:
                p = compare(rule, values, day, cal, samples[day])
            state, since = "not_evaluated", None
            if p.breach is not None:
                if p.breach:
                    streak.append(day)
                    if firing_since is None and len(streak) >= rule.for_days:
                        firing_since = streak[0]
                    state, since = ("firing", firing_since) if firing_since else ("ok", None)
                else:
                    streak = []
                    state, since = ("resolved", firing_since) if firing_since else ("ok", None)
                    firing_since = None
            rows.append({
                "dims": dims, "metric_date": day, "value": p.value, "baseline": p.baseline,
                "threshold": p.threshold, "direction": p.direction, "deviation": p.deviation,
                "z_score": p.z_score, "is_breach": p.breach, "state": state, "since": since,
                "reason": p.reason,
            })
    frame = pl.DataFrame(rows, schema={k: EVALUATION_SCHEMA[k] for k in (
        "dims", "metric_date", "value", "baseline", "threshold", "direction", "deviation", "z_score",
        "is_breach", "state", "since", "reason")})
    constants = {
        "rule_id": loaded.rule_id, "team": loaded.team, "rule_name": rule.name, "title_zh": rule.title.zh,
        "title_en": rule.title.en, "kind": rule.kind, "severity": rule.severity, "metric": rule.metric.label,
        "unit": rule.metric.unit, "chart": rule.chart, "evaluated_at": evaluated_at,
    }
    return frame.with_columns(
        [pl.lit(v, dtype=EVALUATION_SCHEMA[k]).alias(k) for k, v in constants.items()]
    ).select(list(EVALUATION_SCHEMA))


def _volumes(rule, days: list[date], values: list[float | None],
             samples: dict[date, _Sample]) -> dict[date, float | None]:
    """Each date's volume for min_volume: a rate's denominator (a variants rule's smaller arm), a
    value metric's median of its VOLUME_DAYS dates before (its usual size: a quiet day of a small
    shop is still small; the first date has none and is not evaluated)."""
    if rule.metric.denominator is not None:
        return {d: (min(s.n or 0, s.reference_n or 0) if rule.kind == "variants" else s.n)
                for d, s in samples.items()}
    out, seen = {}, []
    for day, value in zip(days, values):
        out[day] = float(np.median(seen[-VOLUME_DAYS:])) if seen else None
        if value is not None:
            seen.append(value)
    return out


def _shown(x: float | None) -> str:
    return "unknown" if x is None else f"{x:g}"


def current_states(evaluations: pl.DataFrame) -> pl.DataFrame:
    """Each (rule, group)'s latest evaluated date: what delivery and the digest act on."""
    return (evaluations.filter(pl.col("state") != "not_evaluated")
            .sort("metric_date").group_by(["rule_id", "dims"], maintain_order=True).last())
