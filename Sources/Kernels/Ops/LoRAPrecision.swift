import CSIMD

/// How an adapter's A and Bᵀ are stored for the kernels (which widen every load to
/// f32). f16: each matrix rounded to halves after a power-of-two range scaling, the
/// default, within the reference tests' tolerance. int8: each rank's row of A and of Bᵀ
/// rounded to int8 with its own scale (max |value| / 127), half the bytes again: the
/// decode side path of many distinct adapters streams every adapter's weights once a
/// step, so its time is mostly those bytes.
public enum LoRAWeightPrecision: String, Sendable, CaseIterable {
    case f16, int8

    @inlinable public var bytesPerElement: Int {
        switch self {
        case .f16: 2
        case .int8: 1
        }
    }
}

/// One storage type of adapter weights: eight elements widened to float lanes. The side
/// path kernels are generic over it and specialised for each.
public protocol LoRAElement {
    static var precision: LoRAWeightPrecision { get }
    /// Eight elements at p, any alignment, as floats (exact).
    static func load8(_ p: UnsafeRawPointer) -> SIMD8<Float>
}

extension LoRAElement {
    /// A constant once specialised: the kernels' byte offsets fold.
    @inlinable @inline(__always) public static var bytes: Int { precision.bytesPerElement }
}

public enum LoRAHalf: LoRAElement {
    @inlinable public static var precision: LoRAWeightPrecision { .f16 }

    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer) -> SIMD8<Float> { graft_load_f16x8(p) }
}

public enum LoRAInt8: LoRAElement {
    @inlinable public static var precision: LoRAWeightPrecision { .int8 }

    @inlinable @inline(__always)
    public static func load8(_ p: UnsafeRawPointer) -> SIMD8<Float> { graft_load_i8x8(p) }
}
