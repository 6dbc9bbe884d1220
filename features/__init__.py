"""Polars feature builders and the point-in-time landmark table (pure: frames in, frames out).

`build.landmark_table` / `build.scoring_table` assemble the tables of docs/ARCHITECTURE.md from
one builder per source (`demographic`, `bdnf`, `hrv`, `therapy`, `assessments`), the landmark
rules (`landmarks`), the shared as-of machinery (`asof`) and days since intake (`time`).
`spec.FeatureSpec` fixes the columns learned at training; `registry` explains each of them.
"""

ENGINE = "in-memory"
"""The Polars engine the feature tables are collected with, by every caller in the project.

Polars 2 defaults to its streaming engine, made for scans larger than memory. A feature table is
built from frames already in memory (a shard, a scoring batch) through a plan of some 300 nodes,
mostly small joins and group-bys, and there the in-memory engine does better: on 30,000 synthetic
patients (`benchmarks/bench_features.py --synthetic`) the sharded landmark table took 7.2 s
against 8.9 s at a lower peak RSS (1.23 against 1.42 GB) and equalled the one-pass table bit for
bit (the streaming engine's differed in the last digits); a four-patient table takes 38 ms
against 95 ms. Scans of input and work files keep the default engine, which bounds their memory.
"""
