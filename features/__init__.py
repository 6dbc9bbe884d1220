"""Polars feature builders and the point-in-time landmark table (pure: frames in, frames out).

`build.landmark_table` / `build.scoring_table` assemble the tables of docs/ARCHITECTURE.md from
one builder per source (`demographic`, `bdnf`, `hrv`, `therapy`, `assessments`), the landmark
rules (`landmarks`), the shared as-of machinery (`asof`) and days since intake (`time`).
`spec.FeatureSpec` fixes the columns learned at training; `registry` explains each of them.
"""
