"""The benchmarks: run from the repository root as modules (`python -m bench.bench_evaluate`), with the
project installed into .venv (`make install`), so that they import it and `infra` without path tricks."""
