import Foundation
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
/// keeps alive), plus f32 copies of any norm vector not stored as f32 and, with the
/// interleaved layout, re-laid copies of the Q4_1 and Q8_0 matrices.
public final class LlamaWeights: @unchecked Sendable {
    public let tokenEmbedding: WeightMatrix
    public let output: WeightMatrix
    public let outputNorm: UnsafePointer<Float>
    public let layers: [LayerWeights]
    private let file: GGUFFile
    private let owned: OwnedMemory

    /// `layout`: how the Q4_1 and Q8_0 matrices are held (LlamaModel picks the default).
    public init(gguf: GGUFFile, config c: LlamaConfig, layout: WeightLayout) throws {
        file = gguf
        let owned = OwnedMemory()
        self.owned = owned
        func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
            guard let info = gguf.tensor(named: name) else { throw ModelError.missingTensor(name) }
            guard info.dims == [cols, rows] else {
                throw ModelError.tensorShape(name: name, expected: [cols, rows], found: info.dims)
            }
            guard cols % 32 == 0 else { throw ModelError.unsupported("tensor '\(name)' row length \(cols) is not a multiple of 32") }
            let stored = WeightMatrix(type: info.type, data: gguf.data(for: info), rows: rows, cols: cols)
            guard layout == .interleaved, stored.canInterleave else { return stored }
            let copy = stored.interleaved(into: owned.allocateBytes(rows * stored.rowByteCount))
            releasePages(stored.data, byteCount: rows * stored.rowByteCount)
            return copy
        }
        func vector(_ name: String, count: Int) throws -> UnsafePointer<Float> {
            guard let info = gguf.tensor(named: name) else { throw ModelError.missingTensor(name) }
            guard info.dims == [count] else {
                throw ModelError.tensorShape(name: name, expected: [count], found: info.dims)
            }
            if info.type == .f32 { return gguf.data(for: info).assumingMemoryBound(to: Float.self) }
            let copy = owned.allocateFloats(count)
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

/// Drops the whole pages of a read-only file mapping in [start, start + byteCount) from
/// the process: the copy replaces them, so they would only count twice in its memory.
/// Read again, they would come back from the file unchanged.
private func releasePages(_ start: UnsafeRawPointer, byteCount: Int) {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let first = (Int(bitPattern: start) + page - 1) / page * page
    let end = (Int(bitPattern: start) + byteCount) / page * page
    guard end > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return }
    madvise(pointer, end - first, MADV_DONTNEED)
}

/// Copies made at load (f32 vectors, interleaved matrices); freed with the weights, or
/// at once if loading fails part way.
private final class OwnedMemory {
    private var pointers: [UnsafeMutableRawPointer] = []

    func allocateBytes(_ count: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        pointers.append(p)
        return p
    }

    func allocateFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
        allocateBytes(count * MemoryLayout<Float>.stride).bindMemory(to: Float.self, capacity: count)
    }

    deinit { pointers.forEach { $0.deallocate() } }
}
