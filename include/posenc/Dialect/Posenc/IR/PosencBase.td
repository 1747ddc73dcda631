//===- PosencBase.td - posenc dialect definition -----------*- tablegen -*-===//
//
// The posenc dialect: position encodings of transformer attention as ops.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_DIALECT_POSENC_IR_POSENCBASE_TD
#define POSENC_DIALECT_POSENC_IR_POSENCBASE_TD

include "mlir/IR/OpBase.td"

def Posenc_Dialect : Dialect {
  let name = "posenc";
  let cppNamespace = "::mlir::posenc";
  let summary = "Position encodings of transformer attention";
  let description = [{
    The posenc dialect models the position encodings of transformer
    attention as first-class, value-semantic ops on tensors: rotary
    embeddings with every published frequency scaling (`posenc.rope`),
    absolute sinusoidal tables (`posenc.sinusoidal`), additive biases
    (`posenc.alibi_bias`, `posenc.rel_bias`, `posenc.rel_key_bias`),
    scaled dot-product attention with a score-modification region
    (`posenc.attention`) and DeepSeek's multi-head latent attention
    (`posenc.mla_absorb`).

    Query/key/value tensors use the layout `[B, S, H, D]` (batch, sequence,
    heads, head dim). Element types are f32, f16 and bf16, with f32
    arithmetic; the encoding and bias ops (`rope`, `sinusoidal`,
    `alibi_bias`, `rel_bias`, `rel_key_bias`) also take f64 tensors and then
    compute in f64 throughout, for checks against float64 research code
    (attention and MLA do not take f64). Positions are explicit i32/i64
    tensors (`[S]` or `[B, S]`), never
    implied by an index, so KV caches, packing and offsets are expressed as
    positions.
  }];
  let useDefaultAttributePrinterParser = 1;
  let extraClassDeclaration = [{
  private:
    void registerAttributes();
  public:
  }];
}

// Every static operand and result shape has a byte size that fits in 63
// bits: lowerings and runtimes compute sizes in i64, and a wrapped size
// would allocate a small buffer for a huge tensor.
def Posenc_BoundedTensorSizes : NativeOpTrait<"BoundedTensorSizes"> {
  let cppNamespace = "::mlir::posenc";
}

class Posenc_Op<string mnemonic, list<Trait> traits = []>
    : Op<Posenc_Dialect, mnemonic, !listconcat(traits, [Posenc_BoundedTensorSizes])>;

#endif // POSENC_DIALECT_POSENC_IR_POSENCBASE_TD
