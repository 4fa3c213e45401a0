"""Hostile values for property tests: what a careless export, a broken spreadsheet or a hostile
client may send in place of a listing's values. Shared by the parser and the API tests."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st

from valuation.parsing import SpellingError, parse_fans

NON_FINITE = [
    math.nan,
    math.inf,
    -math.inf,
    np.float64("nan"),
    np.float32("inf"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
]
HUGE = [
    1e308,
    -1e308,
    1.7976931348623157e308,
    5e-324,
    10**400,
    -(10**400),
    10**5000,  # str() refuses it: more than 4,300 digits
    str(10**400),
    "9" * 10_000,
    10**19,
    np.int64(2**63 - 1),
    np.uint64(2**64 - 1),
    Fraction(10**400, 3),
    Decimal("1e400"),
    Decimal("131300"),
]
NUMBER_WORDS = [
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "∞",
    "1e308",
    "1E400",
    "-1",
    "-0",
    "0",
    "+5",
    "−5",  # U+2212 minus sign
    "1_000",  # Python's int() and Decimal() would read it
    "0x10",
    "0b1",
    "1e3",
    "١٢٣",  # Arabic-Indic digits: Python's int() would read them
    "१२३",  # Devanagari
    "10²",  # NFKC would make it 102
    "①",  # NFKC would make it 1
    "½",
    "Ⅻ",
]
MIXED_SPELLINGS = [
    "13.13W万",
    "1.2亿W",
    "1,2,3",
    "13,13W",  # a decimal comma: must not become 1313W
    "1,00",
    ",100",
    "100,",
    "1,000.5.5",
    "1.2.3",
    "1..2",
    "13.13WW",
    "W13",
    "万13",
    "1 3",
    "１３.１３Ｗ",  # full-width: accepted
    "1３.13w",
    "¥¥100",
    "100元元",
    "¥-100",
    "1e5W",
    "３.５ｋ",
    "有违规无违规",
    "已开通未开通",
    "yes no",
    "2025-02-30",
    "0000-01-01",
    "9999-12-31",
    "20250301000",
]
ODD_CHARACTERS = [
    "\x00",
    "\x1b",
    "\x7f",
    "\x1c",  # a "file separator": Python's strip() takes it for white space
    "\x85",
    "\t",
    "\n",
    "\r",
    "\u00a0",  # no-break space
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\ufeff",  # byte order mark
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u3000",  # ideographic space
    "\u0301",  # combining acute accent
    "\ud800",  # lone surrogates: JSON can carry them, UTF-8 cannot
    "\udfff",
    "😀",
    "㍻",  # NFKC makes two characters of it
    "ﬁ",
    "\uffff",
    "\U0010ffff",
]
ODD_SEQUENCES = [
    "👨\u200d👩\u200d👧",
    "e\u0301",
    "\r\n",
    "\ud83d\ude00",
]  # the last: a surrogate pair
LONG = ["x" * 10_000, "美" * 10_000, "9" * 41, " " * 10_000 + "1" + " " * 10_000]

odd_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(ODD_CHARACTERS),
        st.sampled_from(list("0123456789.,-+ wWkK万亿千¥元")),
        st.characters(codec="utf-8"),
        st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Nd", "No", "Nl"]),  # Cs: surrogates
    ),
    max_size=24,
)
"""Text mixing spelling characters with control, format, surrogate and odd digit characters."""

hostile_value = st.one_of(
    st.sampled_from(
        NON_FINITE + HUGE + NUMBER_WORDS + MIXED_SPELLINGS + ODD_CHARACTERS + ODD_SEQUENCES + LONG
    ),
    odd_text,
    st.builds(
        lambda odd, word: odd + word + odd,
        st.sampled_from(ODD_CHARACTERS),
        st.sampled_from(MIXED_SPELLINGS + NUMBER_WORDS),
    ),
    st.floats(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(),
    st.fractions(),
    st.booleans(),
    st.none(),
    st.text(min_size=1),
)
"""Any one value a listing's field might be given in place of a sane one."""

json_hostile_value = st.one_of(
    st.sampled_from(NUMBER_WORDS + MIXED_SPELLINGS + ODD_CHARACTERS + ODD_SEQUENCES + LONG),
    # Python's json module, which FastAPI reads bodies with, takes NaN and Infinity literals.
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 10**19, 10**400]),
    odd_text,
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
"""What a JSON body can carry in place of a field's value, lone surrogates (as \\ud800 escapes)
and NaN included."""


def one_by_one(values) -> list:
    """The scalar fans parser over `values`: (fans, None) or (None, reason) each, which the bulk
    reader must answer alike."""
    answers = []
    for value in values:
        try:
            answers.append((parse_fans(value), None))
        except SpellingError as error:
            answers.append((None, error.reason))
    return answers
