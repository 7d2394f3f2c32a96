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
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .target(name: "CSIMD"),
        .target(name: "Kernels", dependencies: ["COpenBLAS", "CSIMD"], swiftSettings: numericSettings),
        .target(name: "ModelFormats", dependencies: ["Kernels"]),
        .target(name: "Tokenization", dependencies: ["ModelFormats"]),
        .target(name: "Adapters", dependencies: ["Kernels", "ModelFormats"], swiftSettings: numericSettings),
        .target(name: "Model", dependencies: ["Kernels", "ModelFormats", "Adapters"], swiftSettings: numericSettings),
        .target(name: "Engine", dependencies: ["Model", "Tokenization", "Kernels", "Adapters"]),
        .executableTarget(name: "graft", dependencies: [
            "Model", "ModelFormats", "Tokenization", "Engine", "Adapters",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"]),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats", "Kernels"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "ModelFormats"]),
        .testTarget(name: "AdaptersTests", dependencies: ["Adapters", "ModelFormats", "Kernels"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "ModelFormats", "Tokenization", "Engine", "Adapters"]),
    ]
)
