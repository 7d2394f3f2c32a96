import Adapters
import Foundation
import Kernels
import Model

/// The decode path's weight products alone, outside the engine: every projection of
/// every layer plus the output matrix, in forward order, with T activation rows, the
/// way one decode step of T sequences runs them. Weights stream from memory as they do
/// in the engine (the whole model does not fit in cache). Reports tokens/s of the
/// products alone and the multiply-adds per second, per row count and per kind of
/// projection, so a kernel change can be measured without the rest of the engine.
struct KernelBench {
    let model: LlamaModel

    struct Result {
        let rows: Int
        let seconds: Double
        let perKind: [String: Double]
    }

    private var kinds: [(name: String, weights: [WeightMatrix])] {
        let layers = model.weights.layers
        return [("q", layers.map(\.q)), ("k", layers.map(\.k)), ("v", layers.map(\.v)), ("o", layers.map(\.o)),
                ("gate", layers.map(\.gate)), ("up", layers.map(\.up)), ("down", layers.map(\.down)),
                ("output", [model.weights.output])]
    }

    var macsPerToken: Int { kinds.reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.rows * $1.cols } } }

    /// Seconds for `passes` passes over all products with `T` rows, and the share of
    /// each kind of projection in that time.
    func measure(rows T: Int, passes: Int) -> Result {
        let widest = kinds.flatMap(\.weights).map(\.cols).max()!
        let tallest = kinds.flatMap(\.weights).map(\.rows).max()!
        let x = UnsafeMutablePointer<Float>.allocate(capacity: T * widest)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: T * tallest)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: MatMul.scratchCount(rows: T, cols: widest))
        defer { x.deallocate(); out.deallocate(); scratch.deallocate() }
        Self.fillRandom(x, count: T * widest)
        let path = MatMul.Path.rowwise(model.decodeActivations)
        let layerCount = model.weights.layers.count

        var perKind: [String: Double] = [:]
        var total = 0.0
        for _ in 0..<passes {
            // Forward order: layer by layer, then the output matrix.
            for l in 0..<layerCount {
                for kind in kinds where kind.weights.count == layerCount {
                    total += time(kind.name, &perKind) { product(kind.weights[l]) }
                }
            }
            for kind in kinds where kind.weights.count == 1 {
                total += time(kind.name, &perKind) { product(kind.weights[0]) }
            }
        }
        return Result(rows: T, seconds: total, perKind: perKind)

        func product(_ w: WeightMatrix) {
            MatMul.forward(out: out, outStride: w.rows, x: x, xStride: w.cols, T: T, weight: w, scratch: scratch, path: path)
        }
    }

    /// Seconds for `passes` passes of the decode rows' adapter side paths alone (every
    /// projection of every layer, forward order) with `T` rows, row t taking
    /// adapters[t % adapters.count]: one adapter shared by all rows, or one each. The
    /// engine overlaps part of this with the base product (its prefetch); this is the
    /// side path's own cost, for measuring changes to its kernels.
    func measureSidePath(rows T: Int, adapters: [LoRAAdapter], passes: Int) -> Double {
        let layerCount = model.weights.layers.count
        let dims = LoRATarget.allCases.map { adapters[0].weights(layer: 0, target: $0)! }
        let widest = dims.map { max($0.inDim, $0.outDim) }.max()!
        let stride = LoRAPacking.paddedRank(adapters.map(\.maxRank).max()!)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: T * widest)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: T * widest)
        let shrink = UnsafeMutablePointer<Float>.allocate(capacity: T * stride)
        let rows = UnsafeMutablePointer<LoRARow>.allocate(capacity: T)
        defer { x.deallocate(); out.deallocate(); shrink.deallocate(); rows.deallocate() }
        Self.fillRandom(x, count: T * widest)
        out.initialize(repeating: 0, count: T * widest)

        var total = 0.0
        for _ in 0..<passes {
            for l in 0..<layerCount {
                for target in LoRATarget.allCases {
                    var inDim = 0, outDim = 0
                    for t in 0..<T {
                        let w = adapters[t % adapters.count].weights(layer: l, target: target)!
                        rows[t] = w.row(t)
                        (inDim, outDim) = (w.inDim, w.outDim)
                    }
                    total += Self.seconds {
                        loraRowsForward(out: out, outStride: outDim, x: x, xStride: inDim, rows: rows, count: T,
                                        inDim: inDim, outDim: outDim, shrink: shrink, shrinkStride: stride)
                    }
                }
            }
        }
        return total
    }

    private func time(_ name: String, _ perKind: inout [String: Double], _ body: () -> Void) -> Double {
        let seconds = Self.seconds(body)
        perKind[name, default: 0] += seconds
        return seconds
    }

    /// Activations uniform in [-1, 1].
    private static func fillRandom(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var generator = SystemRandomNumberGenerator()
        for i in 0..<count { x[i] = Float.random(in: -1...1, using: &generator) }
    }

    private static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
