"""Runs one contender of a bench script in its own process (so each pins
its own threads and none inherits another's allocator state): the script
is called again with `--worker ARGS...` and prints its result as JSON on
its last stdout line; POSENC_BENCH_OUT tells it where to save its output
array."""

import json
import os
import subprocess
import sys


def measure(script, args, out_path, env):
    """The worker's JSON result, or {"error": its last stderr line}."""
    proc = subprocess.run([sys.executable, script, "--worker", *map(str, args)],
                          capture_output=True, text=True,
                          env=dict(os.environ, POSENC_BENCH_OUT=out_path, **env))
    if proc.returncode != 0:
        return dict(error=(proc.stderr.strip().splitlines() or ["failed"])[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_header(header):
    print(header)
    print("-" * len(header))
