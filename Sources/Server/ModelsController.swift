import Foundation
import Hummingbird

/// `GET /v1/models` and `GET /v1/models/{id}`: the base model and every stored adapter,
/// in OpenAI's list format.
struct ModelsController {
    let baseName: String
    let adapters: AdapterStore
    let started: Date

    var endpoints: RouteCollection<AppRequestContext> {
        RouteCollection(context: AppRequestContext.self)
            .get(use: list)
            .get("{id}", use: get)
    }

    struct Model: Encodable {
        var id: String
        var object = "model"
        var created: Int
        var ownedBy = "graft"
        /// The base an adapter applies to; absent for the base itself.
        var parent: String?

        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by", parent }
    }

    struct List: Encodable {
        var object = "list"
        var data: [Model]
    }

    private var models: [Model] {
        [Model(id: baseName, created: started.unixSeconds)] + adapters.names.compactMap { adapters.entries[$0] }.map {
            Model(id: "\(baseName):\($0.name)", created: $0.created.unixSeconds, parent: baseName)
        }
    }

    @Sendable func list(request: Request, context: AppRequestContext) async throws -> Response {
        try .json(List(data: models))
    }

    @Sendable func get(request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let name = try ModelName.parse(id, baseName: baseName)
        guard let model = models.first(where: { $0.id == name.id(baseName: baseName) }) else { throw OpenAIError.modelNotFound(id) }
        return try .json(model)
    }
}
