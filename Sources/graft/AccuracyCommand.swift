import ArgumentParser
import Foundation
import Model

/// Next-token top-1 agreement with an fp32 reference over a text corpus: each document
/// runs through the model as one sequence asking for logits at every position, and
/// each position's argmax is compared with the reference's. Disagreements where the
/// reference's top-1 and top-2 logits are nearly tied are counted separately, since
/// any change of summation order may flip those.
struct AccuracyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accuracy",
        abstract: "Top-1 next-token agreement with an fp32 reference; one JSON line.",
        discussion: """
            The reference (bench/accuracy/reference_fp32.json) holds, per document, the \
            token ids and the fp32 top-1 id and top-1/top-2 logit margin at every \
            position; scripts/reference/make_accuracy_reference.py makes it.
            """)

    @OptionGroup var options: ModelOptions

    @Option(help: "The fp32 reference file.")
    var reference = "bench/accuracy/reference_fp32.json"

    @Flag(help: "Feed one token per forward pass (the path generated tokens take) instead of each document as one prompt.")
    var decode = false

    @Option(name: .customLong("near-tie"), help: "Reference margins below this count as near-ties.")
    var nearTie = 0.01

    struct Reference: Decodable {
        struct Document: Decodable {
            let id: String
            let ids: [Int]
            let top1: [Int]
            let margin: [Double]
        }
        let documents: [Document]
    }

    func run() throws {
        let file = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: reference)))
        for d in file.documents where d.top1.count != d.ids.count || d.margin.count != d.ids.count {
            throw CommandError("\(reference): document \(d.id) has \(d.ids.count) ids but \(d.top1.count) top-1 ids and \(d.margin.count) margins")
        }
        let loaded = try LoadedModel(options: options)
        let longest = file.documents.map(\.ids.count).max() ?? 1
        let scorer = SequenceScorer(model: loaded.model, maxTokens: longest, rowsPerPass: decode ? 1 : longest,
                                    kvPrecision: loaded.kvPrecision)

        var positions = 0, agreements = 0, nearTieDisagreements = 0
        var disagreements: [[String: Any]] = []
        var perDocument: [String: Double] = [:]
        let started = Date()
        for d in file.documents {
            let top = scorer.topTokens(tokens: d.ids)
            var agreed = 0
            for p in d.ids.indices {
                if top[p] == d.top1[p] {
                    agreed += 1
                    continue
                }
                if d.margin[p] < nearTie { nearTieDisagreements += 1 }
                disagreements.append(["document": d.id, "position": p, "reference": d.top1[p], "graft": top[p],
                                      "reference_margin": d.margin[p]])
            }
            positions += d.ids.count
            agreements += agreed
            perDocument[d.id] = Double(agreed) / Double(max(1, d.ids.count))
        }
        let seconds = Date().timeIntervalSince(started)
        log(String(format: "%d positions in %.1f s", positions, seconds))
        let result: [String: Any] = [
            "name": "accuracy", "system": "graft", "path": decode ? "decode" : "prompt",
            "documents": file.documents.count, "positions": positions, "agreements": agreements,
            "agreement": Double(agreements) / Double(max(1, positions)),
            "disagreements": positions - agreements,
            "near_tie_margin": nearTie, "near_tie_disagreements": nearTieDisagreements,
            "other_disagreements": positions - agreements - nearTieDisagreements,
            "per_document": perDocument, "disagreement_positions": disagreements,
        ]
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
