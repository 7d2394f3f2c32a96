import Kernels
import ModelFormats

/// Views of one transformer block's weights. Projections stay in the mmap'd file in
/// their stored type; norm vectors are f32.
public struct LayerWeights: @unchecked Sendable {
    public let attnNorm: UnsafePointer<Float>
    public let q: WeightMatrix
    public let k: WeightMatrix
    public let v: WeightMatrix
    public let o: WeightMatrix
    public let ffnNorm: UnsafePointer<Float>
    public let gate: WeightMatrix
    public let up: WeightMatrix
    public let down: WeightMatrix
}

/// All weights of a llama model, as views into the GGUF mapping (which this object
/// keeps alive) plus f32 copies of any norm vector not stored as f32.
public final class LlamaWeights: @unchecked Sendable {
    public let tokenEmbedding: WeightMatrix
    public let output: WeightMatrix
    public let outputNorm: UnsafePointer<Float>
    public let layers: [LayerWeights]
    private let file: GGUFFile
    private let ownedVectors: OwnedVectors

    public init(gguf: GGUFFile, config c: LlamaConfig) throws {
        file = gguf
        func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
            guard let info = gguf.tensor(named: name) else { throw ModelError.missingTensor(name) }
            guard info.dims == [cols, rows] else {
                throw ModelError.tensorShape(name: name, expected: [cols, rows], found: info.dims)
            }
            guard cols % 32 == 0 else { throw ModelError.unsupported("tensor '\(name)' row length \(cols) is not a multiple of 32") }
            return WeightMatrix(type: info.type, data: gguf.data(for: info), rows: rows, cols: cols)
        }
        let owned = OwnedVectors()
        ownedVectors = owned
        func vector(_ name: String, count: Int) throws -> UnsafePointer<Float> {
            guard let info = gguf.tensor(named: name) else { throw ModelError.missingTensor(name) }
            guard info.dims == [count] else {
                throw ModelError.tensorShape(name: name, expected: [count], found: info.dims)
            }
            if info.type == .f32 { return gguf.data(for: info).assumingMemoryBound(to: Float.self) }
            let copy = owned.allocate(count)
            dequantizeRow(type: info.type, out: copy, src: gguf.data(for: info), count: count)
            return UnsafePointer(copy)
        }

        tokenEmbedding = try matrix(TensorNames.tokenEmbedding, rows: c.vocabSize, cols: c.dim)
        // Models with tied embeddings have no output.weight and reuse the embedding.
        output = gguf.tensor(named: TensorNames.output) == nil
            ? tokenEmbedding
            : try matrix(TensorNames.output, rows: c.vocabSize, cols: c.dim)
        outputNorm = try vector(TensorNames.outputNorm, count: c.dim)
        layers = try (0..<c.nLayers).map { l in
            LayerWeights(
                attnNorm: try vector(TensorNames.attnNorm(l), count: c.dim),
                q: try matrix(TensorNames.attnQ(l), rows: c.qDim, cols: c.dim),
                k: try matrix(TensorNames.attnK(l), rows: c.kvDim, cols: c.dim),
                v: try matrix(TensorNames.attnV(l), rows: c.kvDim, cols: c.dim),
                o: try matrix(TensorNames.attnOutput(l), rows: c.dim, cols: c.qDim),
                ffnNorm: try vector(TensorNames.ffnNorm(l), count: c.dim),
                gate: try matrix(TensorNames.ffnGate(l), rows: c.hiddenDim, cols: c.dim),
                up: try matrix(TensorNames.ffnUp(l), rows: c.hiddenDim, cols: c.dim),
                down: try matrix(TensorNames.ffnDown(l), rows: c.dim, cols: c.hiddenDim))
        }
    }


    /// Bytes of weight data read per token by a forward pass (all projections plus the
    /// output matrix); the figure the decode bandwidth bound is computed from.
    public var bytesPerToken: Int {
        let perLayer = layers.first.map { l in
            [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].reduce(0) { $0 + $1.rows * $1.rowByteCount }
        } ?? 0
        return perLayer * layers.count + output.rows * output.rowByteCount
    }
}

/// f32 copies of vectors stored in other types; freed with the weights, or at once if
/// loading fails part way.
private final class OwnedVectors {
    private var pointers: [UnsafeMutablePointer<Float>] = []

    func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
        pointers.append(p)
        return p
    }

    deinit { pointers.forEach { $0.deallocate() } }
}
