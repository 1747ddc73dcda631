"""Hugging Face tokenizers (`tokenizer.json`) for the BPE models LLMs ship.

    tok = posenc.tokenizer.load("Qwen2.5-0.5B/tokenizer.json")
    ids = tok.encode("Hello world")            # post-processor's BOS first
    text = tok.decode(ids)                     # special tokens skipped

Two kinds of BPE cover the decoder families posenc.hf reads:

- byte-level (GPT-2, GPT-NeoX/Pythia, Llama 3, Qwen2, Phi-3.5-MoE, ...):
  the `ByteLevel` pre-tokenizer (with or after a `Split` regex) maps every
  byte of a pre-token to a printable character (GPT-2's bytes_to_unicode),
  and the `ByteLevel` decoder maps them back;
- SentencePiece-converted (Llama 2, Mistral, TinyLlama, Phi-3): spaces
  become "▁" (the `Prepend` + `Replace` normalizers or the `Metaspace`
  pre-tokenizer), characters missing from the vocabulary become `<0xXX>`
  byte tokens (`byte_fallback`), and the decoder undoes both.

The algorithm is that of the `tokenizers` library (huggingface/tokenizers,
`models/bpe`): added tokens are split off the text first, each remaining
section is normalized and pre-tokenized, and each pre-token is split into
characters and merged pair by pair, lowest merge rank first (leftmost on
ties); `ignore_merges` takes a pre-token that is a whole vocabulary entry
as is. The post-processor's template (`TemplateProcessing`,
`RobertaProcessing`, `BertProcessing`) adds its special tokens.

Any other component (WordPiece, Unigram, a normalizer or pre-tokenizer
not listed in `NORMALIZERS`/`PRE_TOKENIZERS`, continuing-subword prefixes)
is a TokenizerError naming the file and the component, never a silently
different tokenization. Pattern regexes need Debian's `python3-regex`
(Unicode classes such as \\p{L}; Python's `re` has none).
"""

import json
import os
import re
import unicodedata

import numpy as np

NORMALIZERS = ("Sequence", "Prepend", "Replace", "NFC", "NFD", "NFKC", "NFKD", "Lowercase",
               "Strip")
PRE_TOKENIZERS = ("Sequence", "ByteLevel", "Split", "Metaspace", "Digits")
DECODERS = ("Sequence", "ByteLevel", "Replace", "ByteFallback", "Fuse", "Strip", "Metaspace")
POST_PROCESSORS = ("Sequence", "TemplateProcessing", "ByteLevel", "RobertaProcessing",
                   "BertProcessing")

# GPT-2's pre-tokenizer pattern (the ByteLevel pre-tokenizer's `use_regex`).
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


class TokenizerError(ValueError):
    """A tokenizer file that cannot be read or uses an unsupported component."""


def bytes_to_unicode():
    """GPT-2's byte -> character map: printable Latin-1 bytes map to
    themselves, the other 68 to U+0100.. in byte order (openai/gpt-2
    encoder.py)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


_BYTE_CHAR = bytes_to_unicode()
# ByteFallback's byte tokens, exactly as tokenizers writes them.
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>\Z", re.ASCII)
_CHAR_BYTE = {c: b for b, c in _BYTE_CHAR.items()}


# Seconds one pattern may search one text: a pattern that backtracks
# catastrophically is an error, not a hang.
REGEX_SECONDS = 5.0
# Counted repeats compile to copies of their body: a bound above this, or
# one nested in another, could take gigabytes to compile.
MAX_REPEAT = 1000


def _check_repeats(where, pattern):
    """Rejects counted repeats {m,n} above MAX_REPEAT or applied to a group
    that holds another counted repeat (tokenizer patterns use \\p{N}{1,3})."""

    counted = re.compile(r"\{(\d*),?(\d*)\}")
    stack, i = [False], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":  # a class: skip to its end
            j = i + 1 + (pattern[i + 1:i + 2] in ("]", "^"))
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if ch == "(":
            stack.append(False)
        elif ch == ")" and len(stack) > 1:
            inner = stack.pop()
            m = counted.match(pattern, i + 1)
            if m and inner:
                raise TokenizerError(f"{where}: pattern {pattern[:80]!r} nests counted "
                                     f"repeats (compiling it could exhaust memory)")
            stack[-1] |= inner
        m = counted.match(pattern, i) if ch == "{" else None
        if m and (m.group(1) or m.group(2)):
            if max(int(g) for g in m.groups() if g) > MAX_REPEAT:
                raise TokenizerError(f"{where}: pattern {pattern[:80]!r} repeats more than "
                                     f"{MAX_REPEAT} times")
            stack[-1] = True
        i += 1


def _regex(where, pattern):
    try:
        import regex
    except ImportError:
        raise TokenizerError(f"{where}: its pattern needs the python3-regex package "
                             f"(Unicode classes); install it with apt") from None
    _check_repeats(where, pattern)
    try:
        return _Timed(where, regex.compile(pattern))
    except (regex.error, TypeError, ValueError, RecursionError, OverflowError,
            MemoryError) as e:
        raise TokenizerError(f"{where}: pattern {pattern[:80]!r} does not compile "
                             f"({type(e).__name__}: {str(e)[:80]})") from None


class _Timed:
    """A compiled pattern whose searches give up after REGEX_SECONDS."""

    def __init__(self, where, pattern):
        self.where, self.pattern = where, pattern

    def _guard(self, fn, *args):
        try:
            return fn(*args, timeout=REGEX_SECONDS)
        except TimeoutError:
            raise TokenizerError(f"{self.where}: pattern {self.pattern.pattern[:80]!r} "
                                 f"searched one text for more than {REGEX_SECONDS:g} s "
                                 f"(catastrophic backtracking)") from None

    def finditer(self, text):
        return self._guard(lambda t, timeout: list(self.pattern.finditer(t, timeout=timeout)),
                           text)

    def findall(self, text):
        return [m.group() for m in self.finditer(text)]

    def sub(self, repl, text):
        return self._guard(self.pattern.sub, repl, text)


def _pattern(where, spec):
    """A Split/Replace pattern: {"String": s} (literal) or {"Regex": r}."""

    if not isinstance(spec, dict) or len(spec) != 1:
        raise TokenizerError(f"{where}: pattern must be {{\"String\": ...}} or "
                             f"{{\"Regex\": ...}}, got {spec!r}")
    (kind, text), = spec.items()
    if not isinstance(text, str) or kind not in ("String", "Regex"):
        raise TokenizerError(f"{where}: pattern must be {{\"String\": ...}} or "
                             f"{{\"Regex\": ...}}, got {spec!r}")
    return _regex(where, re.escape(text) if kind == "String" else text)


def _split(pattern, text, behavior, invert=False):
    """Pieces of `text` around the matches of `pattern` (Split's
    behaviors; `invert`: the matches are the non-delimiters)."""
    spans, at = [], 0
    for m in pattern.finditer(text):
        if m.end() == m.start():
            continue
        if m.start() > at:
            spans.append((text[at:m.start()], False))
        spans.append((m.group(), True))
        at = m.end()
    if at < len(text):
        spans.append((text[at:], False))
    if invert:
        spans = [(s, not d) for s, d in spans]
    if behavior == "Isolated":
        return [s for s, _ in spans]
    if behavior == "Removed":
        return [s for s, d in spans if not d]
    out = []
    if behavior == "MergedWithPrevious":
        for s, d in spans:
            if d and out:
                out[-1] += s
            else:
                out.append(s)
        return out
    if behavior == "MergedWithNext":
        carry = ""
        for s, d in spans:
            if d:
                carry += s
            else:
                out.append(carry + s)
                carry = ""
        return out + ([carry] if carry else [])
    if behavior == "Contiguous":
        for s, d in spans:
            if out and out[-1][1] == d:
                out[-1] = (out[-1][0] + s, d)
            else:
                out.append((s, d))
        return [s for s, _ in out]
    raise AssertionError(behavior)


def _check_text(r, what, text):
    """Rejects strings that are not Unicode text (lone surrogates: JSON
    escapes of half a pair)."""
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        r.fail(f"{what} {text!r} holds a lone surrogate, not Unicode text")


class _Reader:
    """Field access on a component with errors naming file and component."""

    def __init__(self, path, where, node):
        self.path, self.where, self.node = path, where, node

    def fail(self, message):
        raise TokenizerError(f"{self.path}: {self.where}: {message}")

    def pattern(self):
        return _pattern(f"{self.path}: {self.where}", self.node.get("pattern"))

    def get(self, name, kind, default=None):
        v = self.node.get(name, default)
        if v is None:
            v = default
        if kind is bool and not isinstance(v, bool) or \
                kind is int and (not isinstance(v, int) or isinstance(v, bool)) or \
                kind is str and not isinstance(v, str) or \
                kind is list and not isinstance(v, list) or \
                kind is dict and not isinstance(v, dict):
            self.fail(f"'{name}' must be {kind.__name__}, got {v!r}")
        return v


def _components(path, what, node, known):
    """The steps of a component that may be a Sequence, as (type, reader)."""
    if node is None:
        return []
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise TokenizerError(f"{path}: {what} must be an object with a 'type', got "
                             f"{str(node)[:80]}")
    kind = node["type"]
    if kind not in known:
        raise TokenizerError(f"{path}: {what} '{kind}' is not supported (supported: "
                             f"{', '.join(known)})")
    if kind == "Sequence":
        key = {"normalizer": "normalizers", "pre_tokenizer": "pretokenizers",
               "decoder": "decoders", "post_processor": "processors"}[what]
        steps = node.get(key)
        if not isinstance(steps, list) or any(n is None for n in steps):
            raise TokenizerError(f"{path}: {what} Sequence needs a list '{key}' of "
                                 f"components")
        return [s for n in steps for s in _components(path, what, n, known)]
    return [(kind, _Reader(path, f"{what} {kind}", node))]


class Tokenizer:
    """A `tokenizer.json` BPE tokenizer; see the module docstring.

    `bos`/`eos` (ids, optional) override the post-processor's and the
    model config's; `encode(text, bos=True)` adds the post-processor's
    special tokens (bos=False: none), `decode(ids)` skips special tokens,
    `piece_bytes(prev, token)` is the UTF-8 bytes one token adds after
    `prev` (None at the start), for printing while generating."""

    def __init__(self, path, bos=None, eos=None):
        self.path = path
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
        except OSError as e:
            raise TokenizerError(f"{path}: cannot be read ({e.strerror})") from None
        except (ValueError, RecursionError) as e:  # JSONDecodeError, Unicode, huge ints
            raise TokenizerError(f"{path}: not JSON ({type(e).__name__}: {str(e)[:80]})") \
                from None
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise TokenizerError(f"{path}: no 'model' object (not a tokenizer.json?)")
        self._read_model(_Reader(path, "model", data["model"]))
        self._read_added(path, data.get("added_tokens"))
        self.normalizers = _components(path, "normalizer", data.get("normalizer"),
                                       NORMALIZERS)
        self.pre_tokenizers = _components(path, "pre_tokenizer", data.get("pre_tokenizer"),
                                          PRE_TOKENIZERS)
        self.decoders = _components(path, "decoder", data.get("decoder"), DECODERS)
        self._compile_steps()
        self.prefix, self.suffix = self._template(
            _components(path, "post_processor", data.get("post_processor"), POST_PROCESSORS))
        self.BOS = bos if bos is not None else (self.prefix[0] if self.prefix else None)
        self.EOS = eos
        self._cache = {}

    # -- reading -----------------------------------------------------------

    def _read_model(self, r):
        kind = r.node.get("type", "BPE" if "merges" in r.node else None)
        if kind != "BPE":
            r.fail(f"type {kind!r} is not supported (BPE only: the tokenizers of "
                   f"the decoder families posenc reads)")
        for name in ("continuing_subword_prefix", "end_of_word_suffix"):
            if r.node.get(name):
                r.fail(f"'{name}' {r.node[name]!r} is not supported")
        if r.node.get("dropout") not in (None, 0, 0.0):
            r.fail(f"dropout {r.node['dropout']!r}: BPE dropout samples tokenizations; "
                   f"inference tokenizers have none")
        vocab = r.get("vocab", dict)
        self.vocab = {}
        for piece, i in vocab.items():
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < 2**32:
                r.fail(f"vocab entry {piece!r} has id {i!r}, not an integer in [0, 2^32)")
            _check_text(r, "vocab entry", piece)
            self.vocab[piece] = i
        self.pieces = {i: p for p, i in self.vocab.items()}
        if len(self.pieces) != len(self.vocab):
            r.fail("two vocabulary entries share an id")
        self.byte_fallback = r.get("byte_fallback", bool, False)
        self.ignore_merges = r.get("ignore_merges", bool, False)
        self.fuse_unk = r.get("fuse_unk", bool, False)
        unk = r.node.get("unk_token")
        if unk is not None and (not isinstance(unk, str) or unk not in self.vocab):
            r.fail(f"unk_token {unk!r} is not in the vocabulary")
        self.unk = self.vocab.get(unk) if unk is not None else None
        self.merges = {}
        for rank, m in enumerate(r.get("merges", list, [])):
            if isinstance(m, str):
                parts = m.split(" ")
            elif isinstance(m, list):
                parts = m
            else:
                parts = None
            if not parts or len(parts) != 2 or not all(isinstance(p, str) for p in parts):
                r.fail(f"merge {rank} is {m!r}, not a pair of pieces")
            a, b = parts
            for p in (a, b, a + b):
                if p not in self.vocab:
                    r.fail(f"merge {rank} ({a!r} {b!r}) uses {p!r}, which is not in the "
                           f"vocabulary")
            self.merges.setdefault((self.vocab[a], self.vocab[b]), (rank, self.vocab[a + b]))

    def _read_added(self, path, added):
        self.added, self.special = [], set()
        self.added_pattern, self.added_ids = None, {}
        if added is None:
            return
        if not isinstance(added, list):
            raise TokenizerError(f"{path}: added_tokens must be a list")
        for t in added:
            r = _Reader(path, "added_tokens", t if isinstance(t, dict) else {})
            i, content = r.get("id", int, -1), r.get("content", str, "")
            if not 0 <= i < 2**32 or not content:
                r.fail(f"entry {str(t)[:80]} needs an id in [0, 2^32) and a non-empty "
                       f"content")
            _check_text(r, "content", content)
            if self.pieces.get(i, content) != content:
                r.fail(f"{content!r} has id {i}, which the vocabulary gives to "
                       f"{self.pieces[i]!r}")
            if self.vocab.get(content, i) != i or self.added_ids.get(content, (i,))[0] != i:
                other = self.vocab.get(content, self.added_ids.get(content, (i,))[0])
                r.fail(f"{content!r} has id {i} here and {other} elsewhere")
            if r.get("single_word", bool, False):
                r.fail(f"{content!r}: single_word added tokens are not supported")
            self.added_ids[content] = (i, False, False)
            self.pieces[i] = content
            self.added.append((content, i, r.get("lstrip", bool, False),
                               r.get("rstrip", bool, False)))
            if r.get("special", bool, False):
                self.special.add(i)
        # Longest first: "<|im_start|>" before "<|im".
        self.added.sort(key=lambda a: -len(a[0]))
        self.added_pattern = _regex(f"{path}: added_tokens", "|".join(
            re.escape(c) for c, *_ in self.added)) if self.added else None
        self.added_ids = {c: (i, ls, rs) for c, i, ls, rs in self.added}

    def _char(self, r, name, default):
        """A one-character field (Metaspace's replacement, Strip's content)."""
        v = r.get(name, str, default)
        if len(v) != 1:
            r.fail(f"'{name}' must be one character, got {v!r}")
        return v

    def _compile_steps(self):
        steps = []
        for kind, r in self.normalizers:
            if kind == "Replace":
                steps.append((kind, r.pattern(),
                              r.get("content", str)))
            elif kind == "Prepend":
                steps.append((kind, r.get("prepend", str)))
            elif kind == "Strip":
                steps.append((kind, r.get("strip_left", bool, True),
                              r.get("strip_right", bool, True)))
            else:
                steps.append((kind,))
        self.normalize_steps = steps
        steps = []
        for kind, r in self.pre_tokenizers:
            if kind == "ByteLevel":
                steps.append((kind, r.get("add_prefix_space", bool, True),
                              _regex(f"{r.path}: {r.where}", GPT2_PATTERN)
                              if r.get("use_regex", bool, True) else None))
            elif kind == "Split":
                behavior = r.get("behavior", str)
                if behavior not in ("Isolated", "Removed", "MergedWithPrevious",
                                    "MergedWithNext", "Contiguous"):
                    r.fail(f"behavior {behavior!r} is not a Split behavior")
                steps.append((kind, r.pattern(), behavior,
                              r.get("invert", bool, False)))
            elif kind == "Metaspace":
                steps.append((kind, self._char(r, "replacement", "▁"), self._prepend_scheme(r),
                              r.get("split", bool, True)))
            elif kind == "Digits":
                steps.append((kind, r.get("individual_digits", bool, False)))
        self.pre_steps = steps
        steps = []
        for kind, r in self.decoders:
            if kind == "Replace":
                steps.append((kind, r.pattern(),
                              r.get("content", str)))
            elif kind == "Strip":
                steps.append((kind, self._char(r, "content", " "), r.get("start", int, 0),
                              r.get("stop", int, 0)))
            elif kind == "Metaspace":
                steps.append((kind, self._char(r, "replacement", "▁"), self._prepend_scheme(r)))
            else:
                steps.append((kind,))
        self.decode_steps = steps

    @staticmethod
    def _prepend_scheme(r):
        if "prepend_scheme" in r.node:
            scheme = r.get("prepend_scheme", str)
            if scheme not in ("always", "first", "never"):
                r.fail(f"prepend_scheme {scheme!r} is not always, first or never")
            return scheme
        return "always" if r.get("add_prefix_space", bool, True) else "never"

    def _template(self, processors):
        prefix, suffix = [], []

        def token_id(r, name, given=None):
            if not isinstance(name, str) or (name not in self.vocab
                                             and name not in self.added_ids):
                r.fail(f"special token {name!r} is in neither the vocabulary nor "
                       f"added_tokens")
            i = self.vocab.get(name, self.added_ids.get(name, (None,))[0])
            if given is not None and given != i:
                r.fail(f"special token {name!r} is given id {given!r}; the vocabulary has {i}")
            return i

        def known_ids(r, name, ids):
            if not isinstance(ids, list) or not ids or not all(
                    isinstance(i, int) and not isinstance(i, bool) and i in self.pieces
                    for i in ids):
                r.fail(f"special token {name!r} has ids {ids!r}, not ids of the vocabulary or "
                       f"added_tokens")
            return ids

        for kind, r in processors:
            if kind == "TemplateProcessing":
                specials = r.get("special_tokens", dict, {})
                seen = False
                for item in r.get("single", list):
                    if not isinstance(item, dict) or len(item) != 1:
                        r.fail(f"single item {item!r} is not a SpecialToken or Sequence")
                    (k, v), = item.items()
                    if k == "Sequence":
                        seen = True
                    elif k == "SpecialToken" and isinstance(v, dict) and \
                            isinstance(v.get("id"), str):
                        spec = specials.get(v["id"])
                        ids = spec.get("ids") if isinstance(spec, dict) else None
                        (suffix if seen else prefix).extend(known_ids(r, v["id"], ids))
                    else:
                        r.fail(f"single item {item!r} is not a SpecialToken or Sequence")
            elif kind in ("RobertaProcessing", "BertProcessing"):
                for name, out in (("cls", prefix), ("sep", suffix)):
                    pair = r.get(name, list)
                    if len(pair) != 2:
                        r.fail(f"'{name}' must be [token, id], got {pair!r}")
                    out.append(token_id(r, pair[0], pair[1]))
        return prefix, suffix

    # -- encoding ----------------------------------------------------------

    def _normalize(self, text):
        for step in self.normalize_steps:
            kind = step[0]
            if kind == "Replace":
                text = step[1].sub(lambda _m, c=step[2]: c, text)
            elif kind == "Prepend":
                text = step[1] + text if text else text
            elif kind == "Lowercase":
                text = text.lower()
            elif kind == "Strip":
                text = text.lstrip() if step[1] else text
                text = text.rstrip() if step[2] else text
            else:
                text = unicodedata.normalize(kind, text)
        return text

    def _pre_tokenize(self, text, first):
        pieces = [text]
        for step in self.pre_steps:
            kind, out = step[0], []
            for p in pieces:
                if kind == "ByteLevel":
                    if step[1] and not p.startswith(" "):
                        p = " " + p
                    parts = [m.group() for m in step[2].finditer(p)] if step[2] else [p]
                    out += ["".join(_BYTE_CHAR[b] for b in s.encode()) for s in parts]
                elif kind == "Split":
                    out += _split(step[1], p, step[2], step[3])
                elif kind == "Metaspace":
                    rep, scheme, split = step[1:]
                    p = p.replace(" ", rep)
                    if (scheme == "always" or scheme == "first" and first) and \
                            not p.startswith(rep):
                        p = rep + p
                    if split:
                        out += _split(re.compile(re.escape(rep)), p, "MergedWithNext")
                    else:
                        out.append(p)
                elif kind == "Digits":
                    out += _split(re.compile(r"\d" if step[1] else r"\d+"), p, "Isolated")
                first = False
            pieces = [p for p in out if p]
        return pieces

    def _bpe(self, word):
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        ids = []
        for ch in word:
            if ch in self.vocab:
                ids.append(self.vocab[ch])
                continue
            fallback = [self.vocab.get(f"<0x{b:02X}>") for b in ch.encode()] \
                if self.byte_fallback else [None]
            if None not in fallback:
                ids += fallback
            elif self.unk is not None:
                if not (self.fuse_unk and ids and ids[-1] == self.unk):
                    ids.append(self.unk)
            else:
                raise TokenizerError(f"{self.path}: {ch!r} (U+{ord(ch):04X}) is not in the "
                                     f"vocabulary and the model has no unk_token or byte "
                                     f"fallback for it")
        ids = self._merge(ids)
        if len(self._cache) < 100000:
            self._cache[word] = ids
        return ids

    def _merge(self, ids):
        """Applies the merges to `ids`, lowest rank first and leftmost among
        equals (tokenizers' word.merge_all): a heap of candidate pairs over
        a linked list of symbols, O(n log n) in the word's length."""
        import heapq

        n = len(ids)
        nxt, prv, alive = list(range(1, n + 1)), list(range(-1, n - 1)), [True] * n
        sym = list(ids)
        heap = []

        def push(i):
            j = nxt[i]
            if j < n:
                m = self.merges.get((sym[i], sym[j]))
                if m is not None:
                    heapq.heappush(heap, (m[0], i, sym[i], sym[j], m[1]))

        for i in range(n - 1):
            push(i)
        while heap:
            _, i, a, b, merged = heapq.heappop(heap)
            j = nxt[i] if alive[i] else n
            if j >= n or sym[i] != a or sym[j] != b:
                continue  # stale: a neighbour merged first
            sym[i], alive[j] = merged, False
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            if prv[i] >= 0:
                push(prv[i])
            push(i)
        return [sym[i] for i in range(n) if alive[i]]

    def encode(self, text, bos=True, eos=False):
        """Token ids of `text` (str or UTF-8 bytes): the post-processor's
        special tokens around it unless bos=False; `eos` appends EOS."""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise TokenizerError(f"encode takes str or bytes, got {type(text).__name__}")
        bad = next((i for i, ch in enumerate(text) if "\ud800" <= ch <= "\udfff"), None)
        if bad is not None:
            raise TokenizerError(f"the text has a lone surrogate U+{ord(text[bad]):04X} at "
                                 f"index {bad}: not Unicode text (undecodable bytes?)")
        sections, at = [], 0
        if self.added_pattern is not None:
            for m in self.added_pattern.finditer(text):
                i, lstrip, rstrip = self.added_ids[m.group()]
                before = text[at:m.start()]
                sections.append((before.rstrip() if lstrip else before, at == 0))
                sections.append(i)
                at = m.end()
                if rstrip:
                    while at < len(text) and text[at].isspace():
                        at += 1
        sections.append((text[at:], at == 0))
        ids = list(self.prefix) if bos else []
        for s in sections:
            if isinstance(s, int):
                ids.append(s)
            elif s[0]:
                for word in self._pre_tokenize(self._normalize(s[0]), s[1]):
                    ids += self._bpe(word)
        if bos:
            ids += self.suffix
        if eos and self.EOS is not None:
            ids.append(self.EOS)
        return ids

    # -- decoding ----------------------------------------------------------

    def _decode_tokens(self, tokens, first):
        """Bytes of token strings `tokens` (after `first`: the text's start)."""
        parts, fused = list(tokens), False
        for step in self.decode_steps:
            kind = step[0]
            if kind == "Replace":
                # Parts already bytes (after ByteFallback or ByteLevel) are
                # replaced in their text, undecodable bytes kept.
                parts = [step[1].sub(lambda _m, c=step[2]: c, p) if isinstance(p, str) else
                         step[1].sub(lambda _m, c=step[2]: c,
                                     p.decode("utf-8", "surrogateescape"))
                         .encode("utf-8", "surrogateescape") for p in parts]
            elif kind == "ByteFallback":
                parts = [bytes([int(p[3:5], 16)]) if isinstance(p, str) and _BYTE_TOKEN.match(p)
                         else p for p in parts]
            elif kind == "Fuse":
                parts, fused = [b"".join(p if isinstance(p, bytes) else p.encode()
                                         for p in parts)], True
            elif kind == "Strip":
                content, start, stop = step[1:]
                out = []
                for p in parts:
                    c = content.encode() if isinstance(p, bytes) else content
                    n = 0
                    # After Fuse the one part is the text: only its start
                    # is stripped (and a token streamed later is not it).
                    while (first or not fused) and n < start and p.startswith(c):
                        p, n = p[len(c):], n + 1
                    n = 0
                    while n < stop and p.endswith(c):
                        p, n = p[:-len(c)], n + 1
                    out.append(p)
                parts = out
            elif kind == "Metaspace":
                rep, scheme = step[1:]
                out = []
                for j, p in enumerate(parts):
                    if isinstance(p, str):
                        p = p.replace(rep, " ")
                        if j == 0 and first and scheme != "never" and p.startswith(" "):
                            p = p[1:]
                    out.append(p)
                parts = out
            elif kind == "ByteLevel":
                parts = [b"".join(
                    p if isinstance(p, bytes) else
                    b"".join(bytes([_CHAR_BYTE[c]]) if c in _CHAR_BYTE else c.encode()
                             for c in p) for p in parts)]
        return b"".join(p if isinstance(p, bytes) else p.encode() for p in parts)

    def _piece(self, token):
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
            raise TokenizerError(f"token id {token!r} is not an integer")
        return self.pieces.get(int(token))

    def piece_bytes(self, prev, token):
        """UTF-8 bytes `token` adds to the text after `prev` (None, or a
        special token: the text starts here). Special tokens and ids the
        tokenizer does not have (models pad their vocabulary) add none."""
        piece = self._piece(token)
        if piece is None or int(token) in self.special:
            return b""
        return self._decode_tokens([piece], prev is None or prev in self.special)

    def decode(self, ids):
        """Text of `ids` (a sequence of integers), special tokens skipped
        (transformers' decode(skip_special_tokens=True))."""
        if isinstance(ids, (str, bytes, dict)) or np.ndim(ids) != 1:
            raise TokenizerError(f"decode takes a 1-D sequence of token ids, got "
                                 f"{str(ids)[:40]!r}")
        tokens = [(self._piece(t), t) for t in ids]
        tokens = [(int(t), p) for p, t in tokens]
        keep = [p for t, p in tokens if p is not None and t not in self.special]
        return self._decode_tokens(keep, True).decode("utf-8", errors="replace")


def load(path, bos=None, eos=None):
    """A Tokenizer from `tokenizer.json` or from a directory holding one."""
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    return Tokenizer(path, bos, eos)
