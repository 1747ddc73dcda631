"""Whole models from llama2.c checkpoints: the shared trained checkpoints
against the outputs of the reference C implementation (run.c), random
checkpoints against a float64 model written from the architecture, and
broken files against clear errors.

The trained checkpoints live beside the project in ../shared/models (or
$POSENC_MODELS_DIR); those tests skip with a message where it is absent.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from posenc import decoder, reference
from posenc.llama2c import (CheckpointError, Config, Tokenizer, _layout, layer_weights,
                            read_checkpoint, write_checkpoint)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.environ.get("POSENC_MODELS_DIR", os.path.join(ROOT, "..", "shared", "models"))
shared = pytest.mark.skipif(not os.path.exists(os.path.join(MODELS, "reference.json")),
                            reason=f"no shared checkpoints in {MODELS} (set POSENC_MODELS_DIR)")
LOGIT_TOL = 1e-4  # of the largest |logit|, the README of the shared models

# case -> (checkpoint, tokenizer, logits file, steps whose logits it holds)
CASES = {
    "aidreams_bos": ("aidreams260K.bin", "aidreams_tok512.bin", "aidreams_bos_logits.npy", None),
    "aidreams_i_dreamed": ("aidreams260K.bin", "aidreams_tok512.bin",
                           "aidreams_i_dreamed_logits.npy", None),
    "stories_bos": ("stories260K.bin", None, "stories_bos_logits.npy", "six"),
    "stories_prompt": ("stories260K.bin", None, "stories_prompt_logits.npy", "six"),
}
_models = {}


def model(name, tokenizer=None):
    if name not in _models:
        _models[name] = decoder.load(os.path.join(MODELS, name),
                                     tokenizer and os.path.join(MODELS, tokenizer))
    return _models[name]


def case(name):
    with open(os.path.join(MODELS, "reference.json")) as f:
        ref = json.load(f)[name]
    ckpt, tok, logits_file, which = CASES[name]
    logits = np.load(os.path.join(MODELS, logits_file))
    steps = ref["steps"]
    rows = list(range(16)) if which is None else [0, 1, 2, 3, steps // 2, steps - 1]
    return ref, model(ckpt, tok), logits, rows


def prompt_ids(ref, m):
    return ref["prompt_ids"] if "prompt_ids" in ref else m.tokenizer.encode(ref["prompt"])


@shared
@pytest.mark.parametrize("name", CASES)
def test_teacher_forced_logits(name):
    # The reference ids through prefill in one call: every reference row
    # within 1e-4 of the largest |logit|.
    ref, m, expected, rows = case(name)
    got = m.prefill(ref["ids"][:max(rows) + 1])[rows]
    err = np.abs(got - expected).max() / np.abs(expected).max()
    assert err < LOGIT_TOL, err


@shared
def test_decode_steps_match_prefill_and_reference():
    # One token at a time through the cache gives the same logits.
    ref, m, expected, rows = case("aidreams_bos")
    ids = ref["ids"]
    got = [m.prefill(ids[:1])[0]] + [m.decode(t) for t in ids[1:16]]
    err = np.abs(np.array(got) - expected).max() / np.abs(expected).max()
    assert err < LOGIT_TOL, err


@shared
@pytest.mark.parametrize("name", CASES)
def test_greedy_ids_identical(name):
    ref, m, _, _ = case(name)
    p = prompt_ids(ref, m)
    assert p == ref["ids"][:len(p)]
    ids = p + list(m.generate(p, ref["steps"]))
    assert ids == ref["ids"]
    if "text" in ref:
        assert m.tokenizer.decode(ids) == ref["text"]


@shared
def test_generate_cli_prints_the_reference_ids():
    with open(os.path.join(MODELS, "reference.json")) as f:
        ref = json.load(f)["aidreams_i_dreamed"]
    proc = subprocess.run(
        [sys.executable, "-m", "posenc.generate", os.path.join(MODELS, "aidreams260K.bin"),
         "--tokenizer", os.path.join(MODELS, "aidreams_tok512.bin"), "--prompt", ref["prompt"],
         "-n", str(ref["steps"]), "--print-ids"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ref["text"]
    assert "tok/s" in lines[1]
    assert lines[2] == "ids: " + " ".join(map(str, ref["ids"]))


def random_checkpoint(tmp_path, shared_classifier, n_heads=4, n_kv_heads=2, seed=0):
    rng = np.random.default_rng(seed)
    c = Config(dim=32, hidden_dim=48, n_layers=2, n_heads=n_heads, n_kv_heads=n_kv_heads,
               vocab_size=40, seq_len=24, shared_classifier=shared_classifier)
    w = {n: (rng.standard_normal(shape) * (1.0 if n.startswith("rms") else 0.3))
         .astype(np.float32) for n, shape in _layout(c) if n}
    if shared_classifier:
        w["wcls"] = w["token_embedding"]
    path = str(tmp_path / "model.bin")
    write_checkpoint(path, c, w)
    return path, c, w


@pytest.mark.parametrize("shared_classifier,n_heads,n_kv_heads", [
    (True, 4, 2), (False, 4, 4), (False, 4, 1)])
def test_random_checkpoint_vs_float64_model(tmp_path, shared_classifier, n_heads, n_kv_heads):
    path, c, w = random_checkpoint(tmp_path, shared_classifier, n_heads, n_kv_heads)
    c2, w2 = read_checkpoint(path)
    assert c2 == c and all(np.array_equal(w[n], w2[n]) for n in w)
    m = decoder.load(path)
    ids = [1, 5, 9, 33, 2, 17, 39, 0, 12]
    expected = reference.decoder_forward(c, layer_weights(w, c.n_layers), ids)
    scale = np.abs(expected).max()
    assert np.abs(m.prefill(ids) - expected).max() / scale < 1e-5
    # Prefill in two parts and decode: the cache carries the first part.
    got = np.concatenate([m.prefill(ids[:4]), m.prefill(ids[4:7], start=4),
                          [m.decode(ids[7]), m.decode(ids[8])]])
    assert np.abs(got - expected).max() / scale < 1e-5


def test_cache_cost_follows_the_used_length(tmp_path):
    # A step reads the used part of the cache: positions beyond it may hold
    # anything without changing the result.
    path, c, w = random_checkpoint(tmp_path, True)
    m = decoder.load(path, max_seq=64)
    m.prefill([1, 2, 3])
    m.k_cache[:, 4:] = np.nan
    m.v_cache[:, 4:] = np.nan
    out = m.decode(7)
    assert np.isfinite(out).all()
    expected = reference.decoder_forward(c, layer_weights(w, c.n_layers), [1, 2, 3, 7])[-1]
    assert np.abs(out - expected).max() / np.abs(expected).max() < 1e-5


def test_truncated_and_inconsistent_checkpoints(tmp_path):
    path, c, w = random_checkpoint(tmp_path, False)
    data = open(path, "rb").read()
    short = tmp_path / "short.bin"
    short.write_bytes(data[:-4])
    with pytest.raises(CheckpointError, match=r"short\.bin: .* bytes, but the header .* "
                                              r"describes .* \(truncated\)"):
        read_checkpoint(str(short))
    (tmp_path / "tiny.bin").write_bytes(data[:10])
    with pytest.raises(CheckpointError, match="shorter than the 28-byte llama2.c header"):
        read_checkpoint(str(tmp_path / "tiny.bin"))
    bad = bytearray(data)
    bad[16:20] = np.array([3], "<i4").tobytes()  # n_kv_heads = 3 does not divide 4
    (tmp_path / "bad.bin").write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match=r"n_heads \(4\) is not a multiple of "
                                              r"n_kv_heads \(3\)"):
        read_checkpoint(str(tmp_path / "bad.bin"))
    bad[0:4] = np.array([-7], "<i4").tobytes()
    (tmp_path / "neg.bin").write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match="dim = -7 is not a size"):
        read_checkpoint(str(tmp_path / "neg.bin"))


def test_model_rejects_ids_and_positions_it_cannot_hold(tmp_path):
    path, c, w = random_checkpoint(tmp_path, True)
    m = decoder.load(path, max_seq=8)
    with pytest.raises(ValueError, match=r"token id 40 outside the vocabulary \[0, 40\)"):
        m.prefill([1, 40])
    with pytest.raises(ValueError, match="do not fit the cache of 8 positions"):
        m.prefill(list(range(9)))
    m.prefill(list(range(8)))
    with pytest.raises(ValueError, match="positions 8..8 do not fit"):
        m.decode(1)
    with pytest.raises(ValueError, match="no tokens"):
        m.prefill([])


def test_tokenizer_round_trip_and_errors(tmp_path):
    pieces = [b"<unk>", b"<s>", b"</s>"] + [bytes([i]) for i in range(256)] + \
             [b" ", b"ab", b" ab", b"abc"]
    scores = [0.0] * 259 + [0.0, 1.0, 2.0, 3.0]
    blob = np.array([8], "<i4").tobytes()
    for p, sc in zip(pieces, scores):
        blob += np.array([sc], "<f4").tobytes() + np.array([len(p)], "<i4").tobytes() + p
    path = tmp_path / "tok.bin"
    path.write_bytes(blob)
    tok = Tokenizer(str(path), len(pieces))
    ids = tok.encode("ab abc")
    assert ids[0] == tok.BOS and tok.decode(ids) == "ab abc"
    assert tok.pieces[ids[1]] == b" ab"
    path.write_bytes(blob[:-3])
    with pytest.raises(CheckpointError, match="piece 262 claims 3 bytes"):
        Tokenizer(str(path), len(pieces))


def test_emitted_ir_runs_through_posenc_run(tmp_path):
    # model.ir is a real artifact: posenc-run (the C++ runner) executes its
    # prefill entry point with the weights and caches as .npy inputs.
    from harness import run

    path, c, w = random_checkpoint(tmp_path, False)
    m = decoder.load(path, max_seq=16)
    ids = [1, 7, 22, 3]
    cache = np.zeros_like(m.k_cache)
    (logits,) = run(m.ir, [np.array(ids, np.int32), np.array([0], np.int64), *m._weights,
                           cache, cache.copy()], entry="prefill")
    expected = reference.decoder_forward(c, layer_weights(w, c.n_layers), ids)
    assert np.abs(logits - expected).max() / np.abs(expected).max() < 1e-5


@pytest.mark.parametrize("call,fragment", [
    (lambda m: m.prefill([1.0, 4.5]), "token ids must be integers, got float64"),
    (lambda m: m.prefill(np.array([[1, 2], [3, 4]])), "1-D sequence, got shape (2, 2)"),
    (lambda m: m.prefill([99999999999999999999]), "token id 99999999999999999999 is outside"),
    (lambda m: m.prefill([True]), "token ids must be integers, got bool"),
    (lambda m: m.decode(3.7), "decode takes one integer token id"),
    (lambda m: list(m.generate([1], steps=0)), "steps must be a positive integer"),
    (lambda m: list(m.generate([1], steps=4, temperature=float("nan"))), "temperature must"),
])
def test_model_checks_its_arguments(tmp_path, call, fragment):
    path, c, w = random_checkpoint(tmp_path, True)
    m = decoder.load(path, max_seq=8)
    with pytest.raises(ValueError) as e:
        call(m)
    assert fragment in str(e.value)


def test_cache_too_large_is_an_error(tmp_path):
    path, c, w = random_checkpoint(tmp_path, True)
    with pytest.raises(ValueError, match=r"the KV cache of 4000000000000 positions .* cannot "
                                         r"be allocated \(this machine has .* GiB\); pass a "
                                         r"smaller max_seq"):
        decoder.load(path, max_seq=4 * 10**12)
    with pytest.raises(ValueError, match="max_seq must be a positive integer, got 0"):
        decoder.load(path, max_seq=0)


@pytest.mark.parametrize("args,fragment", [
    (["--prompt-ids", ""], "is empty"),
    (["--prompt-ids", "1,99999999999999999999"], "outside the vocabulary"),
    (["-n", "0"], "must be a positive integer, got '0'"),
    (["--seed", "-1"], "must be a non-negative integer"),
    (["--prompt", "hi"], "--prompt needs --tokenizer"),
    (["--prompt-ids", "1,2,3,4,5", "-n", "3"], "the prompt has 5 tokens, more than the 3"),
])
def test_generate_cli_errors_are_messages(tmp_path, args, fragment):
    path, c, w = random_checkpoint(tmp_path, True)
    proc = subprocess.run([sys.executable, "-m", "posenc.generate", path, *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr and "Traceback" not in proc.stderr


@shared
@pytest.mark.parametrize("name", ["aidreams_bos", "stories_prompt"])
def test_greedy_ids_identical_on_threads(name):
    """The whole model compiled for 2 threads (its projections and
    elementwise ops in chunks, attention tiles on threads) generates the
    reference ids, and the same logits as one thread bit for bit."""
    ref, one, _, _ = case(name)
    ckpt, tok, _, _ = CASES[name]
    two = decoder.load(os.path.join(MODELS, ckpt), tok and os.path.join(MODELS, tok), threads=2)
    p = prompt_ids(ref, two)
    assert p + list(two.generate(p, ref["steps"])) == ref["ids"]
    ids = ref["ids"][:24]
    assert np.array_equal(two.prefill(ids), one.prefill(ids))


def test_generate_cli_threads_argument_is_checked(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "posenc.generate", str(tmp_path / "x.bin"),
                           "--threads", "-1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--threads: must be a non-negative integer" in proc.stderr
