// A GGUF metadata value. The cases mirror the on-disk value types one to one, so a
// reader can tell a uint32 from an int64 if it cares; the accessors below are for
// callers that only care about the kind of value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    case array([GGUFValue])

    /// Any integer case as Int; nil for other cases and for uint64 values above Int.max.
    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// Floats (float64 rounded) and integers as Float.
    public var float: Float? {
        switch self {
        case .float32(let v): return v
        case .float64(let v): return Float(v)
        case .uint64(let v): return Float(v)
        default: return int.map(Float.init)
        }
    }

    public var bool: Bool? {
        if case .bool(let v) = self { return v }
        return nil
    }

    public var string: String? {
        if case .string(let v) = self { return v }
        return nil
    }

    public var array: [GGUFValue]? {
        if case .array(let v) = self { return v }
        return nil
    }

    /// The array's elements if every one is a string.
    public var stringArray: [String]? { elements(\.string) }
    /// The array's elements if every one is an integer that fits in Int.
    public var intArray: [Int]? { elements(\.int) }
    /// The array's elements if every one is a number.
    public var floatArray: [Float]? { elements(\.float) }

    private func elements<T>(_ convert: (GGUFValue) -> T?) -> [T]? {
        guard let array else { return nil }
        var out: [T] = []
        out.reserveCapacity(array.count)
        for element in array {
            guard let v = convert(element) else { return nil }
            out.append(v)
        }
        return out
    }

    /// The GGUF type name of this case, for error messages.
    public var typeName: String { GGUFValueType(self).name }
}

// On-disk value type numbers (gguf_type) and the smallest encoding of each,
// which bounds how many array elements the remaining bytes can hold.
enum GGUFValueType: UInt32 {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    init(_ value: GGUFValue) {
        switch value {
        case .uint8: self = .uint8
        case .int8: self = .int8
        case .uint16: self = .uint16
        case .int16: self = .int16
        case .uint32: self = .uint32
        case .int32: self = .int32
        case .float32: self = .float32
        case .bool: self = .bool
        case .string: self = .string
        case .array: self = .array
        case .uint64: self = .uint64
        case .int64: self = .int64
        case .float64: self = .float64
        }
    }

    /// Bytes of the smallest encoding: a string is at least its 8-byte length,
    /// an array at least its element type and count.
    var minimumByteCount: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .string: return 8
        case .array: return 12
        }
    }

    var name: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }
}
