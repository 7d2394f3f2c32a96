import CSIMD

/// How the KV cache stores keys and values. f32 keeps attention exact; f16 (as
/// llama.cpp's default cache) halves the cache's memory and the bytes attention
/// reads each step, rounding every key and value once, when it is written.
public enum KVPrecision: String, Sendable, CaseIterable {
    case f32, f16

    @inlinable public var bytesPerElement: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        }
    }
}

/// One storage type of the KV cache: eight float lanes into elements. The cache writes
/// are generic over it and specialised for each (attention reads both types in C,
/// CSIMD's attention.c).
public protocol KVElement {
    static var precision: KVPrecision { get }
    /// `lanes` at p, eight contiguous elements.
    static func store8(_ lanes: SIMD8<Float>, _ p: UnsafeMutableRawPointer)
    /// `lanes` at p, p + stride, …, p + 7·stride (bytes), for a key tile's column.
    static func scatter8(_ lanes: SIMD8<Float>, _ p: UnsafeMutableRawPointer, stride: Int)
}

extension KVElement {
    /// A constant once specialised: the kernels' byte offsets fold.
    @inlinable @inline(__always) public static var bytes: Int { precision.bytesPerElement }
}

public enum KVFloat32: KVElement {
    @inlinable public static var precision: KVPrecision { .f32 }

    @inlinable @inline(__always)
    public static func store8(_ lanes: SIMD8<Float>, _ p: UnsafeMutableRawPointer) {
        p.storeBytes(of: lanes, as: SIMD8<Float>.self)
    }

    @inlinable @inline(__always)
    public static func scatter8(_ lanes: SIMD8<Float>, _ p: UnsafeMutableRawPointer, stride: Int) {
        for i in 0..<8 { p.storeBytes(of: lanes[i], toByteOffset: i * stride, as: Float.self) }
    }
}

public enum KVFloat16: KVElement {
    @inlinable public static var precision: KVPrecision { .f16 }

    @inlinable @inline(__always)
    public static func store8(_ lanes: SIMD8<Float>, _ p: UnsafeMutableRawPointer) {
        p.storeBytes(of: graft_f16x8_bits(lanes), as: SIMD8<UInt16>.self)
    }

    @inlinable @inline(__always)
    public static func scatter8(_ lanes: SIMD8<Float>, _ p: UnsafeMutableRawPointer, stride: Int) {
        let bits = graft_f16x8_bits(lanes)
        for i in 0..<8 { p.storeBytes(of: bits[i], toByteOffset: i * stride, as: UInt16.self) }
    }
}
