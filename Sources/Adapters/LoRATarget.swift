// The seven linear projections of a llama block that a LoRA adapter may touch, named as
// Hugging Face names the modules (and so as PEFT's target_modules lists them).
public enum LoRATarget: String, CaseIterable, Sendable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// Position in `allCases`, for flat per-layer tables (a switch: no array is built).
    var index: Int {
        switch self {
        case .q: return 0
        case .k: return 1
        case .v: return 2
        case .o: return 3
        case .gate: return 4
        case .up: return 5
        case .down: return 6
        }
    }

    /// The Hugging Face submodule holding the projection in a llama decoder layer.
    var moduleGroup: String {
        switch self {
        case .q, .k, .v, .o: return "self_attn"
        case .gate, .up, .down: return "mlp"
        }
    }

    /// llama.cpp's converter reorders the output rows of Q and K for its rotary layout,
    /// so B of these two (whose rows are the projection's outputs) must be reordered too.
    var hasRotaryRowOrder: Bool { self == .q || self == .k }
}
