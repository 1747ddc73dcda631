#!/usr/bin/env bash
# Installs what is missing, builds (incrementally) and runs every suite:
# the lit suite (check-posenc) and pytest (test/python). Ends with one line
# "N passed, N failed, N skipped" over all suites; exits non-zero on any
# failure.
#
#   scripts/test.sh              Release build in build/
#   scripts/test.sh --sanitize   the same suites on an ASan+UBSan build (with
#                                libFuzzer coverage, so it also builds
#                                posenc-fuzz) in build-sanitize/
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

sanitize=0
if [[ "${1:-}" == "--sanitize" ]]; then
  sanitize=1
  export POSENC_SETUP_SANITIZE=1
fi
"$root/scripts/setup.sh" || { echo "setup failed"; exit 1; }
if ((sanitize)); then
  source "$root/scripts/sanitize-env.sh"
fi
build=${POSENC_BUILD_DIR:-$root/build}

"$root/scripts/build.sh" || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

reports="$build/test-reports"
rm -rf "$reports" && mkdir -p "$reports"
status=0

echo "== setup and build: ${SECONDS} s"
echo "== lit (check-posenc)"
/usr/bin/python3 /usr/lib/llvm-22/bin/lit -sv \
  --xunit-xml-output="$reports/lit.xml" "$build/test" || status=1

if compgen -G "$root/test/python/test_*.py" >/dev/null; then
  # One pytest worker per core (pytest-xdist): the tests are independent
  # processes of posenc-run/posenc-opt, each on one thread.
  jobs=${POSENC_TEST_JOBS:-$(nproc)}
  echo "== pytest (test/python, $jobs workers; ${SECONDS} s so far)"
  PYTHONPATH="$build/python_packages:$root/python${PYTHONPATH:+:$PYTHONPATH}" \
    POSENC_BUILD_DIR="$build" \
    env ${POSENC_PYTHON_PRELOAD:+LD_PRELOAD=$POSENC_PYTHON_PRELOAD \
      ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0} \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider -n "$jobs" --dist load \
    --junitxml="$reports/pytest.xml" "$root/test/python" || status=1
fi

echo "== suites done: ${SECONDS} s"

# One closing line over every suite, from their JUnit reports.
/usr/bin/python3 - "$reports" <<'PY' || status=1
import glob, sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in glob.glob(sys.argv[1] + "/*.xml"):
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            failed += 1
        elif "skipped" in kinds:
            skipped += 1
        else:
            passed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
PY
exit $status
