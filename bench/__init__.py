"""Benchmarks of FlixTube against reference servers; see bench/README.md."""
