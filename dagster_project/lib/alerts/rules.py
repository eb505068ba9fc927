"""Alert rules: one YAML file per team under alerts/, validated with errors that name file, line and field.

A team file holds `team`, an optional `language` (zh or en: the team's messages) and `rules`. Each
rule names a metric (a mart column, or a ratio of two summed columns, per day, optionally by channel
or segment and filtered) and exactly one kind:

- `threshold`: `below: 80%` or `above: 8` (a percentage is read as a share: 80% -> 0.8);
- `change`: against the previous day or the same weekday last week, `drop: 20%` or `rise: 50%`;
- `anomaly`: against a seasonal baseline that knows weekdays, holidays and promotion days
  (dagster_project/lib/alerts/engine.py says how);
- `variants`: each variant of an A/B test against its control on the same date, a two-proportion
  z-test at a strict `alpha` (a ratio metric whose rows carry a variant column).

docs/alerts.md is the user's guide; this module is the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from dagster_project.settings import REPO_ROOT

RULES_DIR = REPO_ROOT / "alerts"
KINDS = ("threshold", "change", "anomaly", "variants")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class RuleFileError(ValueError):
    """Every problem of one or more rule files, one line each: `file:line: where: what`."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _number_or_percent(value: Any) -> Any:
    """`80%` -> 0.8, `8` -> 8.0; anything else is left for pydantic to refuse with its own message."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            return value
    return value


Number = Annotated[float, BeforeValidator(_number_or_percent)]
Identifier = Annotated[str, Field(pattern=IDENTIFIER.pattern)]
Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    zh: str
    en: str


class Metric(_Strict):
    """What is measured per day: `value` (a column) or `numerator` / `denominator` (summed per day,
    then divided, so a rate over several channels is weighted by its denominator)."""

    table: Identifier                       # a table of schema marts
    date: Identifier                        # the business date column
    value: Identifier | None = None
    numerator: Identifier | None = None
    denominator: Identifier | None = None
    agg: Literal["sum", "mean", "min", "max", "count"] = "sum"  # how rows of one date (and group) combine
    by: tuple[Identifier, ...] = ()         # one series per value of these columns (channel, segment)
    where: dict[Identifier, Scalar | tuple[Scalar, ...]] = {}
    missing: Literal["skip", "zero"] = "skip"   # a date without rows: not evaluated, or a 0
    unit: Literal["share", "count", "yuan", "minutes", "hours", "number"] = "number"

    @model_validator(mode="after")
    def _one_value(self) -> Metric:
        ratio = (self.numerator is not None, self.denominator is not None)
        if self.value is not None and any(ratio):
            raise ValueError("give either value, or numerator and denominator, not both")
        if self.value is None and ratio != (True, True):
            raise ValueError("give value (a column), or both numerator and denominator")
        return self

    @property
    def columns(self) -> list[str]:
        named = [self.date, self.value, self.numerator, self.denominator, *self.by, *self.where]
        return [c for c in named if c is not None]

    @property
    def label(self) -> str:
        expr = f"{self.agg}({self.value})" if self.value else f"sum({self.numerator}) / sum({self.denominator})"
        return f"{self.table}.{expr}"


class Threshold(_Strict):
    below: Number | None = None
    above: Number | None = None

    @model_validator(mode="after")
    def _one_side(self) -> Threshold:
        if (self.below is None) == (self.above is None):
            raise ValueError("give exactly one of below or above")
        return self


class Change(_Strict):
    compare_to: Literal["previous_period", "same_weekday_last_week"]
    drop: Number | None = None              # relative fall that fires, e.g. 20%
    rise: Number | None = None

    @model_validator(mode="after")
    def _one_side(self) -> Change:
        if (self.drop is None) == (self.rise is None):
            raise ValueError("give exactly one of drop or rise")
        if (self.drop or self.rise or 0) <= 0:
            raise ValueError("drop / rise must be a positive share, e.g. 20%")
        return self


class Anomaly(_Strict):
    direction: Literal["below", "above", "both"] = "both"
    sensitivity: Number = Field(4.5, gt=0)  # robust standard deviations from the baseline
    min_change: Number = Field(0.1, ge=0)   # and at least this relative distance from it
    window_weeks: int = Field(8, ge=3, le=52)   # weekday effects are learnt over this window
    level_days: int = Field(21, ge=7, le=91)    # the level over this many recent days
    min_history_days: int = Field(28, ge=14)


class ObservedThrough(_Strict):
    """The metric of a date needs another table's data up to `lag_days` after it (D1 retention needs
    the next day's events): later dates, and every date when that table is empty, are not evaluated."""

    table: Identifier
    date: Identifier
    lag_days: int = Field(0, ge=0, le=366)


class Variants(_Strict):
    column: Identifier = "variant"          # the metric table's variant column
    control: Scalar = "control"             # its control value; every other value is compared with it
    direction: Literal["below", "above", "both"] = "below"   # below: the variant converts worse
    # per date and variant: at 0.001 an A/A test of 90 days raises a false alarm ~9% of the time,
    # and for_days 2 makes that a few in a million
    alpha: Number = Field(0.001, gt=0, lt=0.5)


class Rule(_Strict):
    name: Annotated[str, Field(pattern=NAME.pattern)]
    title: Text
    metric: Metric
    threshold: Threshold | None = None
    change: Change | None = None
    anomaly: Anomaly | None = None
    variants: Variants | None = None
    severity: Literal["warning", "critical"] = "warning"
    for_days: int = Field(1, ge=1, le=60)   # consecutive breaching days before it fires
    settle_days: int = Field(0, ge=0, le=60)  # the latest N dates are still filling in: not evaluated
    # a date whose denominator (a value metric: the median of its 28 dates before) is smaller is
    # not evaluated: a small shop's rates and counts are noise
    min_volume: Number | None = Field(None, ge=0)
    observed_through: ObservedThrough | None = None
    chart: str | None = None                # dashboard slug (or path) the message links to
    why: Text | None = None                 # one-line why; otherwise written from the kind

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of threshold, change, anomaly or variants"
                             + (f" (got {', '.join(kinds)})" if kinds else ""))
        if self.variants is not None and self.metric.numerator is None:
            raise ValueError("variants compares rates: give the metric a numerator and a denominator")
        if self.variants is not None and self.variants.column in self.metric.by:
            raise ValueError("variants.column is compared within each group: leave it out of metric.by")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)


class TeamFile(_Strict):
    team: Annotated[str, Field(pattern=NAME.pattern)]
    language: Literal["zh", "en"] = "zh"
    rules: list[Rule] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedRule:
    """A validated rule with where it came from, so later errors (an unknown column) can point there."""

    team: str
    language: str
    rule: Rule
    file: Path
    line: int
    field_lines: dict[tuple, int] = field(default_factory=dict, compare=False, hash=False)

    @property
    def rule_id(self) -> str:
        return f"{self.team}.{self.rule.name}"

    def where(self, *path: str | int) -> str:
        """`file:line: rules[i] name.path` for a field of this rule (its own line if the field has none)."""
        line = self.field_lines.get(tuple(path), self.line)
        return f"{_display(self.file)}:{line}: {self.rule_id}" + ("." + ".".join(map(str, path)) if path else "")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _lines(node: yaml.Node, path: tuple = ()) -> dict[tuple, int]:
    """Every mapping key and sequence item of a composed YAML document -> its 1-based line."""
    out = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (key.value,)
            out.update(_lines(value, sub))
            out[sub] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_lines(item, path + (i,)))
    return out


def _nearest_line(lines: dict[tuple, int], loc: tuple) -> int:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def _describe(loc: tuple, data: Any) -> str:
    parts, node = [], data
    for item in loc:
        if isinstance(item, int):
            name = node[item].get("name") if isinstance(node, list) and item < len(node) and isinstance(
                node[item], dict) else None
            parts[-1] = f"{parts[-1]}[{item}]" + (f" ({name})" if name else "")
        else:
            parts.append(str(item))
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) or "(file)"


def load_team_file(path: Path) -> list[LoadedRule]:
    """Parse and validate one team file; raises RuleFileError listing every problem in it."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise RuleFileError([f"{_display(path)}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if node is None or not isinstance(data, dict):
        raise RuleFileError([f"{_display(path)}:1: expected a mapping with team and rules"])
    lines = _lines(node)
    try:
        team = TeamFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            # pydantic reports the model a validator ran on; the location is the same for our purpose
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_display(path)}:{_nearest_line(lines, loc)}: {_describe(loc, data)}: {msg}")
        raise RuleFileError(problems) from None
    out, seen = [], {}
    for i, rule in enumerate(team.rules):
        if rule.name in seen:
            raise RuleFileError([f"{_display(path)}:{lines[('rules', i)]}: rules[{i}] ({rule.name}): "
                                 f"duplicate rule name (first on line {seen[rule.name]})"])
        seen[rule.name] = lines[("rules", i)]
        field_lines = {k[2:]: v for k, v in lines.items() if k[:2] == ("rules", i) and len(k) > 2}
        out.append(LoadedRule(team.team, team.language, rule, path, lines[("rules", i)], field_lines))
    return out


def load_rules(directory: Path = RULES_DIR) -> list[LoadedRule]:
    """Every team file (*.yml, *.yaml) in `directory`; all files' problems are reported together."""
    rules, problems = collect_rules(directory)
    if problems:
        raise RuleFileError(problems)
    return rules


def collect_rules(directory: Path = RULES_DIR) -> tuple[list[LoadedRule], list[str]]:
    """The rules of every valid team file, and the problems of the others: one team's typo must not
    silence another team's alerts."""
    rules, problems, owners = [], [], {}
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        try:
            loaded = load_team_file(path)
        except RuleFileError as exc:
            problems.extend(exc.problems)
            continue
        for r in loaded:
            if r.team in owners and owners[r.team] != path:
                problems.append(f"{_display(path)}:1: team {r.team} is already defined in "
                                f"{_display(owners[r.team])}: one file per team")
                break
            owners[r.team] = path
        else:
            rules.extend(loaded)
    return rules, problems
