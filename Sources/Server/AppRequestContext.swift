import Hummingbird

/// The per-request context; only its body limit differs from Hummingbird's default.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// Larger bodies get 413: a prompt near the context limit is far smaller than this.
    public var maxUploadSize: Int { 1 << 20 }
}
