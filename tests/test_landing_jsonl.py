"""JSON-lines parsing (landing.parse_jsonl): how keys match columns and how values become text.

The parser caches the key -> column mapping per distinct key order (it is most of an events file's
ingest time); these tests pin the behaviour that cache must not change: keys trimmed and lower-cased
like CSV headers, a line with two keys for one column refused (which one is meant cannot be known),
every line may order or spell its keys differently, and bad lines are kept with their row number
and reason.
"""

from __future__ import annotations

import json
import random

from dagster_project.lib import landing

COLS = ("event_id", "event_name", "properties", "amount")


def _parse(lines: list[str | bytes]) -> landing.ParsedFile:
    data = b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines)
    return landing.parse_jsonl(data, COLS)


def _rows(p: landing.ParsedFile) -> list[tuple]:
    return [(p.row_numbers[i], *(p.values[c][i] for c in COLS), p.pre_rule[i]) for i in range(p.n_rows)]


def test_keys_values_and_bad_lines_by_hand():
    p = _parse([
        '{"event_id": "E1", "event_name": " login ", "properties": {"b": 1, "a": [true, null]}, "amount": 1.5}',
        '{" EVENT_ID ": "E2", "Event_Name": "", "amount": 10}',           # spelled differently, name empty
        '{"event_id": "E3", "EVENT_ID": "E3b", "amount": false}',          # two keys name one column: refused
        '',                                                                # blank: skipped, still counted
        '{"event_id": "E4", "extra": 1}\r',                                # CRLF; a key outside the contract
        'not json',
        '[1, 2]',
        b'{"event_id": "E\xff"}',
        '{"amount": 2, "event_id": "E5"}',                                 # the first line's keys, reordered
    ])
    assert _rows(p) == [
        (1, "E1", "login", '{"a": [true, null], "b": 1}', "1.5", None),
        (2, "E2", None, None, "10", None),
        (3, None, None, None, None, "malformed_row"),
        (5, "E4", None, None, None, None),
        (6, None, None, None, None, "malformed_row"),
        (7, None, None, None, None, "malformed_row"),
        (8, None, None, None, None, "bad_encoding"),
        (9, "E5", None, None, "2", None),
    ]
    assert p.pre_detail[2] == "keys 'event_id' and 'EVENT_ID' both name column event_id"
    assert p.raw_text[3] == '{"event_id": "E4", "extra": 1}'  # the \r is not part of the row
    assert p.raw_text[6] == '{"event_id": "E\\xff"}'
    assert p.pre_detail[4].startswith("not valid JSON")
    assert p.notes == ["keys not in the contract (ignored): extra"]


def _reference(data: bytes) -> list[tuple]:
    """Every line normalised on its own, without any caching: what the parser must equal."""
    out = []
    for n, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        pairs = [(str(k).strip().lower(), v) for k, v in json.loads(line).items()]
        obj = dict(pairs)
        if len(obj) < len(pairs):  # two spellings of one column
            out.append((n, *(None for _ in COLS), "malformed_row"))
            continue
        out.append((n, *(landing._json_text(obj.get(c)) for c in COLS), None))
    return out


def test_equals_per_line_normalisation_on_random_spellings_and_orders():
    rng = random.Random(7)
    spellings = {c: [c, c.upper(), f" {c}", c.title()] for c in COLS}
    values = ["x", " y ", "", None, 0, -3, 2.25, True, {"k": "v"}, ["a", 1], "ümlaut 中文"]
    lines = []
    for i in range(3000):
        cols = rng.sample(COLS, rng.randint(0, len(COLS)))
        obj = {rng.choice(spellings[c]): rng.choice(values) for c in cols}
        if rng.random() < 0.1:
            obj[rng.choice(spellings[COLS[0]])] = f"late-{i}"  # a second spelling of one column
        lines.append(json.dumps(obj, ensure_ascii=False))
    data = "\n".join(lines).encode()
    assert _rows(landing.parse_jsonl(data, COLS)) == _reference(data)
