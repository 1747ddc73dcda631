"""posenc-raise: softmax(scale·Q·Kᵀ + bias)·V written in upstream dialects,
in the forms importers emit (raise_programs.py), becomes one
posenc.attention; the program computes the same before and after, against
float64. Look-alikes that compute something else are left alone."""

import itertools
import os

import numpy as np
import pytest

from harness import opt, rel_err, run
from raise_programs import (FORMS, INTERLEAVED_LOOK_ALIKES, INTERLEAVED_ROPE_FORMS, MLA_FORMS,
                            MLA_LOOK_ALIKES, ROPE_FORMS, attention_program,
                            interleaved_rope_program, mla_program, random_form,
                            random_interleaved_rope_form, random_mla_form, rope_program)

TOL = {"f32": 2e-5, "f64": 1e-12}


def forms():
    """Every value of every form key at least once, then random mixes."""
    rng = np.random.default_rng(2412)
    cases = []
    for key, values in FORMS.items():
        for value in values:
            form = random_form(rng)
            form[key] = value
            cases.append(form)
    cases += [random_form(rng) for _ in range(12)]
    return cases


def form_id(form):
    return "-".join(str(v) for v in form.values())


@pytest.mark.parametrize("seed,form", list(enumerate(forms())),
                         ids=[form_id(f) for f in forms()])
def test_raise_forms(seed, form):
    rng = np.random.default_rng(seed)
    ir, inputs, expected = attention_program(rng, form)
    raised = opt(ir, "--posenc-raise")
    assert raised.count("posenc.attention") == 1, raised
    # The scores are gone: no softmax, reduction, exp or contraction over keys.
    for gone in ("linalg.softmax", '"reduction"', "math.exp", "linalg.batch_matmul",
                 "linalg.fill"):
        assert gone not in raised, (gone, raised)
    attn = next(line for line in raised.splitlines() if "posenc.attention" in line)
    if "causal" in form["bias"]:
        # A constant causal mask is the causal attribute, not a bias tensor.
        assert " causal " in attn and "bias(" not in attn, attn
    if form["batch"] == 2 and form["gqa"] != "none":
        # Repeated K/V are read unrepeated: 2 kv heads for 4 query heads.
        assert f"tensor<2x7x2x8x{form['elem']}>" in attn, attn
    tol = TOL[form["elem"]]
    before = run(ir, inputs)[0]
    after = run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0]
    assert rel_err(before, expected) <= tol
    assert rel_err(after, expected) <= tol


def test_raise_scale_and_bias_attributes():
    """The raised op carries the matched scale and the bias operand as it was."""
    rng = np.random.default_rng(5)
    form = dict(batch=2, k="map", named=False, scale="mul", bias="heads",
                softmax="decomposed", elem="f32")
    ir, _, _ = attention_program(rng, form)
    raised = opt(ir, "--posenc-raise")
    assert "bias(%arg3 : tensor<4x5x7xf32>)" in raised
    assert "scale = 0.34999999403953552 : f64" in raised  # 0.35 as the f32 it was


def test_raise_then_fuse_pipeline():
    """A raised attention goes through the rest of posenc like a written one:
    tiled by the CPU pipeline, and on the transform route to decomposition."""
    rng = np.random.default_rng(9)
    form = dict(batch=1, k="transpose", named=True, scale="div_splat", bias="none",
                softmax="linalg", elem="f32")
    ir, inputs, expected = attention_program(rng, form)
    for pipeline in ("posenc-raise,posenc-lower-to-cpu{attention-tile-q=1 attention-tile-k=3}",
                     "posenc-raise,convert-posenc-to-linalg{materialize-attention=true},"
                     "posenc-lower-to-cpu"):
        assert rel_err(run(ir, inputs, pipeline=pipeline)[0], expected) <= TOL["f32"]


# Look-alikes: each mutation of a raisable program computes something else.
NEGATIVES = {
    # The softmax normalizes over the queries.
    "softmax_over_queries": (dict(softmax="linalg"), "dimension(2)", "dimension(1)"),
    # P·V accumulates into ones, not zeros.
    "accumulator_not_zero": (dict(softmax="linalg", scale="none"), None, None),
    # A negative scale is not a softmax scale posenc.attention takes.
    "negative_scale": (dict(scale="mul"), "arith.constant 0.35", "arith.constant -0.35"),
    # The max is taken as a min.
    "min_for_max": (dict(softmax="fused_exp"), "arith.maximumf", "arith.minimumf"),
    # exp(s + max) instead of exp(s - max).
    "add_for_sub": (dict(softmax="fused_exp"), "arith.subf", "arith.addf"),
    # The sum's accumulator starts from one.
    "sum_from_one": (dict(softmax="decomposed"), None, None),
}


@pytest.mark.parametrize("name", NEGATIVES)
def test_negative_look_alikes(name):
    overrides, old, new = NEGATIVES[name]
    form = dict(batch=1, k="map", named=False, scale="none", bias="none",
                softmax="decomposed", elem="f32")
    form.update(overrides)
    ir, inputs, _ = attention_program(np.random.default_rng(3), form)
    if name == "accumulator_not_zero":
        # The last zero fill is P·V's accumulator.
        at = ir.rindex("arith.constant 0.0")
        ir = ir[:at] + "arith.constant 1.0" + ir[at + len("arith.constant 0.0"):]
    elif name == "sum_from_one":
        # The second-to-last fill is the sum's (the last is P·V's).
        at = ir[:ir.rindex("arith.constant 0.0")].rindex("arith.constant 0.0")
        ir = ir[:at] + "arith.constant 1.0" + ir[at + len("arith.constant 0.0"):]
    else:
        assert old in ir
        ir = ir.replace(old, new)
    raised = opt(ir, "--posenc-raise")
    assert "posenc.attention" not in raised
    # And the program still computes what it did.
    assert rel_err(run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                   run(ir, inputs)[0]) <= 1e-6


def test_raise_dynamic_shapes():
    """raise.mlir's @dynamic_batch_matmul_softmax (N, Sq, Sk dynamic) on
    inputs of several sizes, raised and not, against float64."""
    path = os.path.join(os.path.dirname(__file__), "..", "Dialect", "Posenc", "raise.mlir")
    with open(path) as f:
        ir = next(c for c in f.read().split("// -----") if "@dynamic_batch_matmul_softmax" in c)
    rng = np.random.default_rng(11)
    for n, sq, sk in ((1, 1, 1), (3, 5, 9), (2, 17, 4)):
        q = rng.uniform(-1, 1, (n, sq, 8)).astype(np.float32)
        k = rng.uniform(-1, 1, (n, sk, 8)).astype(np.float32)
        v = rng.uniform(-1, 1, (n, sk, 6)).astype(np.float32)
        s = np.einsum("nid,njd->nij", q.astype(np.float64), k.astype(np.float64))
        w = np.exp(s - s.max(axis=-1, keepdims=True))
        expected = (w / w.sum(axis=-1, keepdims=True)) @ v.astype(np.float64)
        for pipeline in ("posenc-lower-to-cpu", "posenc-raise,posenc-lower-to-cpu"):
            assert rel_err(run(ir, [q, k, v], pipeline=pipeline)[0], expected) <= TOL["f32"]


@pytest.mark.parametrize("bias", ["causal_lowest", "masked_fill_causal", "causal"])
def test_raise_mask_with_rows_that_see_no_key(bias):
    """Sq > Sk: the first Sq - Sk rows see no key. A mask of the lowest
    finite value makes them a uniform average, which `causal` (0 there)
    is not, so it stays a bias and the numbers agree (a hostile round found
    it raised as causal). A -inf mask makes them NaN: that one is causal,
    with posenc's 0 for those rows, as documented."""
    form = dict(batch=2, k="transpose", named=False, scale="mul", bias=bias,
                softmax="decomposed", elem="f32", gqa="none")
    ir, inputs, _ = attention_program(np.random.default_rng(4), form, sizes=(9, 5, 8, 6),
                                      expected=False)
    attn = next(line for line in opt(ir, "--posenc-raise").splitlines()
                if "posenc.attention" in line)
    before = run(ir, inputs)[0]
    after = run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0]
    if bias == "causal":
        assert " causal " in attn
        assert np.isnan(before[:, :, :4]).all() and (after[:, :, :4] == 0).all()
        assert rel_err(after[:, :, 4:], before[:, :, 4:]) <= TOL["f32"]
    else:
        assert " causal " not in attn and "bias(" in attn
        assert np.isfinite(before).all()
        assert rel_err(after, before) <= TOL["f32"]


ROPE_CASES = [dict(zip(ROPE_FORMS, values)) for values in itertools.product(*ROPE_FORMS.values())]


@pytest.mark.parametrize("form", ROPE_CASES, ids=[form_id(f) for f in ROPE_CASES])
def test_raise_rope(form):
    """Hugging Face's apply_rotary_pos_emb with LlamaRotaryEmbedding's
    cos/sin (inv_freq @ position_ids or a product, cat(freqs, freqs),
    cos/sin, attention_scaling) becomes posenc.rope with the base, linear
    factor and attention factor recovered from the constants."""
    ir, inputs, expected = rope_program(np.random.default_rng(7), form)
    raised = opt(ir, "--posenc-raise")
    rope = next(line for line in raised.splitlines() if "posenc.rope" in line)
    assert "layout half" in rope
    assert ("linear, factor = 2.0" in rope) == (form["scaling"] == "linear")
    assert ("attention_factor = 1.25" in rope) == (form["factor"] != 1.0)
    for gone in ("math.cos", "math.sin", "tensor.concat", "linalg.batch_matmul",
                 "tensor.extract "):
        assert gone not in raised, gone
    # The importer computes the angles in f32 (positions < 40 here: 3e-6 off).
    before = run(ir, inputs)[0]
    after = run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0]
    assert rel_err(before, expected) <= 2e-5
    assert rel_err(after, expected) <= 2e-6


ROPE_NEGATIVES = {
    # rotate_half with the halves swapped: concat(x1, -x2).
    "halves_swapped": (None, None),
    # cos and sin exchanged: x·sin + rot(x)·cos.
    "cos_sin_swapped": (None, None),
    # A NaN frequency (a hostile round found a middle one raised).
    "nan_frequency": ("0.009999999776482582", "0x7FC00000"),
    # An infinite attention_scaling: no posenc.rope takes it (it was raised
    # into an op that failed to verify).
    "infinite_attention_scaling": ("arith.constant 1.25 : f32", "arith.constant 0x7F800000 : f32"),
}


@pytest.mark.parametrize("name", ROPE_NEGATIVES)
def test_raise_rope_look_alikes(name):
    form = dict(angles="matmul", apply="fused", scaling="none", batched_pos=True,
                factor=1.25 if name == "infinite_attention_scaling" else 1.0)
    ir, inputs, _ = rope_program(np.random.default_rng(7), form)
    old, new = ROPE_NEGATIVES[name]
    if name == "halves_swapped":
        line = next(ln for ln in ir.splitlines() if "tensor.concat dim(3)" in ln)
        a, b = line.split("dim(3) ")[1].split(" :")[0].split(", ")
        ir = ir.replace(f"dim(3) {a}, {b}", f"dim(3) {b}, {a}")
    elif name == "cos_sin_swapped":
        ir = ir.replace("math.cos", "math.TMP").replace("math.sin", "math.cos").replace(
            "math.TMP", "math.sin")
    else:
        assert old in ir
        ir = ir.replace(old, new)
    raised = opt(ir, "--posenc-raise")
    assert "posenc.rope" not in raised
    before = run(ir, inputs)[0]
    after = run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0]
    np.testing.assert_array_equal(np.isnan(after), np.isnan(before))
    finite = np.isfinite(before)
    assert rel_err(after[finite], before[finite]) <= 1e-6


def interleaved_forms():
    """Each style with every value of every other key, then random mixes."""
    rng = np.random.default_rng(905)
    cases = []
    for style in INTERLEAVED_ROPE_FORMS["style"]:
        for key, values in INTERLEAVED_ROPE_FORMS.items():
            if key == "style" or (key == "repeat" and style == "pairs"):
                continue
            for value in values:
                form = random_interleaved_rope_form(rng)
                form.update(style=style, **{key: value})
                cases.append(form)
    return cases + [random_interleaved_rope_form(rng) for _ in range(8)]


@pytest.mark.parametrize("form", interleaved_forms(), ids=[form_id(f) for f in interleaved_forms()])
def test_raise_interleaved_rope(form):
    """Interleaved RoPE on [B, S, H, D]: GPT-J's rotate_every_two with
    repeat_interleave'd tables and Meta's pairs (x_r·cos - x_i·sin,
    x_r·sin + x_i·cos) stacked and flattened, the pairs taken by strided
    slices or a reshape to [..., D/2, 2], the tables computed or constant,
    become posenc.rope layout interleaved with no layout transposes."""
    ir, inputs, expected = interleaved_rope_program(np.random.default_rng(11), form)
    raised = opt(ir, "--posenc-raise")
    rope = next(line for line in raised.splitlines() if "posenc.rope" in line)
    assert "layout interleaved" in rope, rope
    assert ("linear, factor = 2.0" in rope) == (form["scaling"] == "linear")
    assert ("attention_factor = 1.25" in rope) == (form["factor"] != 1.0)
    for gone in ("math.cos", "math.sin", "tensor.concat", "extract_slice", "linalg.transpose",
                 "arith.negf", "xf32> into", "tensor.extract "):
        assert gone not in raised, (gone, raised)
    before = run(ir, inputs)[0]
    after = run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0]
    assert rel_err(before, expected) <= 2e-5
    assert rel_err(after, expected) <= 2e-6


@pytest.mark.parametrize("name", INTERLEAVED_LOOK_ALIKES)
def test_raise_interleaved_rope_look_alikes(name):
    """Programs one change away from interleaved RoPE are left alone and
    compute what they did."""
    form = dict(style=INTERLEAVED_LOOK_ALIKES[name], slices="strided", repeat="angles",
                angles="elementwise", apply="fused", scaling="none", factor=1.0,
                batched_pos=True, tables="computed")
    ir, inputs, _ = interleaved_rope_program(np.random.default_rng(4), form, look_alike=name)
    assert "posenc.rope" not in opt(ir, "--posenc-raise")
    before = run(ir, inputs)[0]
    after = run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0]
    assert rel_err(after, before) <= 1e-6


@pytest.mark.parametrize("style", ["gptj", "pairs"])
def test_raise_interleaved_rope_look_alike_tables(style):
    """Tables that are not rope tables: cos and sin exchanged, a constant
    table entry 1e-3 off."""
    form = dict(style=style, slices="reshape", repeat="tables", angles="matmul", apply="separate",
                scaling="none", factor=1.0, batched_pos=False, tables="computed")
    ir, inputs, _ = interleaved_rope_program(np.random.default_rng(6), form)
    swapped = ir.replace("math.cos", "math.TMP").replace("math.sin", "math.cos").replace(
        "math.TMP", "math.sin")
    cform = dict(form, tables="constant")
    cir, cinputs, _ = interleaved_rope_program(np.random.default_rng(6), cform)
    line = next(ln for ln in cir.splitlines() if "arith.constant dense<[[[" in ln)
    first = line.split("[[[")[1].split(",")[0]
    bad = cir.replace(line, line.replace("[[[" + first, "[[[" + repr(float(first) + 1e-3), 1))
    for look_alike, args in ((swapped, inputs), (bad, cinputs)):
        assert "posenc.rope" not in opt(look_alike, "--posenc-raise")
        assert rel_err(run(look_alike, args, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                       run(look_alike, args)[0]) <= 1e-6


@pytest.mark.parametrize("style,d,rotary", [("gptj", 16, 8), ("pairs", 12, 6)])
def test_raise_partial_interleaved_rope(style, d, rotary):
    """GPT-J's rotary_dim: interleaved rope on x[..., :R] concatenated with
    x[..., R:] is one posenc.rope with rotary_dim = R."""
    form = dict(style=style, slices="strided", repeat="tables", angles="elementwise",
                apply="fused", scaling="none", factor=1.0, batched_pos=True, tables="computed")
    ir, inputs, expected = interleaved_rope_program(np.random.default_rng(8), form, d=d,
                                                    rotary=rotary)
    raised = opt(ir, "--posenc-raise")
    rope = next(line for line in raised.splitlines() if "posenc.rope" in line)
    assert f"rotary_dim = {rotary} : i64" in rope and "layout interleaved" in rope
    assert "tensor.concat" not in raised and "extract_slice" not in raised
    assert rel_err(run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                   expected) <= 2e-6


@pytest.mark.parametrize("style,base,s,d", [("gptj", 10000.0, 300, 64),
                                            ("pairs", 500000.0, 300, 128)])
def test_raise_interleaved_rope_constant_tables(style, base, s, d):
    """Long constant tables (positions 0..S-1 in f32) give back the base."""
    form = dict(style=style, slices="strided", repeat="angles", angles="matmul", apply="fused",
                scaling="none", factor=1.0, batched_pos=False, tables="constant")
    ir, inputs, expected = interleaved_rope_program(np.random.default_rng(2), form, b=1, s=s,
                                                    h=2, d=d, base=base)
    rope = next(line for line in opt(ir, "--posenc-raise").splitlines()
                if "posenc.rope" in line)
    assert (f"base = {base:e}" in rope) == (base != 10000.0), rope
    assert rel_err(run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                   expected) <= 2e-6


def mla_forms():
    """Every value of every MLA form key, then random mixes."""
    rng = np.random.default_rng(3107)
    cases = []
    for key, values in MLA_FORMS.items():
        for value in values:
            form = random_mla_form(rng)
            form[key] = value
            cases.append(form)
    return cases + [random_mla_form(rng) for _ in range(4)]


INLINE_RAISE = ("--inline", "--symbol-dce", "--posenc-raise")


@pytest.mark.parametrize("form", mla_forms(), ids=[form_id(f) for f in mla_forms()])
def test_raise_mla(form):
    """DeepSeek-V2's naive MLA (kv_b_proj of the latent split into k_nope
    and v, [q_nope | q_pe], [k_nope | k_pe expanded over the heads], the
    attention in an importer form) becomes one posenc.mla_absorb: w_uk
    and w_uv are W's halves per head, the per-head keys are never built
    (no batch_matmul left). Same numbers raised as not, against float64,
    through the naive and the absorbed lowering."""
    ir, inputs, expected = mla_program(np.random.default_rng(17), form)
    raised = opt(ir, *INLINE_RAISE)
    assert raised.count("posenc.mla_absorb") == 1, raised
    for gone in ("posenc.attention", "linalg.batch_matmul", "tensor.concat", "insert_slice"):
        assert gone not in raised, (gone, raised)
    mla = next(line for line in raised.splitlines() if "posenc.mla_absorb" in line)
    assert (" causal " in mla) == form["causal"], mla
    assert "tensor<3x8x10xf32>, tensor<3x6x10xf32>" in mla, mla
    assert rel_err(run(ir, inputs)[0], expected) <= TOL["f32"]
    for mode in ("naive", "absorbed"):
        out = run(raised, inputs, pipeline=f"posenc-lower-to-cpu{{mla={mode}}}")[0]
        assert rel_err(out, expected) <= TOL["f32"], mode


@pytest.mark.parametrize("name", MLA_LOOK_ALIKES)
def test_raise_mla_look_alikes(name):
    """One change away from MLA: the attention is raised, not the MLA."""
    form = dict(join="concat", weight="broadcast", causal=True, softmax="linalg", scale="mul",
                k="transpose")
    ir, inputs, _ = mla_program(np.random.default_rng(5), form, look_alike=name)
    raised = opt(ir, *INLINE_RAISE)
    assert "posenc.mla_absorb" not in raised and raised.count("posenc.attention") == 1
    assert rel_err(run(raised, inputs)[0], run(ir, inputs)[0]) <= TOL["f32"]


ANGLE_READS = {
    # ω read at one element, or reversed; the positions read at batch 0,
    # or reversed (a hostile round found all of them raised as pos ⊗ ω).
    "omega_at_0": ("elementwise", "(d0, d1, d2) -> (d2)>", "(d0, d1, d2) -> (0)>"),
    "omega_reversed": ("elementwise", "(d0, d1, d2) -> (d2)>", "(d0, d1, d2) -> (-d2 + 3)>"),
    "positions_at_batch_0": ("elementwise", "(d0, d1, d2) -> (d0, d1)>",
                             "(d0, d1, d2) -> (0, d1)>"),
    "positions_reversed": ("elementwise", "(d0, d1, d2) -> (d0, d1)>",
                           "(d0, d1, d2) -> (d0, -d1 + 5)>"),
    "omega_broadcast_reversed": ("matmul", "(d0, d1, d2) -> (0, d1, d2)>",
                                 "(d0, d1, d2) -> (0, -d1 + 3, d2)>"),
    "positions_float_reversed": ("elementwise",
                                 "(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>]",
                                 "(d0, d1) -> (d0, -d1 + 5)>, affine_map<(d0, d1) -> (d0, d1)>]"),
}


@pytest.mark.parametrize("style", ["half", "gptj", "pairs"])
@pytest.mark.parametrize("name", ANGLE_READS)
def test_raise_rope_angle_reads(name, style):
    """The angles pos ⊗ ω read their factors along the right dims: ω along
    the frequencies, the positions along batch and sequence, through every
    broadcast and conversion. Other reads are left alone and compute what
    they did."""
    angles, old, new = ANGLE_READS[name]
    form = dict(angles=angles, apply="fused", scaling="none", factor=1.0, batched_pos=True,
                tables="computed", style=style, slices="strided", repeat="tables")
    gen = rope_program if style == "half" else interleaved_rope_program
    ir, inputs, _ = gen(np.random.default_rng(12), form, b=2, s=6, d=8)
    assert ir.count(old) == 1 and "posenc.rope" in opt(ir, "--posenc-raise")
    bad = ir.replace(old, new)
    assert "posenc.rope" not in opt(bad, "--posenc-raise")
    assert rel_err(run(bad, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                   run(bad, inputs)[0]) <= 1e-6


@pytest.mark.parametrize("style", ["half", "gptj", "pairs"])
def test_raise_rope_gathered_cache_look_alike(style):
    """A cached table whose row p holds position p + 1 (or any other rows)
    is not cos/sin of the gathered positions: left alone."""
    form = dict(angles="elementwise", apply="fused", scaling="none", factor=1.0,
                batched_pos=True, tables="gathered", style=style, slices="strided",
                repeat="tables")
    gen = rope_program if style == "half" else interleaved_rope_program
    ir, inputs, _ = gen(np.random.default_rng(10), form)
    assert "posenc.rope" in opt(ir, "--posenc-raise")
    # Drop the first cached row and repeat the last: row p is position p + 1.
    for line in [ln for ln in ir.splitlines() if "arith.constant dense<[[" in ln]:
        body = line.split("dense<[")[1].rsplit("]>", 1)[0]
        rows = body[1:-1].split("], [")
        shifted = "[" + "], [".join(rows[1:] + rows[-1:]) + "]"
        ir = ir.replace(line, line.replace(body, shifted))
    assert "posenc.rope" not in opt(ir, "--posenc-raise")
    assert rel_err(run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                   run(ir, inputs)[0]) <= 1e-6


OTHER_FREQUENCIES = {
    "llama3": dict(kind="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original=8192),
    "yarn": dict(kind="yarn", factor=4.0, original=4096),
    "one_entry_off": None,
}


@pytest.mark.parametrize("tables", ["computed", "constant"])
@pytest.mark.parametrize("style", ["half", "gptj", "pairs"])
@pytest.mark.parametrize("name", OTHER_FREQUENCIES)
def test_raise_rope_other_frequencies(name, style, tables):
    """inv_freq that no base and linear factor give (Llama 3's and YaRN's
    scalings, a vector with one entry 1% off) is kept as it is: per-
    frequency rescale factors (LongRoPE's form, short = long). The raised
    rope uses the model's f32 ω exactly; against float64 of that ω."""
    from posenc import reference

    d, base = 16, 500000.0
    if OTHER_FREQUENCIES[name] is None:
        inv = reference.rope_frequencies(base, d)
        inv[3] *= 1.01
    else:
        inv = reference.rope_frequencies(base, d, OTHER_FREQUENCIES[name])
    common = dict(angles="elementwise", apply="fused", scaling="none", factor=1.0,
                  batched_pos=False, tables=tables)
    if style == "half":
        ir, inputs, expected = rope_program(np.random.default_rng(9), common, b=2, h=2, s=12,
                                            d=d, base=base, inv_freq=inv)
    else:
        form = dict(common, style=style, slices="strided", repeat="tables")
        ir, inputs, expected = interleaved_rope_program(np.random.default_rng(9), form, b=2, s=12,
                                                        h=2, d=d, base=base, inv_freq=inv)
    rope = next(line for line in opt(ir, "--posenc-raise").splitlines()
                if "posenc.rope " in line)
    assert "rope_scaling<longrope" in rope and f"base = {base:e}" in rope, rope
    assert rel_err(run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                   expected) <= 2e-6


TOSA_TO_LINALG = "func.func(tosa-to-linalg-named,tosa-to-linalg,tosa-to-arith,tosa-to-tensor)"


def tosa_attention(n, sq, sk, d, dv, bias):
    """Attention as TOSA writes it (TFLite / ONNX converters): transpose,
    matmul, mul by a constant, an added bias, reduce_max, sub, exp,
    reduce_sum, reciprocal, mul, matmul."""
    t = lambda *s: "tensor<" + "x".join(map(str, s)) + "xf32>"  # noqa: E731
    args = f"%q: {t(n, sq, d)}, %k: {t(n, sk, d)}, %v: {t(n, sk, dv)}"
    args += f", %b: {t(1, sq, sk)}" if bias else ""
    body = [
        '%zp = "tosa.const"() <{values = dense<0.0> : tensor<1xf32>}> : () -> tensor<1xf32>',
        '%sh = "tosa.const"() <{values = dense<0> : tensor<1xi8>}> : () -> tensor<1xi8>',
        f'%c = "tosa.const"() <{{values = dense<0.25> : {t(1, 1, 1)}}}> : () -> {t(1, 1, 1)}',
        f"%kt = tosa.transpose %k {{perms = array<i32: 0, 2, 1>}} : ({t(n, sk, d)}) -> {t(n, d, sk)}",
        f"%s = tosa.matmul %q, %kt, %zp, %zp : ({t(n, sq, d)}, {t(n, d, sk)}, tensor<1xf32>, "
        f"tensor<1xf32>) -> {t(n, sq, sk)}",
        f"%s1 = tosa.mul %s, %c, %sh : ({t(n, sq, sk)}, {t(1, 1, 1)}, tensor<1xi8>) -> {t(n, sq, sk)}",
    ]
    s = "%s1"
    if bias:
        body.append(f"%s2 = tosa.add %s1, %b : ({t(n, sq, sk)}, {t(1, sq, sk)}) -> {t(n, sq, sk)}")
        s = "%s2"
    body += [
        f"%m = tosa.reduce_max {s} {{axis = 2 : i32}} : ({t(n, sq, sk)}) -> {t(n, sq, 1)}",
        f"%x = tosa.sub {s}, %m : ({t(n, sq, sk)}, {t(n, sq, 1)}) -> {t(n, sq, sk)}",
        f"%e = tosa.exp %x : ({t(n, sq, sk)}) -> {t(n, sq, sk)}",
        f"%z = tosa.reduce_sum %e {{axis = 2 : i32}} : ({t(n, sq, sk)}) -> {t(n, sq, 1)}",
        f"%r = tosa.reciprocal %z : ({t(n, sq, 1)}) -> {t(n, sq, 1)}",
        f"%p = tosa.mul %e, %r, %sh : ({t(n, sq, sk)}, {t(n, sq, 1)}, tensor<1xi8>) -> {t(n, sq, sk)}",
        f"%o = tosa.matmul %p, %v, %zp, %zp : ({t(n, sq, sk)}, {t(n, sk, dv)}, tensor<1xf32>, "
        f"tensor<1xf32>) -> {t(n, sq, dv)}",
    ]
    return (f"func.func @tosa_attention({args}) -> {t(n, sq, dv)} {{\n  " + "\n  ".join(body)
            + f"\n  return %o : {t(n, sq, dv)}\n}}\n")


@pytest.mark.parametrize("bias", [False, True])
def test_raise_tosa(bias):
    """TOSA attention through upstream's tosa-to-linalg, then posenc-raise:
    the keep-dim reductions (reshaped) and the reciprocal-multiply softmax
    are matched; same numbers as unraised, against float64."""
    ir = tosa_attention(3, 5, 7, 8, 6, bias)
    raised = opt(ir, f"--pass-pipeline=builtin.module({TOSA_TO_LINALG},posenc-raise)")
    attn = next(line for line in raised.splitlines() if "posenc.attention" in line)
    assert ("bias(" in attn) == bias and "scale = 2.500000e-01" in attn
    rng = np.random.default_rng(12)
    q, k, v = (rng.uniform(-1, 1, s).astype(np.float32) for s in ((3, 5, 8), (3, 7, 8), (3, 7, 6)))
    inputs = [q, k, v]
    s = 0.25 * np.einsum("nid,njd->nij", q.astype(np.float64), k.astype(np.float64))
    if bias:
        b = rng.uniform(-2, 2, (1, 5, 7)).astype(np.float32)
        inputs.append(b)
        s = s + b
    w = np.exp(s - s.max(axis=-1, keepdims=True))
    expected = (w / w.sum(axis=-1, keepdims=True)) @ v.astype(np.float64)
    for pipeline in (f"{TOSA_TO_LINALG},posenc-lower-to-cpu",
                     f"{TOSA_TO_LINALG},posenc-raise,posenc-lower-to-cpu"):
        assert rel_err(run(ir, inputs, pipeline=pipeline)[0], expected) <= TOL["f32"]


@pytest.mark.parametrize("d,rotary", [(16, 8), (12, 4), (8, 8)])
def test_raise_partial_rope(d, rotary):
    """Partial rotary (GPT-NeoX's rotary_pct, Phi): rope on x[..., :R]
    concatenated with x[..., R:] is one posenc.rope with rotary_dim = R."""
    form = dict(angles="elementwise", apply="separate", scaling="none", factor=1.0,
                batched_pos=False)
    ir, inputs, expected = rope_program(np.random.default_rng(3), form, b=3, d=d, rotary=rotary)
    raised = opt(ir, "--posenc-raise")
    rope = next(line for line in raised.splitlines() if "posenc.rope" in line)
    assert (f"rotary_dim = {rotary} : i64" in rope) == (rotary < d)
    assert "tensor.concat" not in raised and "extract_slice" not in raised
    assert rel_err(run(ir, inputs)[0], expected) <= 2e-5
    assert rel_err(run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                   expected) <= 2e-6


@pytest.mark.parametrize("base,s,d", [(10000.0, 512, 64), (500000.0, 300, 128), (10000.0, 2, 4)])
def test_raise_rope_constant_tables(base, s, d):
    """Tables folded to constants by a static export (positions 0..S-1,
    computed in f32 as the model does) give back the base: one posenc.rope
    on constant positions. A table with one entry off by 1e-3 stays."""
    form = dict(angles="matmul", apply="fused", scaling="none", factor=1.0, batched_pos=False,
                tables="constant")
    ir, inputs, expected = rope_program(np.random.default_rng(2), form, b=1, h=2, s=s, d=d,
                                        base=base)
    rope = next(line for line in opt(ir, "--posenc-raise").splitlines()
                if "posenc.rope" in line)
    assert (f"base = {base:e}" in rope) == (base != 10000.0), rope
    assert rel_err(run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                   expected) <= 2e-6
    # The importer's own f32 angles drift with the position.
    assert rel_err(run(ir, inputs)[0], expected) <= 2e-6 + s * 2e-7
    line = next(ln for ln in ir.splitlines() if "arith.constant dense<[[[" in ln)
    first = line.split("[[[[")[1].split(",")[0]
    bad = ir.replace(line, line.replace("[[[[" + first, "[[[[" + repr(float(first) + 1e-3), 1))
    assert "posenc.rope" not in opt(bad, "--posenc-raise")


def test_raise_rope_then_attention_one_layout_change():
    """RoPE on q and k feeding attention, all in torch's [B, H, S, D]: after
    inlining and posenc-raise, q, k and v are transposed to posenc's
    [B, S, H, D] once each and the result back once; the raised rope's
    and attention's own layout changes fold into each other."""
    rng = np.random.default_rng(21)
    rform = dict(angles="matmul", apply="fused", scaling="none", factor=1.0, batched_pos=True)
    rope, (xq, pos), _ = rope_program(rng, rform, name="rope", b=2, h=4, s=5, d=8)
    aform = dict(batch=2, k="transpose", named=False, scale="mul", bias="causal",
                 softmax="decomposed", elem="f32", gqa="none")
    attn, (_, _, v), _ = attention_program(rng, aform, sizes=(5, 5, 8, 8), batch=(2, 4),
                                           name="attn", expected=False)
    xk = rng.uniform(-1, 1, xq.shape).astype(np.float32)
    t, tp = "tensor<2x4x5x8xf32>", "tensor<2x5xi64>"
    ir = (f"func.func @layer(%q: {t}, %k: {t}, %v: {t}, %pos: {tp}) -> {t} {{\n"
          f"  %qr = func.call @rope(%q, %pos) : ({t}, {tp}) -> {t}\n"
          f"  %kr = func.call @rope(%k, %pos) : ({t}, {tp}) -> {t}\n"
          f"  %o = func.call @attn(%qr, %kr, %v) : ({t}, {t}, {t}) -> {t}\n"
          f"  return %o : {t}\n}}\n"
          + rope.replace("func.func @rope(", "func.func private @rope(")
          + attn.replace("func.func @attn(", "func.func private @attn("))
    raised = opt(ir, "--inline", "--symbol-dce", "--posenc-raise")
    assert raised.count("posenc.rope") == 2 and raised.count("posenc.attention") == 1
    assert raised.count("linalg.transpose") == 4, raised
    inputs = [xq, xk, v, pos]
    assert rel_err(run(raised, inputs)[0], run(ir, inputs)[0]) <= 2e-5


def test_raise_rope_needs_distinct_extents():
    """With S = R/2 (or a batch equal to either) the dims ω and the
    positions are read along are not fixed by the shapes: not raised,
    and the program still computes what it did."""
    form = dict(angles="elementwise", apply="fused", scaling="none", factor=1.0,
                batched_pos=True, tables="computed")
    for b, s in ((2, 4), (4, 6), (6, 6)):
        ir, inputs, expected = rope_program(np.random.default_rng(5), form, b=b, s=s, d=8)
        assert "posenc.rope" not in opt(ir, "--posenc-raise"), (b, s)
        assert rel_err(run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0],
                       expected) <= 2e-5


def test_raise_leaves_empty_head_dims():
    """Dk = 0 (a hostile round): posenc.attention's lowerings do not take an
    empty head dim, so such a program is left to run as it is."""
    form = dict(batch=1, k="transpose", named=True, scale="none", bias="none",
                softmax="linalg", elem="f32", gqa="none")
    ir, inputs, expected = attention_program(np.random.default_rng(1), form, sizes=(5, 7, 0, 6))
    assert "posenc.attention" not in opt(ir, "--posenc-raise")
    out = run(ir, inputs, pipeline="posenc-raise,posenc-lower-to-cpu")[0]
    assert rel_err(out, expected) <= TOL["f32"]
