import Kernels
extension LoRAAdapter {
    /// An adapter on all seven projections of every layer with seeded random A and B
    /// (scale 1), for benchmarks and tests that need many distinct adapters. Its effect
    /// on the output is large on purpose: distinct adapters give distinct answers.
    public static func random(shape: BaseModelShape, rank: Int, seed: UInt64,
                              precision: LoRAWeightPrecision = .f16) -> LoRAAdapter {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        // SplitMix64 to a uniform value in [-bound, bound).
        func uniform(_ bound: Float) -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return (Float(z >> 40) / 8_388_608.0 - 1) * bound
        }
        let projections = (0..<shape.nLayers).flatMap { layer in
            LoRATarget.allCases.map { LoRAProjection(layer: layer, target: $0, rank: rank, alpha: Float(rank)) }
        }
        // The shape and tensors are consistent by construction. Values are made one
        // projection at a time, in order, so only one is ever held in f32.
        return try! LoRAAdapter(shape: shape, useRSLoRA: false, precision: precision, projections: projections) { i in
            let (inDim, outDim) = (shape.inputDim(projections[i].target), shape.outputDim(projections[i].target))
            let aBound = 1 / Float(inDim).squareRoot(), bBound = 0.5 / Float(rank).squareRoot()
            return ((0..<(rank * inDim)).map { _ in uniform(aBound) }, (0..<(outDim * rank)).map { _ in uniform(bBound) })
        }
    }
}
