import Foundation

/// Whether the server still takes new generations. Closed when graceful shutdown
/// begins; requests already running finish.
public final class ShutdownGate: @unchecked Sendable {
    private let lock = NSLock()
    private var draining = false

    public init() {}

    public var isDraining: Bool { lock.withLock { draining } }

    func close() { lock.withLock { draining = true } }
}
