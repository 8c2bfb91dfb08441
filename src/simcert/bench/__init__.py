"""Benchmark suites (`simcert bench`): each writes a CSV; `simcert.bench.render` turns CSVs into docs/benchmarks.md."""
