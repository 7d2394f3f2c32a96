/// How an adapter's A and Bᵀ are stored for the kernels. f16: each matrix rounded to
/// halves after a power-of-two range scaling, the default, within the reference tests'
/// tolerance; the kernels widen every load to f32. int8: each rank's row of A and of Bᵀ
/// rounded to int8 with its own scale (max |value| / 127), half the bytes again: the
/// decode side path of many distinct adapters streams every adapter's weights once a
/// step, so its time is mostly those bytes. Decode rows multiply int8 weights in
/// integers (CSIMD's lora_int8.h), prompt chunks in f32.
public enum LoRAWeightPrecision: String, Sendable, CaseIterable {
    case f16, int8

    @inlinable public var bytesPerElement: Int {
        switch self {
        case .f16: 2
        case .int8: 1
        }
    }
}
