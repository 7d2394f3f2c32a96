// swift-tools-version: 6.1
import PackageDescription

// Kernels are numeric hot loops: they are always optimised, even in debug builds,
// so that `swift test` in debug stays usable. Release builds use -O everywhere.
let numericSettings: [SwiftSetting] = [
    .unsafeFlags(["-O", "-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"]),
]

let package = Package(
    name: "Graft",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "graft", targets: ["graft"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.20.0"),
    ],
    targets: [
        // -ffp-contract=off: the int16 kernels' f32 steps round the same in every variant.
        .target(name: "CSIMD", cSettings: [.unsafeFlags(["-O3", "-mavx2", "-mfma", "-mf16c", "-ffp-contract=off"])]),
        .target(name: "Kernels", dependencies: ["CSIMD"], swiftSettings: numericSettings),
        .target(name: "ModelFormats", dependencies: ["Kernels"]),
        .target(name: "Tokenization", dependencies: ["ModelFormats"]),
        .target(name: "Adapters", dependencies: ["Kernels", "ModelFormats"], swiftSettings: numericSettings),
        .target(name: "Model", dependencies: ["Kernels", "ModelFormats", "Adapters"], swiftSettings: numericSettings),
        .target(name: "Engine", dependencies: ["Model", "Tokenization", "Kernels", "Adapters"]),
        .target(name: "Server", dependencies: [
            "Engine", "Adapters", "Tokenization",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        .executableTarget(name: "graft", dependencies: [
            "Model", "ModelFormats", "Tokenization", "Engine", "Adapters", "Server",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CSIMD"]),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats", "Kernels"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "ModelFormats"]),
        .testTarget(name: "AdaptersTests", dependencies: ["Adapters", "ModelFormats", "Kernels"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Kernels", "ModelFormats", "Tokenization", "Engine", "Adapters"]),
        .testTarget(name: "ServerTests", dependencies: [
            "Server", "Engine", "Adapters", "Model", "ModelFormats", "Tokenization",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
    ]
)
