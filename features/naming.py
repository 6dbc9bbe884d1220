"""Column names generated from data values: one-hot levels and instruments.

Names are lower-case ASCII letters, digits and underscores, so they are valid everywhere a
feature name goes (XGBoost, MLflow, CSV headers). Two values that would share a name get
`_2`, `_3`, … in the order of the (sorted) values, so the mapping is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NOT_NAME = re.compile(r"[^a-z0-9]+")


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
