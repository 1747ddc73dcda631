#!/usr/bin/env bash
# Runs the libFuzzer target posenc-fuzz (ASan+UBSan, coverage-guided) for a
# given time and reports executions and findings.
#
#   scripts/fuzz.sh [SECONDS] [JOBS]     default 600 s, 1 job
#
# Seeds: every lit test file, split at "// -----" like --split-input-file.
# The corpus grows in build-sanitize/fuzz/corpus across runs; findings
# (crash-*, leak-*, timeout-*, oom-*) land in build-sanitize/fuzz/findings.
# Reproduce one with: build-sanitize/bin/posenc-fuzz FILE
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-600}
jobs=${2:-1}
POSENC_SETUP_SANITIZE=1 "$root/scripts/setup.sh" >/dev/null || exit 1
source "$root/scripts/sanitize-env.sh"
"$root/scripts/build.sh" posenc-fuzz || exit 1

work=$POSENC_BUILD_DIR/fuzz
mkdir -p "$work/corpus" "$work/findings"
rm -rf "$work/seeds" && mkdir -p "$work/seeds"
/usr/bin/python3 - "$root/test" "$work" <<'PY'
import pathlib, re, sys
test, work = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
tokens = set()
n = 0
for f in sorted(test.rglob("*.mlir")):
    for chunk in f.read_text().split("// -----"):
        # RUN/CHECK lines are noise to the parser.
        body = "\n".join(l for l in chunk.splitlines()
                         if not l.lstrip().startswith("//"))
        if "posenc." not in body:
            continue
        n += 1
        (work / "seeds" / f"{f.stem}-{n}.mlir").write_text(body)
        tokens.update(re.findall(r"#?posenc\.[a-z_]+|\b[a-z_]{3,}\b", body))
with open(work / "posenc.dict", "w") as d:
    for t in sorted(tokens):
        d.write(f'"{t}"\n')
print(f"fuzz: {n} seeds, {len(tokens)} dictionary tokens")
PY

# Coverage-guided: leaks are off (MLIR's uniquers keep storage on purpose
# until the context dies, and the context dies each input anyway).
log=$work/last-run.log
rm -f "$work"/fuzz-*.log
cd "$work"
ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
  "$POSENC_BUILD_DIR/bin/posenc-fuzz" "$work/corpus" "$work/seeds" \
  -dict="$work/posenc.dict" -max_total_time="$seconds" -timeout=30 \
  -rss_limit_mb=4096 -max_len=16384 -jobs="$jobs" -workers="$jobs" \
  -print_final_stats=1 -artifact_prefix="$work/findings/" >"$log" 2>&1
rc=$?
# With -jobs, each job logs to fuzz-N.log (the main log repeats them).
logs=("$work"/fuzz-*.log)
[[ -e "${logs[0]}" ]] || logs=("$log")
runs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "${logs[@]}" |
  awk '{s += $2} END {print s + 0}')
reached=$(grep -h '^posenc-fuzz: ' "${logs[@]}" | tail -n "$jobs")
findings=$(find "$work/findings" -type f | wc -l)
echo "fuzz: ${seconds}s x ${jobs} job(s), ${runs} executions," \
  "corpus $(ls "$work/corpus" | wc -l) inputs, ${findings} finding(s)" \
  "in $work/findings (exit ${rc})"
echo "$reached"
((findings == 0 && rc == 0))
