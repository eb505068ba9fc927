"""The fast readers (lib/fast_jsonl.py, lib/fast_csv.py): big files load with exact row numbers and
raw text, plain files take them, and whatever they read they read as the exact reader (landing.py) does."""

from __future__ import annotations

import codecs
import gzip
import random

import duckdb
import pytest

from dagster_project.lib import ingest, landing

TZ = "Asia/Shanghai"


def _event_line(i: int) -> str:
    return (f'{{"event_id":"E{i}","event_ts":"2026-05-20T12:00:00Z","anonymous_id":"A{i % 977}",'
            f'"session_id":"S{i // 7}","event_name":"page_view","platform":"web"}}')


def test_a_million_rows_with_a_thousand_planted_bad_rows_quarantine_exactly_those(wh):
    rng = random.Random(21)
    bad_at = sorted(rng.sample(range(1, 1_000_001), 1_000))
    kinds = [
        ("bad_enum", lambda i: _event_line(i).replace('"web"', '"webb"')),
        ("bad_type", lambda i: _event_line(i).replace("2026-05-20T12:00:00Z", "yesterday")),
        ("missing_required", lambda i: _event_line(i).replace(f'"session_id":"S{i // 7}",', "")),
        ("malformed_row", lambda i: _event_line(i)[:-1]),                     # cut short: not JSON
        ("malformed_row", lambda i: _event_line(i)[:-1] + ',"Event_ID":"X"}'),  # two keys, one column
        ("bad_encoding", lambda i: _event_line(i).replace('"A', '"\udcff', 1)),  # a broken byte
    ]
    planted = {n: kinds[k % len(kinds)] for k, n in enumerate(bad_at)}
    lines = []
    for n in range(1, 1_000_001):
        lines.append(planted[n][1](n) if n in planted else _event_line(n))
    data = "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n"
    path = wh.write("events", "events_20260520.jsonl", data)
    res = wh.ingest("events")
    (f,) = res.files
    assert f.reader == "fast" and f.rows_landed == 1_000_000
    assert (f.rows_loaded, f.rows_quarantined) == (999_000, 1_000)
    got = wh.q("select row_number, rule, raw_text from raw.quarantine where file_name = ? order by row_number",
               [path.name])
    raw_lines = data.split(b"\n")
    assert [(n, rule) for n, rule, _ in got] == [(n, planted[n][0]) for n in bad_at]
    assert [text for _, _, text in got] == [
        landing.printable(raw_lines[n - 1].decode("utf-8", "surrogateescape")) for n in bad_at]
    good = [n for n in (1, 2, 500_000, 999_999, 1_000_000) if n not in planted]
    assert wh.q("select count(*), count(distinct _row) from raw.events") == [(999_000, 999_000)]
    assert wh.q(f"select _row, event_id from raw.events where _row in ({', '.join(map(str, good))}) "
                f"order by 1") == [(n, f"E{n}") for n in good]


def test_a_gbk_file_of_500k_rows_loads_with_its_chinese_text(wh):
    header = "user_id,registered_at,channel,phone_hash,province,city,member_level,birth_year"
    cities = [("浙江省", "杭州市"), ("广东省", "深圳市"), ("四川省", "成都市"), ("黑龙江省", "齐齐哈尔市")]
    rows = [f"U{i},2026-05-20 10:00:00,tmall,,{cities[i % 4][0]},{cities[i % 4][1]},{i % 6},{1950 + i % 60}"
            for i in range(1, 500_001)]
    wh.write("users", "users_20260520.csv", ("\n".join([header, *rows]) + "\n").encode("gbk"))
    (f,) = wh.ingest("users").files
    assert (f.encoding, f.rows_loaded, f.rows_quarantined) == ("gb18030", 500_000, 0)
    assert wh.q("select city, count(*) from raw.users group by 1 order by 1") == sorted(
        (c, 125_000) for _, c in cities)
    assert wh.q("select province, city, member_level, birth_year from raw.users where user_id = 'U500000'") == [
        ("浙江省", "杭州市", 2, 1950 + 500_000 % 60)]


@pytest.mark.parametrize("lines", [
    [_event_line(1), _event_line(2)],
    [_event_line(1)[:-1] + ',"page":" 杭州 首页\u3000"}',
     _event_line(2)[:-1] + ',"properties":"{\\"k\\":\\"益生菌\\"}"}'],
    [_event_line(1)[:-1] + ',"user_id":null,"extra":"x"}'] * 2,
])
def test_plain_json_lines_take_the_fast_reader(wh, lines):
    wh.write("events", "events_20260520.jsonl", ("\r\n".join(lines) + "\r\n").encode())
    (f,) = wh.ingest("events").files
    assert (f.status, f.reader, f.encoding) == ("loaded", "fast", "utf-8")
    assert (f.rows_landed, f.rows_loaded) == (len(lines), len(set(lines)))
    assert f.notes == (["keys not in the contract (ignored): extra"] if "extra" in lines[0] else [])
    got = wh.q("select _row, page, properties, user_id from raw.events order by _row")
    assert got[0][:2] == (1, "杭州 首页" if "杭州" in lines[0] else None)
    assert got[-1][2:] == (('{"k":"益生菌"}', None) if "益生菌" in lines[1] else (None, None))


_JSON_EDGES = [
    _event_line(1),
    "",                                                           # blank lines count as lines
    "   \t",
    _event_line(2)[:-1] + ',}',                                   # a trailing comma: DuckDB reads it, json does not
    _event_line(3).replace('"event_id"', '"Event_ID "'),          # a key spelled apart from its column
    _event_line(4)[:-1] + ',"event_id":"E4b"}',                   # a key twice
    _event_line(5)[:-1] + ',"sku_id":1.50}',                      # a float
    _event_line(6)[:-1] + ',"sku_id":1e2,"order_id":-0}',
    _event_line(7)[:-1] + ',"page":{"b":1,"a":[1,2]}}',           # an object as a value
    _event_line(8)[:-1] + ',"page":"\\ud800"}',                   # half a character
    _event_line(9)[:-1] + ',"page":"\\ud83d\\ude00 ok"}',         # a whole one
    _event_line(10)[:-1] + ',"page":NaN}',
    _event_line(11)[:-1] + ',"user_id":true,"order_id":18446744073709551615}',
    _event_line(12)[:-1] + ',"user_id":123456789012345678901234567890}',
    _event_line(13).replace('"web"', '"\u3000web\u00a0"'),        # Unicode spaces around a value
    _event_line(14).replace('"web"', '"  "'),
    _event_line(15)[:-1] + ',"extra":"x"}',                       # a key not in the contract
    _event_line(16) + "\r",                                       # a CRLF ending
    "[1, 2]",
    '"text"',
    "{not json",
    _event_line(17).replace("A17", "A\\u0041\\n"),                # escapes
    _event_line(18)[:-1] + ' , "page" : "a, }" }',                # spaces, and ", }" inside a string
    _event_line(19).replace('"A', '"\udcff', 1),                  # a broken byte
    _event_line(20)[:-1] + ',"page":"a\\"b\\\\c\\/d"}',          # escaped quote, backslash, slash
    _event_line(21)[:-1] + '}//',                                 # a comment after the object
    _event_line(22)[:-1] + ',"page":"a\tb"}',                     # a raw tab inside a string
    _event_line(23).replace('"web"', '"\x0b"'),                   # a vertical tab: whitespace to Python
    _event_line(24)[:-1] + ',"page":"q"\r,"order_id":"O1"}',     # a carriage return between tokens
    " " + _event_line(25),                                        # indented
    _event_line(26).replace('"event_id"', '"event_id"  '),        # spaces before a colon
    _event_line(1),                                               # a duplicate key across lines
    _event_line(27),                                              # the last line, without a newline
]


def _same_through_both_readers(tmp_path, name, data, reader, source="orders"):
    """Load one file through the exact reader and the fast one (`reader`: what the fast one should say)
    into two warehouses, and hold them to the same ledger, rows and quarantine."""
    path = tmp_path / "landing" / source / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    lf = landing.parse_file_name(path)
    lf.real = path
    got = {}
    for fast in (False, True):
        with duckdb.connect(str(tmp_path / f"{fast}.duckdb")) as con:
            con.execute("set TimeZone = 'UTC'")
            ingest.ensure_raw_schema(con)
            res = ingest.load_file(con, lf, tz=TZ, fast=fast)
            cols = ", ".join(ingest.SOURCES[lf.source].column_names)
            got[fast] = (
                (res.status, res.rows_landed, res.rows_loaded, res.rows_quarantined, res.encoding, res.notes),
                con.execute(f"select _row, {cols} from raw.{lf.source} order by _row").fetchall(),
                con.execute("select row_number, raw_text, rule, column_name, reason from raw.quarantine "
                            "order by row_number").fetchall(),
                res.reader)
    assert got[False][3] == ("exact" if reader else "")  # "": a file refused whole by both
    assert got[True][3] == reader
    assert got[False][0] == got[True][0]
    assert got[False][1] == got[True][1]
    assert got[False][2] == got[True][2]
    if not reader:
        assert got[True][0][0] == "rejected"
    return got


@pytest.mark.parametrize("name, data, reader", [
    ("events_20260520.jsonl", "\n".join(_JSON_EDGES).encode("utf-8", "surrogateescape"), "fast"),
    ("events_20260521.jsonl", "\n".join(_JSON_EDGES[:-7]).encode("utf-8", "surrogateescape") + b"\n", "fast"),
    ("events_20260524.jsonl", "\n".join(_JSON_EDGES[:2] + ["\x0c"] + _JSON_EDGES[2:5]).encode(),
     "exact: a blank line DuckDB does not take as blank"),
    ("events_20260525.jsonl", "\n".join([_event_line(1).replace('":', '": ')] * 3 + _JSON_EDGES[:2]).encode(),
     "exact: most lines need the exact reader"),
    ("events_20260522.jsonl", codecs.BOM_UTF8 + "\n".join(_JSON_EDGES[:3]).encode(), "exact: a byte-order mark"),
    ("events_20260523.jsonl", "\n".join(_JSON_EDGES[1:3] + _JSON_EDGES[18:21]).encode(),
     "exact: no line in the file's first MB names the contract's columns plainly"),
])
def test_the_fast_reader_loads_and_refuses_exactly_what_the_exact_reader_does(tmp_path, name, data, reader):
    got = _same_through_both_readers(tmp_path, name, data, reader, source="events")
    if reader == "fast" and name.endswith("0.jsonl"):
        assert len(got[False][2]) >= 10  # the edge cases refuse rows: the comparison covers them


# --- CSV (lib/fast_csv.py) -----------------------------------------------------------------------

_ORDERS_HEADER = ("order_id,user_id,channel,order_ts,paid_ts,status,items_amount,discount_amount,"
                  "shipping_fee,pay_amount,coupon_id,campaign_id,province,city")


_TS = "2026-05-20 10:00:00"


@pytest.mark.parametrize("source, name, lines, refused, loaded", [
    # a refused row holds no key: K1's first valid row (2) loads; a row refused by a row rule first
    # (6) is not also a duplicate; a key's third row (7) is one
    ("orders", "orders_20260520.csv",
     [_ORDERS_HEADER, f"K1,U1,myspace,{_TS},,created,50,0,6,56,,,,", f"K1,U1,app,{_TS},,created,50,0,6,56,,,,",
      f"K2,U1,app,{_TS},,created,50,0,6,56,,,,", f"K1,U1,web,{_TS},,created,50,0,6,56,,,,",
      f"K2,U1,app,{_TS},,created,50,0,6,56,,,,", "K1,U1,app,,,created,50,0,6,56,,,,",
      f"K2,U1,app,{_TS},,created,50,0,6,56,,,,"],
     [(1, "bad_enum"), (4, "duplicate_key"), (5, "duplicate_key"), (6, "missing_required"), (7, "duplicate_key")],
     [2, 3]),
    # a composite key repeats only whole: (K1, 1) again is a duplicate, (K1, 2) is not (no orders are
    # loaded here, so the lines that are not duplicates are unknown_key)
    ("order_items", "order_items_20260520.csv",
     ["order_id,line_no,sku_id,quantity,unit_price,discount_amount", "K1,1,SKU1,1,5,0", "K1,2,SKU1,1,5,0",
      "K2,1,SKU1,1,5,0", "K1,1,SKU2,1,5,0"],
     [(1, "unknown_key"), (2, "unknown_key"), (3, "unknown_key"), (4, "duplicate_key")], []),
    # an empty optional part of a key (ad spend's campaign) repeats like any other value
    ("ad_spend", "ad_spend_20260520.csv",
     ["date,channel,campaign_id,spend", "2026-05-20,jd,,5", "2026-05-20,jd,C1,5", "2026-05-20,jd,,7",
      "2026-05-20,tmall,,7"],
     [(3, "duplicate_key")], [1, 2, 4]),
], ids=["refused-rows-hold-no-key", "composite-key", "empty-key-part"])
def test_a_key_is_a_duplicate_only_after_its_first_row_that_passed_the_row_rules(tmp_path, source, name, lines,
                                                                                 refused, loaded):
    """duplicate_key, as the contract says: among the rows that passed the row rules, each key's first
    row loads and the later ones are refused; both readers agree."""
    got = _same_through_both_readers(tmp_path, name, ("\n".join(lines) + "\n").encode(), "fast", source=source)
    assert [(row, rule) for row, _, rule, _, _ in got[True][2]] == refused
    assert [r[0] for r in got[True][1]] == loaded



def _order_line(i: int, city: str = "杭州市") -> str:
    return f"O{i},U{i % 13},app,2026-05-20 10:00:00,,paid,100.00,10.00,0,90.00,,,浙江省,{city}"


_CSV_EDGES = [
    _order_line(1),
    "",                                                            # blank lines: skipped, not numbered
    "   \t",
    "\u3000",                                                      # an ideographic space alone: blank to Python
    _order_line(2, '"杭州市, 西湖区"'),                             # a quoted comma
    _order_line(3, '"He said ""hi"""'),                            # escaped quotes
    _order_line(4, 'a"b'),                                         # a quote inside a field: literal
    _order_line(5, "x") + ",extra",                                # a field too many
    "O6,U1,app",                                                   # too few
    "just text",                                                   # one field
    _order_line(7, " \u3000杭州市\u00a0 "),                         # Unicode spaces around a value
    _order_line(8, "  "),                                          # only spaces: empty
    _order_line(9) + "\r",                                         # a CRLF ending
    _order_line(10, "a\rb"),                                       # a carriage return inside a field
    _order_line(11, "a\x00b"),                                     # a NUL byte
    _order_line(12, "a\x0bb"),                                     # a vertical tab
    _order_line(13, "a\tb"),                                       # a tab
    _order_line(1),                                                # a duplicate key
    _order_line(14).replace("paid", "PAID").replace("100.00", "1e2"),
    ",,,,,,,,,,,,,",                                               # every field empty
    '""',                                                          # one empty quoted field: blank
    _order_line(15, "\u2028杭州\u0085"),                            # line separators Python does not split on
    _order_line(16),                                               # the last line, without a newline
]


@pytest.mark.parametrize("name, data, reader", [
    ("orders_20260520.csv", "\n".join([_ORDERS_HEADER] + _CSV_EDGES).encode(), "fast"),
    ("orders_20260521.csv", "\n".join([_ORDERS_HEADER] + _CSV_EDGES[:4]).encode() + b"\n", "fast"),
    ("orders_20260522.csv", codecs.BOM_UTF8 + "\n".join([_ORDERS_HEADER] + _CSV_EDGES[:9]).encode(), "fast"),
    ("orders_20260523.csv", "\r\n".join([_ORDERS_HEADER] + _CSV_EDGES[:12]).encode("gb18030"), "fast"),
    ("orders_20260524.csv", ("\n".join([_ORDERS_HEADER.upper().replace("CITY", " City "), _order_line(1),
                                        _order_line(2)]) + "\n").encode(), "fast"),
    ("orders_20260525.csv", ("\n".join([_ORDERS_HEADER.replace(",city", ",town,extra"),
                                        _order_line(1) + ",x"]) + "\n").encode(), "fast"),
    ("orders_20260526.csv", "\n".join([_ORDERS_HEADER, _order_line(1, '"multi'), 'line",x', _order_line(2)]).encode(),
     "exact: a quoted field runs past its line"),
    ("orders_20260527.csv", "\n".join([_ORDERS_HEADER, _order_line(1, '"open'), _order_line(2)]).encode(),
     "exact: a quoted field runs past its line"),
    ("orders_20260528.csv", ("\n".join([_ORDERS_HEADER, _order_line(1)]) + "\n").encode() + b"O2,\xff\xfe,app\n"
     + _order_line(3).encode(), "fast"),                      # broken bytes: that line is bad_encoding
    ("orders_20260604.csv", codecs.BOM_UTF8 + "\n".join([_ORDERS_HEADER] + _CSV_EDGES[:6]).encode() + b"\n"
     + _order_line(7, "X").encode().replace(b",X", b",\xe6\x9d") + b"\n\xff\n\"\xfe\",x\n" + _order_line(8).encode(),
     "fast"),                                                # a cut character, a broken line with no comma, one quoted
    ("orders_20260608.csv", "\n".join([_ORDERS_HEADER] + ['"' + _order_line(i).replace(",", '","') + '"'
                                                          for i in range(1, 1_502)] + [_order_line(1)]).encode(),
     "exact: most lines need the exact reader"),              # an export that quotes every field
    ("orders_20260605.csv", b"order_id,\xff\n" + _order_line(1).encode(), "exact: broken bytes in its header"),
    ("orders_20260607.csv", _ORDERS_HEADER.encode() + b",\xff\n" + _order_line(1).encode() + b",x\n",
     "exact: broken bytes in its header"),                  # an unknown column: noted with \\xff, not a crash
    ("orders_20260606.csv", "\n".join([_ORDERS_HEADER, _order_line(1)]).encode() + b"\n\"O2\xff\n,x\"\n",
     "exact: a quoted field runs past its line"),
    ("orders_20260529.csv", ('"order_id\nx",user_id\n' + _order_line(1)).encode(),
     "exact: a quoted field runs past its line"),
    ("orders_20260530.csv", ('order_id,"user_id\n' + _order_line(1)).encode(),
     "exact: a quoted field runs past its line"),
    ("orders_20260531.csv", b"", "exact: no header"),
    ("orders_20260601.csv", ("\n".join(["O1,U1", _order_line(1)])).encode(), ""),  # no header: refused whole
    ("orders_20260602.csv.gz", gzip.compress("\n".join([_ORDERS_HEADER] + _CSV_EDGES).encode("gb18030")), "fast"),
    ("orders_20260603.csv.gz", gzip.compress("\n".join([_ORDERS_HEADER] + _CSV_EDGES).encode())[:-30], ""),
])
def test_the_fast_csv_reader_loads_and_refuses_exactly_what_the_exact_reader_does(tmp_path, name, data, reader):
    got = _same_through_both_readers(tmp_path, name, data, reader)
    if name in ("orders_20260520.csv", "orders_20260602.csv.gz"):
        assert len(got[False][1]) >= 10 and len(got[False][2]) >= 6  # both loaded and refused rows compared


def test_the_fast_csv_reader_keeps_the_exact_readers_length_limits(tmp_path, monkeypatch):
    """Python's csv refuses a field over its limit (131,072 characters), and the exact reader measures
    a line in the file's own bytes: a GB18030 line over the limit may fit it as UTF-8 (found by review)."""
    long_field = ("\n".join([_ORDERS_HEADER, _order_line(1, "x" * 131_073), _order_line(2)]) + "\n").encode()
    got = _same_through_both_readers(tmp_path / "a", "orders_20260520.csv", long_field, "fast")
    assert got[True][2][0][2:] == ("malformed_row", None, "CSV syntax error: field larger than field limit (131072)")
    monkeypatch.setattr(landing, "MAX_LINE_BYTES", 2_000)
    monkeypatch.setattr(landing, "CHUNK_BYTES", 512)
    halved = ("\n".join([_ORDERS_HEADER, _order_line(1, "\u00c0" * 600), _order_line(2)]) + "\n").encode("gb18030")
    assert len(halved.split(b"\n")[1]) > 2_000 > len(halved.decode("gb18030").split("\n")[1].encode())
    _same_through_both_readers(tmp_path / "b", "orders_20260521.csv", halved,
                               "exact: a line longer than a line may hold")




# --- Parquet (landing.parquet_into_landed) ---------------------------------------------------------

def _parquet_bytes(table) -> bytes:
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=7)  # several row groups: batches and row numbers across them
    return buf.getvalue()


def _shipments_table(n: int):
    """Shipments with what the readers must turn into the same text: padding of every kind Python strips
    (a tab, an ideographic space, U+00A0), blanks and nulls, typed timestamps with a zone, a float32,
    a name in capitals with spaces, a column the contract does not have, and rows the contract refuses
    (a missing order id, a timestamp that is not one) whose raw text holds quotes and a control character."""
    from datetime import datetime

    import pyarrow as pa

    ids = [f"SH{i}" for i in range(n)]
    orders = [None if i % 11 == 3 else (" " if i % 11 == 5 else f"O{i}") for i in range(n)]
    carriers = ["\u3000顺丰\t", "EMS\u00a0", "", None, 'Zhong"tong\x01'] * (n // 5 + 1)
    shipped = pa.array([datetime(2026, 5, 21, i % 24, i % 60) for i in range(n)], pa.timestamp("us", tz="UTC"))
    delivered = ["2026-05-23 10:00:00" if i % 3 else ("not a time" if i % 9 == 0 else None) for i in range(n)]
    return pa.table({
        "shipment_id": ids, "order_id": orders, " Carrier ": carriers[:n], "warehouse_id": ["WH-SH"] * n,
        "shipped_at": shipped, "delivered_at": delivered, "weight_kg": pa.array([1.1] * n, pa.float32()),
    })


@pytest.mark.parametrize("name, rows", [("shipments_20260520.parquet", 40), ("shipments_20260521.parquet", 1),
                                        ("shipments_20260522.parquet", 0)])  # a day with no shipment yet
def test_the_fast_parquet_reader_loads_and_refuses_exactly_what_the_exact_reader_does(tmp_path, name, rows):
    got = _same_through_both_readers(tmp_path, name, _parquet_bytes(_shipments_table(rows)), "fast",
                                     source="shipments")
    if rows == 40:
        assert len(got[False][1]) >= 20 and len(got[False][2]) >= 8  # both loaded and refused rows compared
        assert any('\\"tong\\u0001' in text for _, text, *_ in got[True][2])  # the exact reader's JSON text


def test_a_parquet_column_duckdb_cannot_make_text_refuses_the_file_in_both_readers(tmp_path):
    """The fast reader's own refusal: the file opens and its batches read, but its scratch connection
    cannot cast a column to text (a 256-bit decimal: DuckDB's widest is 128 bits). The file is refused
    whole, with the reason naming it, exactly as the exact reader refuses it; nothing of it is loaded."""
    from decimal import Decimal

    import pyarrow as pa

    table = _shipments_table(10)
    table = table.set_column(table.schema.get_field_index("delivered_at"), "delivered_at",
                             pa.array([Decimal("1.10")] * 10, pa.decimal256(50, 2)))
    got = _same_through_both_readers(tmp_path, "shipments_20260520.parquet", _parquet_bytes(table), "",
                                     source="shipments")
    assert got[True][1] == []
    ((row, _, rule, _, reason),) = got[True][2]
    assert (row, rule) == (0, "unreadable_file")
    assert "shipments_20260520.parquet: not a readable Parquet file" in reason and "Decimal" in reason


def test_a_parquet_file_the_fast_reader_cannot_read_is_refused_as_the_exact_reader_refuses_it(tmp_path):
    data = _parquet_bytes(_shipments_table(10))
    _same_through_both_readers(tmp_path, "shipments_20260520.parquet", data[:len(data) // 2] + data[-8:], "")
