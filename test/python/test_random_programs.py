"""Random valid posenc programs (random_programs.py): each verifies, matches
the float64 reference, keeps its numbers through every posenc pass, and
compiles under an alternative pipeline configuration. A fresh seed per run
(printed; replay with POSENC_SEED); scripts/random_programs.py is the long
mode."""

import pytest

import random_programs as rp
from harness import opt, rel_err, run
from raise_programs import (attention_program, interleaved_rope_program, mla_program, random_form,
                            random_interleaved_rope_form, random_mla_form, random_rope_form,
                            rope_program)

COUNT = 8


@pytest.mark.parametrize("index", range(COUNT))
def test_random_program(rng, index):
    p = rp.Generator(rng).program()
    # Verifies and round-trips through the printer.
    assert "posenc." in opt(p.ir)
    rp.check(p)


def test_generator_covers_every_op(rng):
    """The generator reaches every op kind, so the checks above mean
    something for each."""
    gen = rp.Generator(rng)
    text = "".join(gen.program().ir for _ in range(200))
    for op in ["rope", "sinusoidal", "alibi_bias", "rel_bias", "rel_key_bias",
               "attention", "mla_absorb"]:
        assert f"posenc.{op} " in text, op
    for kind in ["linear", "ntk", "dynamic", "yarn", "llama3", "longrope"]:
        assert f"rope_scaling<{kind}" in text, kind
    assert "?x" in text and "bf16" in text and "arith.constant dense<[" in text


@pytest.mark.parametrize("index", range(4))
def test_random_raisable_program(rng, index):
    """Attention in a random importer form (raise_programs.py) computes the
    same raised by posenc-raise as not, against float64."""
    form = random_form(rng)
    ir, inputs, expected = attention_program(rng, form)
    assert "posenc.attention" in opt(ir, "--posenc-raise"), form
    tol = 2e-5 if form["elem"] == "f32" else 1e-12
    for pipeline in ("posenc-lower-to-cpu", "posenc-raise,posenc-lower-to-cpu"):
        err = rel_err(run(ir, inputs, pipeline=pipeline)[0], expected)
        assert err <= tol, (form, pipeline, err)


def check_random_rope(rng, program, form):
    """`program` (rope_program or interleaved_rope_program) of `form` at a
    random base and sizes: raised exactly when it should be, and the
    same against float64 raised or not."""
    base = float(rng.choice([10000.0, 500000.0, 1000000.0]))
    b, h, s, d = (int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 9)),
                  int(rng.choice([4, 8, 16])))
    rotary = int(rng.choice([r for r in (4, 8, 16) if r <= d]))  # partial when < D
    ir, inputs, expected = program(rng, form, b=b, h=h, s=s, d=d, base=base, rotary=rotary)
    # Computed tables need S, R/2 and a batch > 1 distinct (the dims they
    # are read along); folded ones do not.
    distinct = s != rotary // 2 and (b == 1 or b not in (s, rotary // 2))
    # Cached tables gathered by position hold their rows (0..47) whatever S.
    expect = {"constant": s >= 2, "gathered": True}.get(form["tables"], distinct)
    raised = "posenc.rope" in opt(ir, "--posenc-raise")
    assert raised == expect, (form, base, b, h, s, d, rotary)
    for pipeline, tol in (("posenc-lower-to-cpu", 2e-5),
                          ("posenc-raise,posenc-lower-to-cpu", 2e-6 if raised else 2e-5)):
        err = rel_err(run(ir, inputs, pipeline=pipeline)[0], expected)
        assert err <= tol, (form, base, pipeline, err)


def test_random_raisable_rope(rng):
    """Hugging Face RoPE in a random importer form, at a random base and
    sizes, raised to posenc.rope and not, against float64."""
    check_random_rope(rng, rope_program, random_rope_form(rng))


def test_random_raisable_interleaved_rope(rng):
    """GPT-J or Meta-pairs RoPE in a random importer form, at a random base
    and sizes, raised to posenc.rope and not, against float64."""
    check_random_rope(rng, interleaved_rope_program, random_interleaved_rope_form(rng))


def test_random_raisable_mla(rng):
    """DeepSeek's naive MLA in a random importer form and random sizes:
    inlined and raised to posenc.mla_absorb, and not, against float64."""
    form = random_mla_form(rng)
    b, h, sk, dn, dr, dv, c = (int(x) for x in rng.integers(1, [4, 5, 9, 17, 9, 17, 33]))
    # A causal row with no key is NaN unraised and 0 raised (the mask rule).
    sq = int(rng.integers(1, sk + 1)) if form["causal"] else int(rng.integers(1, 9))
    ir, inputs, expected = mla_program(rng, form, b=b, h=h, sq=sq, sk=sk, dn=dn, dr=dr, dv=dv,
                                       c=c)
    raised = opt(ir, "--inline", "--symbol-dce", "--posenc-raise")
    assert "posenc.mla_absorb" in raised, (form, b, h, sq, sk, dn, dr, dv, c)
    for program in (ir, raised):
        err = rel_err(run(program, inputs)[0], expected)
        assert err <= 2e-5, (form, b, h, sq, sk, dn, dr, dv, c, err)
