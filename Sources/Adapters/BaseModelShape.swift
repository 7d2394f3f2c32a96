// The dimensions of the base model an adapter plugs into. Adapters cannot import Model,
// so this restates the few numbers of its config that LoRA shapes depend on.
public struct BaseModelShape: Sendable, Equatable {
    public var nLayers: Int
    public var dim: Int
    public var hiddenDim: Int
    public var nHeads: Int
    public var nKVHeads: Int
    public var headDim: Int

    public init(nLayers: Int, dim: Int, hiddenDim: Int, nHeads: Int, nKVHeads: Int, headDim: Int) {
        self.nLayers = nLayers
        self.dim = dim
        self.hiddenDim = hiddenDim
        self.nHeads = nHeads
        self.nKVHeads = nKVHeads
        self.headDim = headDim
    }

    /// Columns of the projection (and of lora_A).
    public func inputDim(_ target: LoRATarget) -> Int {
        switch target {
        case .q, .k, .v, .gate, .up: return dim
        case .o: return nHeads * headDim
        case .down: return hiddenDim
        }
    }

    /// Rows of the projection (and of lora_B).
    public func outputDim(_ target: LoRATarget) -> Int {
        switch target {
        case .q: return nHeads * headDim
        case .k, .v: return nKVHeads * headDim
        case .o, .down: return dim
        case .gate, .up: return hiddenDim
        }
    }

    /// Rotary row pairs need an even head size; everything else just positive.
    func validate() throws(AdapterError) {
        let fields = [("nLayers", nLayers), ("dim", dim), ("hiddenDim", hiddenDim),
                      ("nHeads", nHeads), ("nKVHeads", nKVHeads), ("headDim", headDim)]
        for (name, value) in fields where value <= 0 {
            throw .invalidBaseShape("\(name) is \(value), must be positive")
        }
        guard headDim % 2 == 0 else { throw .invalidBaseShape("headDim \(headDim) is odd; rotary rows come in pairs") }
    }
}
