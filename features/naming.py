"""Column names generated from data values (one-hot levels and instruments), and the key that
tells two spellings of one free-text value apart from two values.

Names are lower-case ASCII letters, digits and underscores, so they are valid everywhere a
feature name goes (XGBoost, MLflow, CSV headers). Two values that would share a name get
`_2`, `_3`, … in the order of the (sorted) values, so the mapping is deterministic.

A learned level or instrument is matched by its key (`text_key`), at fitting and at scoring
alike: an export that writes "phq9" or "PHQ9 " where training saw "PHQ9" means the same
instrument, and would otherwise match nothing, leaving every patient's scores unknown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import polars as pl

_NOT_NAME = re.compile(r"[^a-z0-9]+")


def text_key(text: pl.Expr) -> pl.Expr:
    """The form the spellings of one free-text value share: Unicode compatibility form (NFKC),
    no invisible format characters (Unicode category Cf: zero-width spaces and joiners, a byte
    order mark, soft hyphens, direction marks, which a copy from a web page or a spreadsheet
    carries unseen), lower case, each run of whitespace one space and none around it. "PHQ9",
    " phq9", "PHQ\u200b9" and "PHQ\u00a09" share a key with "PHQ9", "phq 9"; "PHQ-9" is another
    value."""
    return (text.str.normalize("NFKC").str.replace_all(r"\p{Cf}+", "").str.to_lowercase()
            .str.replace_all(r"\s+", " ").str.strip_chars())


def matching(levels: Sequence[str]) -> tuple[list[str], Callable[[pl.Expr], pl.Expr]]:
    """How data values are matched to `levels`: the targets, and what to apply to a value (of
    any type, read as text) before comparing. By key (`text_key`), or exactly where two levels
    share a key: a spec fitted before levels were keyed may hold both spellings, which it
    trained on as two values.

    >>> matching(["PHQ9", "GAD7"])[0], matching(["Asian", "asian"])[0]
    (['phq9', 'gad7'], ['Asian', 'asian'])
    """
    keys = keys_of(levels)
    if len(set(keys)) == len(keys):
        return keys, lambda value: text_key(value.cast(pl.String))
    return list(levels), lambda value: value.cast(pl.String)


def keys_of(values: Sequence[str]) -> list[str]:
    """`text_key` of each value, in order.

    >>> keys_of(["PHQ9 ", "Craving  VAS", "ＰＨＱ9", "PHQ\u200b9"])
    ['phq9', 'craving vas', 'phq9', 'phq9']
    """
    return pl.select(text_key(pl.Series(values, dtype=pl.String))).to_series().to_list()


def distinct_values(values: pl.Series) -> tuple[str, ...]:
    """The values observed, one spelling per key (the first in sort order), sorted.

    >>> distinct_values(pl.Series(["asian", "Black", "Asian", None, "Asian "]))
    ('Asian', 'Black')
    """
    seen = pl.DataFrame({"value": values.drop_nulls().cast(pl.String).unique()})
    first = seen.group_by(text_key(pl.col("value")).alias("key")).agg(pl.col("value").min())
    return tuple(sorted(first["value"].to_list()))


def slug(text: str) -> str:
    """A name-safe form of a data value.

    >>> slug("White British"), slug("PHQ-9"), slug("craving_vas"), slug("???")
    ('white_british', 'phq_9', 'craving_vas', 'value')
    """
    name = _NOT_NAME.sub("_", text.lower()).strip("_")
    return name or "value"


def level_columns(prefix: str, levels: Sequence[str]) -> list[str]:
    """One column name per level: `<prefix>_<slug(level)>`, made unique in level order.

    >>> level_columns("ethnicity", ["Asian", "asian", "Black"])
    ['ethnicity_asian', 'ethnicity_asian_2', 'ethnicity_black']
    """
    names: list[str] = []
    for level in levels:
        base = f"{prefix}_{slug(level)}"
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names
