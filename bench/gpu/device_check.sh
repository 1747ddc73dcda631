#!/usr/bin/env bash
# The GPU check, run on the GPU machine. Builds nothing: it runs the AOT
# executables that bench/gpu/prepare.py built on a CPU machine (default
# directory build/gpu-check), which need only the NVIDIA driver.
#
#   bench/gpu/device_check.sh [DIR]
#
# 1. Correctness: every case of DIR/manifest.tsv on fresh random inputs
#    with poisoned (NaN-filled) device outputs, against its float64
#    reference (relative error <= 1e-5 for f32, 1e-2 for bf16).
# 2. Timing (CUDA events, warm-up then median): rope on [8, 4096, 32, 128]
#    f32 in GB/s against a device-to-device copy of the same bytes; fused
#    ALiBi causal attention S=4096, H=32, D=128 (f32 and bf16 inputs)
#    against PyTorch on this machine (SDPA with a materialized bias, and
#    FlexAttention with an ALiBi score_mod when torch has it), if present.
# Prints one table at the end; exits non-zero when a check fails. Each
# executable runs under a timeout, so the whole check stays under 5 min.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$root/build/gpu-check}
[ -f "$dir/manifest.tsv" ] || { echo "no $dir/manifest.tsv: run bench/gpu/prepare.py first"; exit 2; }
source "$dir/bench.env"
start=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true

rows=()
failed=0
while IFS=$'\t' read -r name exe inputs refname tol; do
  [ -n "$name" ] || continue
  ins=()
  IFS=',' read -ra parts <<< "$inputs"
  for p in "${parts[@]}"; do ins+=("$dir/$p"); done
  out=$(timeout 60 "$dir/$exe" --poison --inputs "${ins[@]}" --expect "$dir/$refname" \
        --tolerance "$tol" --warmup 1 --repeat 5 2>&1)
  rc=$?
  err=$(sed -n 's/.*max_rel_err=\([^ ]*\).*/\1/p' <<< "$out" | head -1)
  ms=$(sed -n 's/.*median_ms=\([^ ]*\).*/\1/p' <<< "$out" | head -1)
  if [ $rc -eq 0 ]; then status=ok; else status="FAIL(rc=$rc)"; failed=1; echo "$out"; fi
  rows+=("$(printf '%-34s %-12s %-8s %-10s %s' "$name" "${err:--}" "$tol" "${ms:--}" "$status")")
done < "$dir/manifest.tsv"

# Timing.
ms_of() { sed -n 's/.*median_ms=\([^ ]*\).*/\1/p' <<< "$1" | head -1; }
IFS=x read -r rb rs rh rd <<< "$ROPE_SHAPE"
rope_bytes=$((rb * rs * rh * rd * 4))
rope_out=$(timeout 120 "$dir/bench_rope_f32.gpu" --random 1 --warmup 3 --repeat 20 2>&1) || { echo "$rope_out"; failed=1; }
copy_out=$(timeout 60 "$dir/bench_rope_f32.gpu" --copy-bytes "$rope_bytes" --warmup 3 --repeat 20 2>&1) || { echo "$copy_out"; failed=1; }
rope_ms=$(ms_of "$rope_out"); copy_ms=$(ms_of "$copy_out")
attn=()
for elem in f32 bf16; do
  o=$(timeout 120 "$dir/bench_alibi_attention_$elem.gpu" --random 1 --warmup 2 --repeat 10 2>&1) || { echo "$o"; failed=1; }
  attn+=("$(ms_of "$o")")
done
# Decode: K and V read once each call; the peer is a copy of those bytes.
kv_bytes=$((2 * DECODE_SK * DECODE_HKV * DECODE_D * 4))
kvcopy_out=$(timeout 60 "$dir/bench_rope_f32.gpu" --copy-bytes "$kv_bytes" --warmup 3 --repeat 20 2>&1) || { echo "$kvcopy_out"; failed=1; }
kvcopy_ms=$(ms_of "$kvcopy_out")
dec=()
for elem in f32 bf16; do
  o=$(timeout 60 "$dir/bench_decode_gqa_$elem.gpu" --random 1 --warmup 3 --repeat 20 2>&1) || { echo "$o"; failed=1; }
  dec+=("$(ms_of "$o")")
done
torch_rows=$(timeout 150 python3 "$root/bench/gpu/torch_attention.py" --s "$ATTN_S" --h "$ATTN_H" \
  --d "$ATTN_D" --decode-sk "$DECODE_SK" --decode-hq "$DECODE_HQ" --decode-hkv "$DECODE_HKV" \
  ${dec[0]:+--posenc-decode-f32 "${dec[0]}"} ${dec[1]:+--posenc-decode-bf16 "${dec[1]}"} ${attn[0]:+--posenc-f32 "${attn[0]}"} ${attn[1]:+--posenc-bf16 "${attn[1]}"} 2>&1) \
  || torch_rows="torch: not run ($(tail -1 <<< "$torch_rows"))"

echo
echo "== posenc GPU device check ($CHIP executables, seed $SEED) =="
printf '%-34s %-12s %-8s %-10s %s\n' case max_rel_err tol median_ms status
printf '%s\n' "${rows[@]}"
echo
python3 - "$rope_ms" "$copy_ms" "$rope_bytes" "${attn[0]}" "${attn[1]}" "$ATTN_S" "$ATTN_H" "$ATTN_D" \
  "$kvcopy_ms" "$kv_bytes" "${dec[0]}" "${dec[1]}" <<'PY'
import sys
rope_ms, copy_ms, nbytes, a32, a16, s, h, d, kvcopy_ms, kv_bytes, d32, d16 = sys.argv[1:]
def f(x):
    try: return float(x)
    except ValueError: return None
rope_ms, copy_ms, a32, a16, kvcopy_ms, d32, d16 = map(f, (rope_ms, copy_ms, a32, a16, kvcopy_ms, d32, d16))
kv_bytes = int(kv_bytes)
nbytes, s, h, d = int(nbytes), int(s), int(h), int(d)
moved = 2 * nbytes  # read x, write y (positions are 16 KiB)
print(f"{'timing':44s} {'median ms':>10s} {'GB/s or TFLOP/s':>16s} {'vs peer':>8s}")
def row(name, ms, rate, peer=None):
    r = "-" if ms is None else f"{ms:10.3f}"
    v = "-" if ms is None else f"{rate(ms):16.1f}"
    p = "-" if (ms is None or peer is None) else f"{peer / ms:8.2f}x"
    print(f"{name:44s} {r:>10s} {v:>16s} {p:>8s}")
row("device-to-device copy (same bytes) GB/s", copy_ms, lambda ms: moved / ms / 1e6)
row("posenc rope half f32 [8,4096,32,128] GB/s", rope_ms, lambda ms: moved / ms / 1e6, copy_ms)
flops = 4 * s * s * h * d / 2  # causal: half the scores
row(f"posenc ALiBi attention f32 S={s} TFLOP/s", a32, lambda ms: flops / ms / 1e9)
row(f"posenc ALiBi attention bf16-in S={s} TFLOP/s", a16, lambda ms: flops / ms / 1e9)
# Copy: read + write of kv_bytes; decode: read of K + V (f32: kv_bytes).
row("copy of f32 K+V bytes GB/s (read+write)", kvcopy_ms, lambda ms: 2 * kv_bytes / ms / 1e6)
copy_rate = None if kvcopy_ms is None else 2 * kv_bytes / kvcopy_ms / 1e6
for name, ms, nb in (("f32", d32, kv_bytes), ("bf16", d16, kv_bytes // 2)):
    rate = None if ms is None else nb / ms / 1e6
    pct = "-" if (rate is None or copy_rate is None) else f"{100 * rate / copy_rate:7.1f}%"
    r = "-" if ms is None else f"{ms:10.3f}"
    v = "-" if ms is None else f"{rate:16.1f}"
    print(f"{'posenc decode GQA K+V read ' + name + ' GB/s':44s} {r:>10s} {v:>16s} {pct:>8s}")
PY
echo "$torch_rows"
# Tile-shape variants of the timing cases (variants.tsv: name, case, options).
if [ -f "$dir/variants.tsv" ]; then
  echo
  printf '%-26s %-64s %10s %12s\n' variant "posenc-lower-to-nvvm options" "median ms" "GB/s|TFLOP/s"
  while IFS=$'\t' read -r name base options; do
    [ -n "$name" ] || continue
    o=$(timeout 60 "$dir/$name.gpu" --random 1 --warmup 3 --repeat 10 2>&1) || { echo "$o" | tail -2; failed=1; continue; }
    ms=$(ms_of "$o")
    rate=$(python3 -c "
import sys
ms, base = float(sys.argv[1]), sys.argv[2]
if 'decode' in base:
    nbytes = 2 * $DECODE_SK * $DECODE_HKV * $DECODE_D * (2 if 'bf16' in base else 4)
    print(f'{nbytes / ms / 1e6:.1f}')
else:
    print(f'{4 * $ATTN_S * $ATTN_S * $ATTN_H * $ATTN_D / 2 / ms / 1e9:.1f}')" "$ms" "$base")
    printf '%-26s %-64s %10s %12s\n' "$name" "$options" "$ms" "$rate"
  done < "$dir/variants.tsv"
fi
echo "elapsed $(( $(date +%s) - start )) s"
[ $failed -eq 0 ] && echo "device check: all passed" || echo "device check: FAILED"
exit $failed
