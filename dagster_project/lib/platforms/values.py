"""Cleaning one cell of a seller-centre export into a contract value, or refusing it with a reason.

Every function takes what the reader produced (text from a CSV; text, float, int or datetime from an
XLSX cell) and returns the contract's text form, or raises `Refused` with a sentence a shop's
operations staff can act on. Nothing is guessed: an amount with words in it, an id that Excel turned
into `7.02255E+12`, a date in no known format are refused, not repaired.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta, timezone

# Excel's day 0 in the 1900 date system (with its 1900-02-29 bug absorbed: serials from 61 on).
_EXCEL_EPOCH = datetime(1899, 12, 30)
# Serial numbers that are plausibly dates (1954..2119): outside this a number is not read as a date.
_SERIAL_MIN, _SERIAL_MAX = 20000.0, 80000.0

DEFAULT_TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%d", "%Y/%m/%d", "%Y%m%d%H%M%S",
)

_SCI = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")
_AMOUNT = re.compile(r"^-?\d+(\.\d{1,2})?$")
_AMOUNT_LONG = re.compile(r"^-?\d+\.\d{3,}$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_INT = re.compile(r"^\d+(\.0+)?$")
_SERIAL_TEXT = re.compile(r"^\d{5}(\.\d+)?$")
_ISO_FAST = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?$")
_PHONE_PREFIX = re.compile(r"^(\+?86|0086)[- ]?")


class Refused(ValueError):
    """A cell that cannot become a contract value; the message says why, naming the value."""


def shown(v) -> str:
    s = str(v)
    return repr(s if len(s) <= 60 else s[:57] + "...")


def text(v) -> str | None:
    """Cell text without the Excel guards exports add: `="…"`, a leading `'`, tabs, edge spaces."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, (int, datetime, date)):
        return str(v)
    s = str(v).replace("\t", "").strip()
    if s.startswith('="') and s.endswith('"') and len(s) >= 3:
        s = s[2:-1].strip()
    if s.startswith("'"):
        s = s[1:].strip()
    return s or None


def ident(v) -> str | None:
    """An id (order number, SKU code): kept as text; refused when Excel rewrote it as a number."""
    if isinstance(v, float):
        # Excel keeps 15 significant digits: a longer id stored as a number has lost its tail.
        if not v.is_integer() or abs(v) >= 1e15:
            raise Refused(f"id {shown(v)} was stored by Excel as a number and has lost digits; "
                          f"export it again with the column as text")
        return str(int(v))
    s = text(v)
    if s is not None and _SCI.match(s):
        raise Refused(f"id {shown(s)} was turned into scientific notation by Excel: its digits are "
                      f"lost, so the row cannot be matched; export it again with the column as text")
    return s


def amount(v) -> str | None:
    """Yuan with 2 decimals. Accepts `元`/`¥` and thousands separators; refuses any other text."""
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if isinstance(v, float) and abs(v * 100 - round(v * 100)) > 1e-6:
            raise Refused(f"amount {shown(v)} has more than 2 decimals")
        return f"{v:.2f}"
    s = text(v)
    if s is None:
        return None
    s = s.replace("元", "").replace("¥", "").replace("￥", "").replace(" ", "").strip()
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    if not _AMOUNT.match(s):
        if _AMOUNT_LONG.match(s):
            raise Refused(f"amount {shown(v)} has more than 2 decimals")
        raise Refused(f"amount {shown(v)} is not a number of yuan (text inside an amount is not guessed)")
    if s.startswith("-"):
        raise Refused(f"amount {shown(v)} is negative")
    whole, _, frac = s.partition(".")
    return f"{int(whole)}.{(frac + '00')[:2]}"


def cents(a: str | None) -> int:
    if a is None:
        return 0
    whole, _, frac = a.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def from_cents(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def integer(v) -> str | None:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    s = text(v)
    if s is None:
        return None
    if not _INT.match(s):
        raise Refused(f"{shown(v)} is not a whole number")
    return str(int(float(s)))


def _from_serial(x: float) -> datetime:
    # to the second: Excel stores times as fractions of a day and rounding errors are sub-second
    return _EXCEL_EPOCH + timedelta(seconds=round(x * 86400))


def _iso(dt: datetime) -> str:
    if dt.tzinfo is not None:
        off = dt.utcoffset() or timedelta(0)
        sign = "+" if off >= timedelta(0) else "-"
        mins = abs(int(off.total_seconds())) // 60
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{mins // 60:02d}:{mins % 60:02d}"
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def timestamp(v, formats: tuple[str, ...] = DEFAULT_TIMESTAMP_FORMATS) -> str | None:
    """Contract timestamp text: local business time without offset, or with the export's offset.

    Reads Excel's re-saved dates (`2016/5/23 22:02`), serial numbers (45678.5, as a number cell or
    as text) and offsets (`2025-12-07 19:08:25 +0000`)."""
    if v is None:
        return None
    if isinstance(v, datetime):
        return _iso(v)
    if isinstance(v, date):
        return _iso(datetime(v.year, v.month, v.day))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if not _SERIAL_MIN <= float(v) <= _SERIAL_MAX:
            raise Refused(f"{shown(v)} is a number but not an Excel date serial")
        return _iso(_from_serial(float(v)))
    s = text(v)
    if s is None:
        return None
    if _SERIAL_TEXT.match(s) and _SERIAL_MIN <= float(s) <= _SERIAL_MAX:
        return _iso(_from_serial(float(s)))
    if _ISO_FAST.match(s):  # the common case, parsed in C (strptime costs ~50 us a value)
        return _iso(datetime.fromisoformat(s))
    for fmt in formats:
        try:
            return _iso(datetime.strptime(s, fmt))
        except ValueError:
            continue
    raise Refused(f"{shown(s)} is not a date and time in a known format")


def timestamp_key(ts: str) -> datetime:
    """Comparable instant of a contract timestamp (offset-less = local; compared as written)."""
    if "T" in ts and (ts.endswith("Z") or "+" in ts[10:] or ts[19:20] == "-"):
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)
    return datetime.fromisoformat(ts)


def phone_digits(v) -> str | None:
    """An unmasked mainland mobile number (11 digits starting with 1), or None: masked numbers
    (`138****1234`, `1******6198`), landlines and anything else give no phone."""
    s = text(v)
    if s is None or "*" in s:
        return None
    s = _PHONE_PREFIX.sub("", s.replace(" ", "").replace("\t", ""))
    s = s.replace("-", "")
    return s if re.fullmatch(r"1\d{10}", s) else None


def phone_hash(v) -> str | None:
    """sha256 hex of the 11 digits, as the contract's users.phone_hash (same person, any channel)."""
    digits = phone_digits(v)
    return hashlib.sha256(digits.encode()).hexdigest() if digits else None


def buyer_user_id(namespace: str, key: str) -> str:
    """Per-platform user id from the platform's buyer key (member name, account, nickname, email):
    the key is never stored, only its hash under the platform's namespace."""
    return f"{namespace}:{hashlib.sha256(f'{namespace}:{key}'.encode()).hexdigest()[:32]}"


_MUNICIPALITIES = {"北京": "北京市", "上海": "上海市", "天津": "天津市", "重庆": "重庆市"}
_SHORT_PROVINCES = {
    "内蒙古": "内蒙古自治区", "广西": "广西壮族自治区", "西藏": "西藏自治区", "宁夏": "宁夏回族自治区",
    "新疆": "新疆维吾尔自治区", "香港": "香港特别行政区", "澳门": "澳门特别行政区",
}
_PROVINCE_RE = re.compile(r"^(.{2,12}?(?:省|自治区|特别行政区|市))")
_CITY_RE = re.compile(r"^(.{1,15}?(?:自治州|地区|盟|市))")


def split_address(v) -> tuple[str | None, str | None]:
    """Province and city from an address like `吉林省 通化市 柳河县 …(135300)` or
    `浙江省杭州市西湖区…`; (None, None) when the address does not start with a province."""
    s = text(v)
    if s is None:
        return None, None
    parts = s.split()
    if len(parts) >= 2:
        prov, city = parts[0], parts[1]
        prov = _MUNICIPALITIES.get(prov, _SHORT_PROVINCES.get(prov, prov))
        if prov.endswith(("省", "自治区", "特别行政区", "市")):
            return prov, city if city.endswith(("市", "自治州", "地区", "盟")) else None
    for short, full in _MUNICIPALITIES.items():
        if s.startswith(full) or s.startswith(short):
            return full, full
    m = _PROVINCE_RE.match(s)
    if not m:
        return None, None
    prov = m.group(1)
    rest = s[len(prov):]
    c = _CITY_RE.match(rest)
    return prov, (c.group(1) if c else None)
