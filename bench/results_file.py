"""Where the bench scripts leave their numbers: bench/results/NAME.json
(ignored by git; bench/run merges them)."""

import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(name, data):
    """Writes `data` as bench/results/`name`.json and says so."""
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", name + ".json")
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    print(f"wrote {os.path.relpath(path, ROOT)}")
