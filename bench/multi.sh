#!/bin/sh
# vessel vs QEMU with 2 harts (or CPUS=N): the same benchmark as run.py, plus
# one gzip per hart in parallel. Extra arguments go to run.py.
exec python3 "$(dirname "$0")/run.py" --cpus "${CPUS:-2}" "$@"
