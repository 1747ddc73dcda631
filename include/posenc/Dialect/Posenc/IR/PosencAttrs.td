//===- PosencAttrs.td - posenc enums and attributes --------*- tablegen -*-===//

#ifndef POSENC_DIALECT_POSENC_IR_POSENCATTRS_TD
#define POSENC_DIALECT_POSENC_IR_POSENCATTRS_TD

include "posenc/Dialect/Posenc/IR/PosencBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Posenc_RopeLayout : I32EnumAttr<"RopeLayout",
    "pairing of the rotated dimensions", [
      I32EnumAttrCase<"half", 0>,
      I32EnumAttrCase<"interleaved", 1>
    ]> {
  let description = [{
    `half`: NeoX / Hugging Face `rotate_half`, dimension i pairs with
    i + R/2. `interleaved`: GPT-J / Meta / DeepSeek, dimension 2i pairs with
    2i + 1.
  }];
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::posenc";
}
def Posenc_RopeLayoutAttr : EnumAttr<Posenc_Dialect, Posenc_RopeLayout,
                                     "layout">;

def Posenc_SinusoidalConvention : I32EnumAttr<"SinusoidalConvention",
    "which implementation's sinusoidal table", [
      I32EnumAttrCase<"vaswani", 0>,
      I32EnumAttrCase<"fairseq", 1>,
      I32EnumAttrCase<"marian", 2>
    ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::posenc";
}
def Posenc_SinusoidalConventionAttr : EnumAttr<Posenc_Dialect,
    Posenc_SinusoidalConvention, "sinusoidal_convention">;

def Posenc_AlibiMode : I32EnumAttr<"AlibiMode", "sign convention of ALiBi", [
      I32EnumAttrCase<"causal", 0>,
      I32EnumAttrCase<"symmetric", 1>
    ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::posenc";
}
def Posenc_AlibiModeAttr : EnumAttr<Posenc_Dialect, Posenc_AlibiMode,
                                    "alibi_mode">;

def Posenc_RelBiasKind : I32EnumAttr<"RelBiasKind",
    "bucketing of relative distances", [
      I32EnumAttrCase<"t5", 0>,
      I32EnumAttrCase<"clip", 1>
    ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::posenc";
}
def Posenc_RelBiasKindAttr : EnumAttr<Posenc_Dialect, Posenc_RelBiasKind,
                                      "rel_bias_kind">;

def Posenc_RopeScalingKind : I32EnumAttr<"RopeScalingKind",
    "frequency scaling of rotary embeddings", [
      I32EnumAttrCase<"none", 0>,
      I32EnumAttrCase<"linear", 1>,
      I32EnumAttrCase<"ntk", 2>,
      I32EnumAttrCase<"dynamic", 3>,
      I32EnumAttrCase<"yarn", 4>,
      I32EnumAttrCase<"llama3", 5>,
      I32EnumAttrCase<"longrope", 6>
    ]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::posenc";
}

//===----------------------------------------------------------------------===//
// RopeScalingAttr
//===----------------------------------------------------------------------===//

def Posenc_RopeScalingAttr : AttrDef<Posenc_Dialect, "RopeScaling"> {
  let mnemonic = "rope_scaling";
  let summary = "Frequency scaling of a rotary embedding";
  let description = [{
    Selects how the rotary frequencies ω_i = base^(-2i/R) are rescaled for
    context extension, with the parameters of that scheme. Parameters that a
    kind does not use are absent; optional ones take the published defaults
    and are printed only when they differ from them.

    | kind       | required                                    | optional (default)                                                   |
    |------------|---------------------------------------------|----------------------------------------------------------------------|
    | `none`     |                                             |                                                                      |
    | `linear`   | `factor`                                    |                                                                      |
    | `ntk`      | `alpha`                                     |                                                                      |
    | `dynamic`  | `factor`, `original`                        |                                                                      |
    | `yarn`     | `factor`, `original`                        | `beta_fast` (32), `beta_slow` (1), `mscale` (1), `mscale_all_dim` (0), `truncate` (true) |
    | `llama3`   | `factor`, `low_freq_factor`, `high_freq_factor`, `original` |                                                      |
    | `longrope` | `short_factor`, `long_factor`, `original`, `max_positions` |                                                       |

    The math of each kind is in the description of `posenc.rope`.

    YaRN's attention factor multiplies cos and sin: mscale(f, m) /
    mscale(f, m_all) with mscale(f, m) = 0.1·m·ln f + 1, or mscale(f, 1)
    when either is 0 (Hugging Face's `_compute_yarn_parameters`). With the
    defaults (m = 1, m_all = 0) that is 0.1·ln f + 1: 1.3689 at f = 40.
    DeepSeek-V2/V3 configs give `mscale = mscale_all_dim = 1` (factor 1)
    and put mscale(f, m_all)² into the softmax scale instead: copy both
    from the config (`posenc.models` does), or give the rope op
    `attention_factor = 1.0`. Written as `#posenc.rope_scaling<yarn,
    factor = 40.0, original = 4096>`, DeepSeek's RoPE is silently 1.3689
    times too large.

    Example:

    ```mlir
    #posenc.rope_scaling<none>
    #posenc.rope_scaling<linear, factor = 4.0>
    #posenc.rope_scaling<yarn, factor = 40.0, original = 4096, mscale = 1.0, mscale_all_dim = 1.0>
    #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original = 8192>
    #posenc.rope_scaling<longrope, short_factor = [1.0, 1.5], long_factor = [2.0, 4.0], original = 4096, max_positions = 131072>
    ```
  }];
  // Floating-point parameters are FloatAttr (null when unused by the kind)
  // so that the storage is hashable and absence is explicit.
  let parameters = (ins
    EnumParameter<Posenc_RopeScalingKind>:$kind,
    "::mlir::FloatAttr":$factor,
    "::mlir::FloatAttr":$alpha,
    "int64_t":$original,
    "::mlir::FloatAttr":$betaFast,
    "::mlir::FloatAttr":$betaSlow,
    "::mlir::FloatAttr":$mscale,
    "::mlir::FloatAttr":$mscaleAllDim,
    "bool":$truncate,
    "::mlir::FloatAttr":$lowFreqFactor,
    "::mlir::FloatAttr":$highFreqFactor,
    "::mlir::DenseF64ArrayAttr":$shortFactor,
    "::mlir::DenseF64ArrayAttr":$longFactor,
    "int64_t":$maxPositions
  );
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Returns the `none` scaling.
    static RopeScalingAttr getNone(::mlir::MLIRContext *ctx);
    /// True when the frequencies depend on the positions of the run
    /// (`dynamic`; `longrope` unless its two tables are equal).
    bool dependsOnPositions() const;
  }];
}

#endif // POSENC_DIALECT_POSENC_IR_POSENCATTRS_TD
