"""One account for sale, as the model sees it, read from any of the marketplace's spellings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field as dataclass_field
from dataclasses import make_dataclass

from valuation.parsing import PARSERS, SpellingError
from valuation.schema import FEATURES, header_lookup, normalise_header


class ListingError(ValueError):
    """A listing with unreadable fields; `problems` maps each field to its reason."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{name}: {why}" for name, why in problems.items()))
        self.problems = problems


PYTHON_TYPES = {"count": int, "flag": bool, "text": str}
"""A feature's value in a Listing, by its kind."""


class _Reading:
    """What every Listing can do besides holding its values."""

    __slots__ = ()

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
                if field.default is None:
                    problems[field.name] = f"{field.name} is missing"
                else:
                    parsed[field.name] = field.default
                continue
            try:
                parsed[field.name] = PARSERS[field.name](named[field.name])
            except SpellingError as error:
                problems[field.name] = error.reason
        if problems:
            raise ListingError(problems)
        return cls(**parsed)


Listing = make_dataclass(
    "Listing",
    [
        (field.name, PYTHON_TYPES[field.kind])
        if field.default is None
        else (field.name, PYTHON_TYPES[field.kind], dataclass_field(default=field.default))
        for field in FEATURES
    ],
    bases=(_Reading,),
    frozen=True,
    slots=True,
)
Listing.__module__ = __name__
Listing.__doc__ = "One account for sale: a value for each feature of the schema, in its order."
