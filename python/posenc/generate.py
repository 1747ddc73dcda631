"""Text generation with a compiled checkpoint.

    /usr/bin/python3 -m posenc.generate CHECKPOINT [--tokenizer F]
        [--prompt TEXT | --prompt-ids 1,2,3] [-n STEPS] [--temperature T
        --top-p P --seed S] [--stop-at-bos] [--print-ids] [--max-seq N]
        [--threads N] [--compress-kv SPEC]

CHECKPOINT is a llama2.c `.bin` or a Hugging Face model directory
(config.json + safetensors; posenc.hf.FAMILIES, and T5/mT5 encoder-decoders,
whose prompt is the encoder's input and whose output is what the decoder
writes; its
tokenizer.json is read when present). `--tokenizer` takes a llama2.c
tokenizer.bin or a tokenizer.json (posenc.tokenizer: byte-level and
SentencePiece-converted BPE). Text is printed as it is generated (token
ids without a tokenizer), then the prompt and generation speed in tokens
per second. A Hugging Face model stops at its eos_token_id(s). For an
encoder-decoder (T5), `-n` counts the tokens the decoder writes and
`--print-ids` prints the decoder's sequence (its start id first). Greedy by default, so runs are reproducible; `-n` is run.c's
`steps`, the number of positions run (prompt included). `--print-ids`
prints the whole id sequence (prompt, then generated) on one line starting
with `ids:`. `--threads N` runs the compiled code on N OpenMP threads
(posenc.compile's `threads`). `--compress-kv rank=R` (or `energy=E`, with
`,factor=separate` or `,rotary=decoupled`) caches a low-rank latent instead
of keys and values (posenc.compress_kv) and prints its ranks and cache size
to stderr.
"""

import argparse
import codecs
import sys
import time

import posenc

from . import decoder


def _ids(text):
    try:
        ids = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated integers, got {text!r}")
    if not ids:
        raise argparse.ArgumentTypeError("is empty; give at least one token id (1 is BOS)")
    return ids


def _positive(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return v


def _non_negative(text):
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m posenc.generate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--tokenizer", help="llama2.c tokenizer.bin or Hugging Face "
                    "tokenizer.json (a model directory's own is read by default)")
    prompt = ap.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", default="")
    prompt.add_argument("--prompt-ids", type=_ids)
    ap.add_argument("-n", "--steps", type=_positive, default=256)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--seed", type=_non_negative)
    ap.add_argument("--stop-at-bos", action="store_true",
                    help="stop when the model emits BOS (its bos id; 1 in llama2.c)")
    ap.add_argument("--print-ids", action="store_true")
    ap.add_argument("--max-seq", type=_positive, help="cache positions (default: seq_len)")
    ap.add_argument("--compress-kv", metavar="SPEC",
                    help="low-rank KV-cache compression: rank=R or energy=E, optionally "
                         "with ,factor=separate or ,rotary=decoupled (posenc.compress_kv)")
    ap.add_argument("--threads", type=_non_negative, default=1,
                    help="threads of the compiled code (default 1; 0: POSENC_NUM_THREADS "
                         "or every core)")
    args = ap.parse_args(argv)

    try:
        return _generate(args)
    except (OSError, ValueError, RecursionError, posenc.Error) as e:
        # Bad files, configs and arguments are errors, never tracebacks; a
        # compiler diagnostic keeps only its first lines.
        text = str(e).strip().splitlines()
        print(f"\nerror: {chr(10).join(text[:4])}", file=sys.stderr)
        return 2


def _generate(args):
    model = decoder.load(args.checkpoint, args.tokenizer, args.max_seq, args.threads,
                         compress_kv=args.compress_kv)
    if getattr(model, "compression", None):
        from .compress_kv import describe

        print(describe(model.compression), file=sys.stderr)
    tok = model.tokenizer
    seq2seq = getattr(model, "seq2seq", False)
    if args.prompt_ids is not None:
        prompt_ids = args.prompt_ids
    elif tok:
        prompt_ids = tok.encode(args.prompt)
    elif args.prompt:
        raise ValueError("--prompt needs --tokenizer (or use --prompt-ids)")
    elif seq2seq:
        raise ValueError("an encoder-decoder model needs its input: give --prompt or "
                         "--prompt-ids")
    elif model.bos is not None:
        prompt_ids = [model.bos]
    else:
        raise ValueError("the model has no bos_token_id to start from: give --prompt or "
                         "--prompt-ids")

    if not prompt_ids:
        raise ValueError(f"the prompt {args.prompt!r} encodes to no tokens (the tokenizer adds "
                         f"no BOS): give a prompt or --prompt-ids")
    if not seq2seq and len(prompt_ids) > min(args.steps, model.max_seq):
        raise ValueError(f"the prompt has {len(prompt_ids)} tokens, more than the "
                         f"{min(args.steps, model.max_seq)} positions to run (-n, --max-seq)")
    out = sys.stdout
    # An encoder-decoder prints what its decoder writes (from its start
    # token); a decoder continues the prompt.
    ids = [model.bos] if seq2seq else list(prompt_ids)
    # Bytes, not pieces, make the text: a character may span tokens.
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    if seq2seq:
        pass
    elif tok:
        out.write(tok.decode([tok.BOS] + ids[1:]) if ids[0] == tok.BOS else tok.decode(ids))
    else:
        out.write(" ".join(map(str, ids)))
    out.flush()
    emitted = []

    def show(token):
        text = utf8.decode(tok.piece_bytes(ids[-1], token)) if tok else f" {token}"
        out.write(text)
        out.flush()
        ids.append(token)
        emitted.append(token)

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
    out.write(utf8.decode(b"", final=True) + "\n")
    decoded = len(emitted) - 1
    decode_rate = decoded / (end - decode_start) if decoded > 0 else 0.0
    print(f"prompt: {len(prompt_ids)} tokens, {len(prompt_ids) / (decode_start - start):.1f} "
          f"tok/s; generation: {len(emitted)} tokens, {decode_rate:.1f} tok/s")
    if args.print_ids:
        print("ids: " + " ".join(map(str, ids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
