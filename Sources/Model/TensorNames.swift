// GGUF tensor names of the llama layout; the only place they are spelled out.
enum TensorNames {
    static let tokenEmbedding = "token_embd.weight"
    static let outputNorm = "output_norm.weight"
    static let output = "output.weight"

    static func attnNorm(_ l: Int) -> String { "blk.\(l).attn_norm.weight" }
    static func attnQ(_ l: Int) -> String { "blk.\(l).attn_q.weight" }
    static func attnK(_ l: Int) -> String { "blk.\(l).attn_k.weight" }
    static func attnV(_ l: Int) -> String { "blk.\(l).attn_v.weight" }
    static func attnOutput(_ l: Int) -> String { "blk.\(l).attn_output.weight" }
    static func ffnNorm(_ l: Int) -> String { "blk.\(l).ffn_norm.weight" }
    static func ffnGate(_ l: Int) -> String { "blk.\(l).ffn_gate.weight" }
    static func ffnUp(_ l: Int) -> String { "blk.\(l).ffn_up.weight" }
    static func ffnDown(_ l: Int) -> String { "blk.\(l).ffn_down.weight" }
}
