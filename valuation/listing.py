"""One account for sale, as the model sees it, read from any of the marketplace's spellings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from valuation.parsing import PARSERS, SpellingError
from valuation.schema import FEATURES, header_lookup, normalise_header


class ListingError(ValueError):
    """A listing with unreadable fields; `problems` maps each field to its reason."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{name}: {why}" for name, why in problems.items()))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Listing:
    fans: int
    violations: bool
    live_permission: bool
    verified: bool
    category: str

    @classmethod
    def parse(cls, values: Mapping[str, object]) -> Listing:
        """From canonical or marketplace keys (`fans` or `粉丝数量`) and any accepted spelling."""
        lookup = header_lookup()
        named, keys, problems = {}, {}, {}
        for key, value in values.items():
            name = lookup.get(normalise_header(key), key)
            if name in keys:  # `fans` and `粉丝数量` both given: neither is guessed to win
                first, second = (str(k)[:40] for k in (keys[name], key))
                problems[name] = f"{name} is given twice, as {first!r} and {second!r}"
            named[name], keys[name] = value, key
        parsed = {}
        for field in FEATURES:
            if field.name in problems:
                continue
            if field.name not in named:
                problems[field.name] = f"{field.name} is missing"
                continue
            try:
                parsed[field.name] = PARSERS[field.name](named[field.name])
            except SpellingError as error:
                problems[field.name] = error.reason
        if problems:
            raise ListingError(problems)
        return cls(**parsed)


assert [f.name for f in fields(Listing)] == [f.name for f in FEATURES], "Listing follows the schema"
