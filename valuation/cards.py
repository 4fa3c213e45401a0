"""A listing card as a broker copies it from a marketplace page, read into the listing's fields.

Two shapes are read, with the schema's own headers as labels (粉丝数量, 有无违规, ... or the
English names):
- the page's own: the values first, then the labels, in the same order
  (`13.13WW\\n有违规\\n未开通\\n已认证\\n粉丝数量\\n有无违规\\n直播权限\\n认证状态`);
- `label: value` lines (or `label：value`), in any order.
The values are not judged here: `Listing.parse` reads them as any other listing's.
"""

from __future__ import annotations

import re

from valuation.schema import header_lookup, normalise_header

MAX_CARD_CHARACTERS = 2_000
_PAIR = re.compile(r"^\s*(?P<label>[^:：]+?)\s*[:：]\s*(?P<value>.*?)\s*$")


class CardError(ValueError):
    """The text is not a card this reader knows."""


def read_card(text: str) -> dict[str, str]:
    """The card's values by field name (only the fields found)."""
    if len(text) > MAX_CARD_CHARACTERS:
        raise CardError(f"a card is at most {MAX_CARD_CHARACTERS:,} characters")
    lookup = header_lookup()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise CardError("the card is empty")
    values: dict[str, str] = {}
    pairs = [_PAIR.match(line) for line in lines]
    if any(pairs):
        for match in pairs:
            name = match and lookup.get(normalise_header(match["label"]))
            if name is not None:
                values.setdefault(name, match["value"])
        return values
    labels = [lookup.get(normalise_header(line)) for line in lines]
    named = [name for name in labels if name is not None]
    given = [line for line, name in zip(lines, labels, strict=True) if name is None]
    if not named:
        raise CardError("no field label found (粉丝数量, 有无违规, 直播权限, 认证状态, 类目, ...)")
    if len(named) != len(given):
        raise CardError(
            f"{len(given)} values and {len(named)} labels: a card lists one value per label"
        )
    return dict(zip(named, given, strict=True))
