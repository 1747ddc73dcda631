#!/usr/bin/env bash
# Runs a libFuzzer target (ASan+UBSan, coverage-guided) for a given time
# and reports executions and findings.
#
#   scripts/fuzz.sh [SECONDS] [JOBS] [TARGET]
#       SECONDS  default 600; JOBS default 1
#       TARGET   posenc-fuzz (default): IR through every pass and pipeline
#                posenc-fuzz-npy: the .npy reader
#
# Seeds: for posenc-fuzz every lit test file split at "// -----" (like
# --split-input-file), 300 programs of test/python/random_programs.py and
# 120 of raise_programs.py (posenc-raise's importer forms),
# with a dictionary of their tokens; for
# posenc-fuzz-npy, .npy files of every dtype written by numpy. The corpus
# grows in build-sanitize/fuzz/<target>/corpus across runs; findings
# (crash-*, leak-*, timeout-*, oom-*) land in .../findings.
# Reproduce one with: build-sanitize/bin/<target> FILE
# POSENC_FUZZ_FLAGS adds libFuzzer flags (e.g. "-fork=1 -ignore_crashes=1"
# to keep going after a finding).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-600}
jobs=${2:-1}
target=${3:-posenc-fuzz}
POSENC_SETUP_SANITIZE=1 "$root/scripts/setup.sh" >/dev/null || exit 1
source "$root/scripts/sanitize-env.sh"
"$root/scripts/build.sh" "$target" || exit 1

work=$POSENC_BUILD_DIR/fuzz/$target
mkdir -p "$work/corpus" "$work/findings"
rm -rf "$work/seeds" && mkdir -p "$work/seeds"
PYTHONPATH="$root/python" /usr/bin/python3 - "$root/test" "$work" "$target" <<'PY' || exit 1
import pathlib, re, sys
test, work, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
if target == "posenc-fuzz-npy":
    import numpy as np
    n = 0
    for dt in ["<f4", "<f2", "<f8", "<i4", "<i8", "<u2"]:
        for shape in [(), (3,), (2, 3), (0, 4)]:
            n += 1
            np.save(work / "seeds" / f"{n}.npy", np.zeros(shape, dt))
    print(f"fuzz: {n} seeds")
    sys.exit(0)
tokens = set()
n = 0
for f in sorted(test.rglob("*.mlir")):
    for chunk in f.read_text().split("// -----"):
        # RUN/CHECK lines are noise to the parser.
        body = "\n".join(l for l in chunk.splitlines()
                         if not l.lstrip().startswith("//"))
        # What the target reads: posenc ops, or what posenc-raise raises.
        if not any(w in body for w in ("posenc.", "softmax", "math.exp", "math.cos")):
            continue
        n += 1
        (work / "seeds" / f"{f.stem}-{n}.mlir").write_text(body)
        tokens.update(re.findall(r"#?posenc\.[a-z_]+|\b[a-z_]{3,}\b", body))
# Programs of the random-program generator (every op, dtype, layout and
# dynamic dim it knows): valid starting points for the token mutator.
sys.path.insert(0, str(test / "python"))
try:
    import numpy as np
    import random_programs as rp
    gen = rp.Generator(np.random.default_rng(0))
    for i in range(300):
        (work / "seeds" / f"random-{i}.mlir").write_text(gen.program().ir)
        n += 1
    # posenc-raise's importer forms: attention, and RoPE of each layout.
    import raise_programs as raise_p
    for i in range(40):
        rng = np.random.default_rng(i)
        progs = [raise_p.attention_program(rng, raise_p.random_form(rng), expected=False),
                 raise_p.rope_program(rng, raise_p.random_rope_form(rng)),
                 raise_p.interleaved_rope_program(
                     rng, raise_p.random_interleaved_rope_form(rng))]
        for j, prog in enumerate(progs):
            (work / "seeds" / f"raise-{i}-{j}.mlir").write_text(prog[0])
            n += 1
except Exception as e:  # the lit seeds still work without the package
    print(f"fuzz: no generated seeds ({e})")
with open(work / "posenc.dict", "w") as d:
    for t in sorted(tokens):
        d.write(f'"{t}"\n')
print(f"fuzz: {n} seeds, {len(tokens)} dictionary tokens")
PY
dict=()
[[ -f "$work/posenc.dict" ]] && dict=(-dict="$work/posenc.dict")

# Leaks are off while fuzzing: MLIR's uniquers keep storage on purpose until
# their context dies (each input's context dies anyway); the lit suite
# checks the tools for leaks.
log=$work/last-run.log
rm -f "$work"/fuzz-*.log
cd "$work"
ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
  "$POSENC_BUILD_DIR/bin/$target" "$work/corpus" "$work/seeds" "${dict[@]}" \
  -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=16384 \
  -jobs="$jobs" -workers="$jobs" -print_final_stats=1 \
  -artifact_prefix="$work/findings/" ${POSENC_FUZZ_FLAGS:-} >"$log" 2>&1
rc=$?
# With -jobs, each job logs to fuzz-N.log (the main log repeats them).
logs=("$work"/fuzz-*.log)
[[ -e "${logs[0]}" ]] || logs=("$log")
runs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "${logs[@]}" |
  awk '{s += $2} END {print s + 0}')
findings=$(find "$work/findings" -type f | wc -l)
echo "fuzz: $target ${seconds}s x ${jobs} job(s), ${runs} executions," \
  "corpus $(ls "$work/corpus" | wc -l) inputs, ${findings} finding(s)" \
  "in $work/findings (exit ${rc})"
grep -h '^posenc-fuzz: ' "${logs[@]}" | tail -n "$jobs"
((findings == 0 && rc == 0))
