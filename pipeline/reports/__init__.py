"""Pure reports: the analyses, drift profile, figures, TRIPOD+AI mapping and HTML rendering.

`analysis` (decision curves, subgroups), `drift` (training profile, PSI, out-of-range values),
`tripod` (the checklist), `figures` (matplotlib PNGs as data URIs) and `render` (one
self-contained HTML string). Data in, data or strings out: no file I/O and no MLflow here. The
train stage uses the drift profile and figures; the audit stage (`pipeline.audit`) reads the
run's artifacts, calls these and writes the report.
"""
