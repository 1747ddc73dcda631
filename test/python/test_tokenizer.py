"""Hugging Face tokenizer.json (posenc.tokenizer) against independent
implementations: SentencePiece itself (Debian's python3-sentencepiece
trains a BPE model with byte fallback here and is the reference for the
Llama-2-style conversion of it), run.c's encoder (the shared aidreams
tokenizer, converted), and GPT-2's byte-level BPE written out in this file
from openai/gpt-2's encoder.py for the byte-level form. Also broken files
against clear errors."""

import codecs
import json
import os
import random

import numpy as np
import pytest

from posenc import tokenizer as hftok
from posenc.llama2c import Tokenizer as Llama2cTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.environ.get("POSENC_MODELS_DIR", os.path.join(ROOT, "..", "shared", "models"))
shared = pytest.mark.skipif(not os.path.exists(os.path.join(MODELS, "reference.json")),
                            reason=f"no shared checkpoints in {MODELS} (set POSENC_MODELS_DIR)")

WORDS = ["the", "cat", "sat", "on", "mat", "dreams", "über", "naïve", "日本", "🙂", "hello",
         "world", "I", "don't", "it's", "42", "2026", "x", "ÿ", "Ω", "  ", "\n", "\t", "€5",
         "co-op", "e.g.", "!!!"]


def random_texts(seed, n, alphabet_extra="ŋ¿\u0301\u200b🚀"):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(WORDS) for _ in range(rng.randint(0, 9))]
        text = rng.choice([" ", "", "  "]).join(parts)
        if alphabet_extra and rng.random() < 0.5:
            text += rng.choice(alphabet_extra) * rng.randint(1, 2)
        if rng.random() < 0.3:
            text = " " + text
        out.append(text)
    return out


def write(tmp_path, data, name="tokenizer.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def spm_llama_json(pieces, scores, byte_fallback=True, bos=1, unk=0):
    """tokenizer.json of a SentencePiece BPE vocabulary as transformers'
    LlamaConverter writes it: Prepend("▁") + Replace(" ", "▁") normalizer,
    merges of every split of a piece into two pieces, ordered by the
    merged piece's score (SentencePieceExtractor), the byte-fallback decoder
    chain and a BOS template."""
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for merged, score in sorted(zip(pieces, scores), key=lambda ps: -ps[1]):
        for k in range(1, len(merged)):
            a, b = merged[:k], merged[k:]
            if a in vocab and b in vocab:
                merges.append((vocab[merged], vocab[a], vocab[b], a, b))
    merges.sort(key=lambda m: (-scores[m[0]], m[1], m[2]))
    bos_piece = pieces[bos]
    return {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": pieces[i], "special": True, "lstrip": False,
                          "rstrip": False, "normalized": False, "single_word": False}
                         for i in (unk, bos, 2)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": bos_piece, "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [],
                           "special_tokens": {bos_piece: {"id": bos_piece, "ids": [bos],
                                                          "tokens": [bos_piece]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": pieces[unk],
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": byte_fallback, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for *_, a, b in merges]},
    }


@pytest.fixture(scope="module")
def spm_model():
    spm = pytest.importorskip("sentencepiece", reason="python3-sentencepiece (apt) is the "
                                                      "reference for SentencePiece BPE")
    import io

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(random_texts(1, 400, "")), model_writer=model,
        vocab_size=330, model_type="bpe", byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        character_coverage=0.995, minloglevel=2)
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def test_sentencepiece_bpe_matches_sentencepiece(tmp_path, spm_model):
    sp = spm_model
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]
    scores = [sp.get_score(i) for i in range(n)]
    tok = hftok.load(write(tmp_path, spm_llama_json(pieces, scores)))
    assert tok.BOS == sp.bos_id() == 1
    texts = random_texts(7, 300) + ["", " ", "x", "€€ 🙂🙂", "\u0301", "日本 日本"]
    mismatched = [(t, tok.encode(t, bos=False), sp.encode(t)) for t in texts
                  if tok.encode(t, bos=False) != sp.encode(t)]
    assert not mismatched, mismatched[:3]
    # Bytes outside the vocabulary went through byte fallback somewhere.
    assert any(sp.is_byte(i) for t in texts for i in sp.encode(t))
    for t in texts:
        ids = tok.encode(t)
        assert ids[0] == 1 and ids[1:] == sp.encode(t)
        assert tok.decode(ids) == sp.decode(sp.encode(t)), t


def test_streamed_pieces_spell_the_decoded_text(tmp_path, spm_model):
    sp = spm_model
    n = sp.get_piece_size()
    tok = hftok.load(write(tmp_path, spm_llama_json(
        [sp.id_to_piece(i) for i in range(n)], [sp.get_score(i) for i in range(n)])))
    for t in random_texts(3, 100):
        ids = tok.encode(t)
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        streamed = "".join(dec.decode(tok.piece_bytes(p, i)) for p, i in zip(ids, ids[1:]))
        streamed += dec.decode(b"", final=True)
        assert streamed == tok.decode(ids), t


@shared
def test_aidreams_tokenizer_converted_matches_run_c(tmp_path):
    """The shared aidreams tokenizer.bin (run.c's encoder, checked against
    the reference ids in test_llama2c) converted to tokenizer.json encodes
    every text as run.c does, and the reference prompt as reference.json."""
    ref_tok = Llama2cTokenizer(os.path.join(MODELS, "aidreams_tok512.bin"), 512)
    pieces = [p.decode("utf-8", errors="surrogateescape").replace(" ", "▁")
              for p in ref_tok.pieces]
    assert len(set(pieces)) == len(pieces)
    tok = hftok.load(write(tmp_path, spm_llama_json(pieces, ref_tok.scores)))
    with open(os.path.join(MODELS, "reference.json")) as f:
        ref = json.load(f)["aidreams_i_dreamed"]
    assert tok.encode(ref["prompt"]) == ref["ids"][:len(tok.encode(ref["prompt"]))]
    assert tok.encode(ref["prompt"]) == ref_tok.encode(ref["prompt"])
    for t in random_texts(11, 200):
        assert tok.encode(t) == ref_tok.encode(t), t
    assert tok.decode(ref["ids"]) == ref_tok.decode(ref["ids"])


# -- byte-level BPE -----------------------------------------------------------

def gpt2_bpe(token, ranks):
    """openai/gpt-2 encoder.py's bpe(): merge the lowest-ranked bigram
    everywhere it occurs, left to right, until none applies."""
    word = tuple(token)
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        first, second = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if (first, second) not in ranks:
            break
        out, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                out.append(first + second)
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = tuple(out)
    return list(word)


def train_byte_level(texts, pattern, n_merges):
    """A small byte-level BPE (most frequent pair first) for the test."""
    import regex

    pat = regex.compile(pattern)
    b2u = hftok.bytes_to_unicode()
    words = {}
    for t in texts:
        for m in pat.finditer(t):
            w = tuple(b2u[b] for b in m.group().encode())
            words[w] = words.get(w, 0) + 1
    vocab = {c: i for i, c in enumerate(b2u[b] for b in range(256))}
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w, c in words.items():
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + c
        if not counts:
            break
        best = max(sorted(counts), key=lambda p: counts[p])
        merges.append(best)
        vocab.setdefault(best[0] + best[1], len(vocab))
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return vocab, merges


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?"
                  r"[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_level_json(vocab, merges, split_pattern=None, special=("<|endoftext|>",)):
    added = []
    for s in special:
        vocab = dict(vocab)
        vocab.setdefault(s, len(vocab))
        added.append({"id": vocab[s], "content": s, "special": True, "lstrip": False,
                      "rstrip": False, "normalized": False, "single_word": False})
    if split_pattern:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": split_pattern}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]}
    else:
        pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
               "use_regex": True}
    return {"version": "1.0", "added_tokens": added, "normalizer": None,
            "pre_tokenizer": pre,
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                               "trim_offsets": False, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": "", "end_of_word_suffix": "",
                      "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": bool(split_pattern), "vocab": vocab,
                      "merges": [[a, b] for a, b in merges]}}


def test_gpt2_byte_map():
    m = hftok.bytes_to_unicode()
    assert len(set(m.values())) == 256
    assert m[ord("A")] == "A" and m[ord(" ")] == "Ġ" and m[ord("\n")] == "Ċ"
    assert m[0] == "Ā" and m[0xAD] == "Ń" and m[0xFF] == "ÿ"


@pytest.mark.parametrize("pattern", [hftok.GPT2_PATTERN, LLAMA3_PATTERN],
                         ids=["gpt2", "llama3"])
def test_byte_level_bpe_matches_gpt2_algorithm(tmp_path, pattern):
    regex = pytest.importorskip("regex", reason="python3-regex (apt)")
    corpus = random_texts(5, 300)
    vocab, merges = train_byte_level(corpus, pattern, 150)
    split = None if pattern == hftok.GPT2_PATTERN else pattern
    tok = hftok.load(write(tmp_path, byte_level_json(vocab, merges, split)))
    ranks = {m: r for r, m in enumerate(merges)}
    b2u = hftok.bytes_to_unicode()
    pat = regex.compile(pattern)
    for t in random_texts(9, 300) + ["", "Hello world's 12345!!\n\n  x"]:
        want = []
        for m in pat.finditer(t):
            word = "".join(b2u[b] for b in m.group().encode())
            if split and word in vocab:  # ignore_merges
                want.append(vocab[word])
            else:
                want += [vocab[p] for p in gpt2_bpe(word, ranks)]
        ids = tok.encode(t)
        assert ids == want, t
        assert tok.decode(ids) == t
        dec = codecs.getincrementaldecoder("utf-8")()
        streamed = "".join(dec.decode(tok.piece_bytes(p, i))
                           for p, i in zip([None] + ids, ids))
        assert streamed == t


def test_pre_tokenizer_splits():
    pytest.importorskip("regex", reason="python3-regex (apt)")
    import regex

    gpt2 = regex.compile(hftok.GPT2_PATTERN)
    assert gpt2.findall("Hello world's 12345!!\n\n  x") == \
        ["Hello", " world", "'s", " 12345", "!!", "\n\n ", " x"]
    llama3 = regex.compile(LLAMA3_PATTERN)
    assert llama3.findall("Hello WORLD'S 12345!!\n\n  x") == \
        ["Hello", " WORLD", "'S", " ", "123", "45", "!!\n\n", " ", " x"]


def test_added_tokens_and_special_skipping(tmp_path):
    pytest.importorskip("regex", reason="python3-regex (apt)")
    vocab, merges = train_byte_level(random_texts(5, 100), hftok.GPT2_PATTERN, 60)
    tok = hftok.load(write(tmp_path, byte_level_json(vocab, merges,
                                                     special=("<|endoftext|>", "<|im_start|>",
                                                              "<|im"))))
    eot, ims, im = (tok.vocab[s] for s in ("<|endoftext|>", "<|im_start|>", "<|im"))
    ids = tok.encode("hi<|im_start|>there<|endoftext|><|im")
    assert ids.count(ims) == 1 and ids.count(eot) == 1 and ids[-1] == im
    assert ids == tok.encode("hi") + [ims] + tok.encode("there") + [eot, im]
    assert tok.decode(ids) == "hithere"
    assert tok.piece_bytes(None, eot) == b"" and tok.piece_bytes(None, 10**9) == b""


def test_metaspace_pre_tokenizer(tmp_path):
    """Mistral-style: Metaspace(prepend_scheme first) instead of the
    normalizer pair, same ids for the first section, no ▁ after a special
    token, and the Metaspace decoder."""
    pieces = ["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab", "<0x21>"]
    data = {"added_tokens": [{"id": 1, "content": "<s>", "special": True},
                             {"id": 2, "content": "</s>", "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "▁",
                              "prepend_scheme": "first", "split": False},
            "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
                        "split": False},
            "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True,
                      "vocab": {p: i for i, p in enumerate(pieces)},
                      "merges": ["▁ a", "a b", "▁a b"]}}
    tok = hftok.load(write(tmp_path, data))
    v = tok.vocab
    assert tok.encode("ab ab!") == [v["▁ab"], v["▁ab"], v["<0x21>"]]
    assert tok.encode("ab</s>ab") == [v["▁ab"], 2, v["ab"]]
    assert tok.encode("c") == [v["▁"], 0]
    assert tok.decode(tok.encode("ab ab")) == "ab ab"


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(model={"type": "WordPiece", "vocab": {}}), "WordPiece"),
    (lambda d: d.update(model={"type": "Unigram", "vocab": []}), "Unigram"),
    (lambda d: d["model"]["merges"].append("q z"), "not in the vocabulary"),
    (lambda d: d["model"]["merges"].append(7), "not a pair"),
    (lambda d: d["model"]["vocab"].update(zz=-1), r"not an integer in \[0, 2\^32\)"),
    (lambda d: d["model"]["vocab"].update({"\ud800": 9}), "lone surrogate"),
    (lambda d: d["model"].update(unk_token=["<unk>"]), "unk_token"),
    (lambda d: d.update(added_tokens=[{"id": 9, "content": "ab"}]), "'ab' has id 9 here and 3"),
    (lambda d: d.update(added_tokens=[{"id": 9, "content": "<x>"},
                                      {"id": 8, "content": "<x>"}]), "has id 8 here and 9"),
    (lambda d: d.update(added_tokens=[{"id": 9, "content": "<x>", "single_word": True}]),
     "single_word"),
    (lambda d: d.update(normalizer={"type": "Sequence", "normalizers": [None]}),
     "Sequence needs a list"),
    (lambda d: d.update(decoder={"type": "Strip", "content": "", "start": 10**12}),
     "'content' must be one character"),
    (lambda d: d.update(pre_tokenizer={"type": "Metaspace", "replacement": "ab"}),
     "'replacement' must be one character"),
    (lambda d: d.update(pre_tokenizer={"type": "Split", "behavior": "Isolated", "pattern": {
        "Regex": "(?:(?:(?:a{100}){100}){100}){100}"}}), "nests counted repeats"),
    (lambda d: d.update(pre_tokenizer={"type": "Split", "behavior": "Isolated", "pattern": {
        "Regex": "a{5000}"}}), "repeats more than 1000"),
    (lambda d: d.update(pre_tokenizer={"type": "Split", "behavior": "Isolated", "pattern": {
        "Regex": "(" * 5000 + "a" + ")" * 5000}}), "does not compile"),
    (lambda d: d.update(post_processor={"type": "TemplateProcessing", "single": [
        {"SpecialToken": {"id": "<s>"}}], "special_tokens": {"<s>": {"ids": [-7]}}}),
     "not ids of the vocabulary"),
    (lambda d: d.update(post_processor={"type": "RobertaProcessing", "cls": ["a", 99],
                                        "sep": ["b", 2]}), "given id 99; the vocabulary has 1"),
    (lambda d: d["model"]["vocab"].update(zz=0), "share an id"),
    (lambda d: d.update(normalizer={"type": "BertNormalizer"}), "BertNormalizer"),
    (lambda d: d.update(pre_tokenizer={"type": "Split", "pattern": {"Regex": "("},
                                       "behavior": "Isolated"}), "does not compile"),
    (lambda d: d.update(pre_tokenizer={"type": "Split", "pattern": {"Regex": "a"},
                                       "behavior": "Sideways"}), "Sideways"),
    (lambda d: d.update(decoder={"type": "WordPiece"}), "WordPiece"),
    (lambda d: d["model"].update(continuing_subword_prefix="##"), "continuing_subword"),
    (lambda d: d["model"].update(unk_token="<nope>"), "unk_token"),
    (lambda d: d.update(added_tokens=[{"id": 4, "content": "<x>"}]), "gives to"),
    (lambda d: d.update(model=[]), "no 'model'"),
])
def test_broken_tokenizers_are_errors(tmp_path, mutate, message):
    pytest.importorskip("regex", reason="python3-regex (apt)")
    data = {"model": {"type": "BPE", "unk_token": "<unk>",
                      "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "c": 4},
                      "merges": ["a b"]}}
    mutate(data)
    with pytest.raises(hftok.TokenizerError, match=message) as e:
        hftok.load(write(tmp_path, data))
    assert "tokenizer.json" in str(e.value)


def test_hostile_texts_and_ids(tmp_path):
    """Texts and ids an attacker passes: lone surrogates, catastrophic
    patterns, very long words, malformed byte tokens, ids of every type."""
    import time

    pytest.importorskip("regex", reason="python3-regex (apt)")
    vocab, merges = train_byte_level(random_texts(5, 100), hftok.GPT2_PATTERN, 60)
    vocab.setdefault("aa", len(vocab))
    merges.append(("a", "a"))
    tok = hftok.load(write(tmp_path, byte_level_json(vocab, merges)))
    with pytest.raises(hftok.TokenizerError, match="lone surrogate U\\+D800 at index 1"):
        tok.encode("a\ud800")
    # A long word merges in O(n log n), not O(n^2) (was 11 s at 16,000).
    start = time.perf_counter()
    assert tok.decode(tok.encode("a" * 64000)) == "a" * 64000
    assert time.perf_counter() - start < 20
    for bad in ([None], [[1, 2]], "123", {1: 2}, [1.5], ["104"], [True]):
        with pytest.raises(hftok.TokenizerError):
            tok.decode(bad)
    assert tok.decode(np.array([tok.vocab["a"]], np.int64)) == "a"
    assert tok.piece_bytes(None, np.int64(tok.vocab["a"])) == b"a"
    # A pattern that backtracks catastrophically is an error after a bound.
    slow = byte_level_json(vocab, merges, split_pattern="(a|aa)+$")
    tok = hftok.load(write(tmp_path, slow, "slow.json"))
    hftok.REGEX_SECONDS, saved = 0.5, hftok.REGEX_SECONDS
    try:
        with pytest.raises(hftok.TokenizerError, match="catastrophic backtracking"):
            tok.encode("a" * 60 + "c")
    finally:
        hftok.REGEX_SECONDS = saved
    # Byte tokens are exactly <0xHH>; others stay text; Replace after
    # ByteFallback works on bytes.
    pieces = ["<unk>", "<s>", "</s>", "<0xE2>", "<0x82>", "<0xAC>", "<0xZZ>", "x", "▁"]
    data = {"decoder": {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"}, {"type": "Replace", "pattern": {"String": "▁"},
                                   "content": " "}, {"type": "Fuse"}]},
            "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": True,
                      "vocab": {p: i for i, p in enumerate(pieces)}, "merges": []}}
    tok = hftok.load(write(tmp_path, data, "bf.json"))
    assert tok.decode([3, 4, 5, 8, 6, 7]) == "€ <0xZZ>x"


def test_unreadable_files(tmp_path):
    with pytest.raises(hftok.TokenizerError, match="cannot be read"):
        hftok.load(str(tmp_path / "missing.json"))
    (tmp_path / "t.json").write_bytes(b"{\"model\": ")
    with pytest.raises(hftok.TokenizerError, match="not JSON"):
        hftok.load(str(tmp_path / "t.json"))
    with pytest.raises(hftok.TokenizerError, match="cannot be read"):
        hftok.load(str(tmp_path))  # a directory without tokenizer.json
    (tmp_path / "big.json").write_text('{"model": {"vocab": {"a": ' + "9" * 5000 + "}}}")
    with pytest.raises(hftok.TokenizerError, match="not JSON"):
        hftok.load(str(tmp_path / "big.json"))
    tok = hftok.load(write(tmp_path, {"model": {"type": "BPE", "vocab": {"a": 0},
                                                "merges": []}}))
    with pytest.raises(hftok.TokenizerError, match="U\\+0062"):
        tok.encode("ab")
