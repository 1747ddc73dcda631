#!/usr/bin/python3
"""Long mode of the random-program checks (test/python/random_programs.py):
generates N programs from a seed and checks each; prints every failure
(with its IR) and a summary line.

    scripts/random_programs.py [--count N] [--seed S] [--build DIR]

Builds nothing: run scripts/build.sh first (or scripts/test.sh).
"""

import argparse
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--build", default=os.environ.get("POSENC_BUILD_DIR",
                                                      os.path.join(ROOT, "build")))
    args = ap.parse_args()
    sys.path[:0] = [os.path.join(args.build, "python_packages"),
                    os.path.join(ROOT, "test", "python")]
    import numpy as np
    import random_programs as rp

    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"random programs: seed {seed}, {args.count} programs, "
          f"{len(rp.PASSES)} passes + alternative pipeline each")
    gen = rp.Generator(np.random.default_rng(seed))
    failures, kinds, start = 0, {}, time.time()
    for i in range(args.count):
        p = gen.program()
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
        try:
            rp.check(p)
        except Exception:  # noqa: BLE001 - report and go on
            failures += 1
            print(f"--- program {i} ({p.kind}) failed:")
            traceback.print_exc(limit=1)
    mix = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    print(f"random programs: {args.count} checked ({mix}), {failures} failed, "
          f"{time.time() - start:.0f} s, seed {seed}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
