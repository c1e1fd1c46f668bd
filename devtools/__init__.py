"""Developer tooling: start FlixTube from its Procfiles, for `make run`, tests and benchmarks."""
