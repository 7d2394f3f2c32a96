import CSIMD

/// e^x lane-wise (see graft_exp_f32x8 for the method and its error bound).
@inlinable @inline(__always)
public func exp(_ x: SIMD8<Float>) -> SIMD8<Float> { graft_exp_f32x8(x) }
