"""Benchmarks of soajs-python against same-process baselines: ``python -m benchmarks``.

Every number printed is a ratio measured in one run: the candidate (the soajs code path) and
its baseline (a bare app, ``json.loads`` of the same bytes, a plain dict lookup) are timed in
alternating rounds, so drift on a noisy machine hits both alike. See ``docs/performance.md``.
"""
