"""`relapse audit`: the analyses behind the audit report and its offline HTML rendering.

`analysis` (pure: decision curves, subgroups, drift, TRIPOD+AI), `figures` (matplotlib PNGs as
data URIs) and `render` (one self-contained HTML string). No I/O and no MLflow here.
"""
