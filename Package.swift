// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "plex-livetv-authz",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "plex-livetv-authz", targets: ["plex-livetv-authz"]),
        .library(name: "LiveTVAuthzCore", targets: ["LiveTVAuthzCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // Pure decision logic: no NIO, no Foundation, no I/O. Time comes in as a parameter.
        .target(
            name: "LiveTVAuthzCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // Runtime: validation, state, audit sink, configuration. Foundation is fine here, NIO is not needed yet.
        .target(
            name: "LiveTVAuthz",
            dependencies: [
                "LiveTVAuthzCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "plex-livetv-authz",
            dependencies: [
                "LiveTVAuthzCore",
                "LiveTVAuthz",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // `make bench-core`: a release-mode harness; the C target counts allocations (benchmark only).
        .target(name: "CMallocCounter", path: "Benchmarks/CMallocCounter"),
        .executableTarget(
            name: "CoreBenchmark",
            dependencies: ["CMallocCounter", "LiveTVAuthz", "LiveTVAuthzCore"],
            path: "Benchmarks/CoreBenchmark"
        ),
        .testTarget(name: "LiveTVAuthzCoreTests", dependencies: ["LiveTVAuthzCore"]),
        .testTarget(name: "LiveTVAuthzTests", dependencies: ["LiveTVAuthz", "LiveTVAuthzCore"]),
    ],
    swiftLanguageModes: [.v6]
)
