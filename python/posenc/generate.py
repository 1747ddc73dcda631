"""Text generation with a compiled checkpoint.

    /usr/bin/python3 -m posenc.generate CHECKPOINT [--tokenizer F]
        [--prompt TEXT | --prompt-ids 1,2,3] [-n STEPS] [--temperature T
        --top-p P --seed S] [--stop-at-bos] [--print-ids] [--max-seq N]

CHECKPOINT is a llama2.c `.bin` or a Hugging Face model directory
(config.json + safetensors; Llama, Mistral, Qwen2 — token ids only, its
tokenizer is not read). Text is printed as it is generated (token
ids without a tokenizer), then the prompt and generation speed in tokens
per second. Greedy by default, so runs are reproducible; `-n` is run.c's
`steps`, the number of positions run (prompt included). `--print-ids`
prints the whole id sequence (prompt, then generated) on one line starting
with `ids:`.
"""

import argparse
import sys
import time

from . import decoder


def _ids(text):
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--prompt-ids takes comma-separated integers, "
                                         f"got {text!r}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m posenc.generate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--tokenizer")
    prompt = ap.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", default="")
    prompt.add_argument("--prompt-ids", type=_ids)
    ap.add_argument("-n", "--steps", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--stop-at-bos", action="store_true",
                    help="stop when the model emits BOS (token 1)")
    ap.add_argument("--print-ids", action="store_true")
    ap.add_argument("--max-seq", type=int, help="cache positions (default: seq_len)")
    args = ap.parse_args(argv)

    try:
        model = decoder.load(args.checkpoint, args.tokenizer, args.max_seq)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tok = model.tokenizer
    if args.prompt_ids is not None:
        prompt_ids = args.prompt_ids
    elif tok:
        prompt_ids = tok.encode(args.prompt)
    elif args.prompt:
        print("error: --prompt needs --tokenizer (or use --prompt-ids)", file=sys.stderr)
        return 2
    else:
        prompt_ids = [tok.BOS if tok else 1]

    out = sys.stdout
    ids = list(prompt_ids)
    if tok:
        out.write(tok.decode([tok.BOS] + ids[1:]) if ids[0] == tok.BOS else tok.decode(ids))
    else:
        out.write(" ".join(map(str, ids)))
    out.flush()
    emitted = []

    def show(token):
        text = (tok.piece_bytes(ids[-1], token).decode("utf-8", errors="replace") if tok
                else f" {token}")
        out.write(text)
        out.flush()
        ids.append(token)
        emitted.append(token)

    try:
        start = time.perf_counter()
        gen = model.generate(prompt_ids, args.steps, args.temperature, args.top_p, args.seed,
                             stop_at_bos=args.stop_at_bos)
        first = next(gen, None)  # the prefill of the prompt, then one token
        decode_start = time.perf_counter()
        if first is not None:
            show(first)
        for token in gen:
            show(token)
        end = time.perf_counter()
    except ValueError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 2
    out.write("\n")
    decoded = len(emitted) - 1
    decode_rate = decoded / (end - decode_start) if decoded > 0 else 0.0
    print(f"prompt: {len(prompt_ids)} tokens, {len(prompt_ids) / (decode_start - start):.1f} "
          f"tok/s; generation: {len(emitted)} tokens, {decode_rate:.1f} tok/s")
    if args.print_ids:
        print("ids: " + " ".join(map(str, ids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
