// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "plex-livetv-authz",
    products: [
        .executable(name: "plex-livetv-authz", targets: ["plex-livetv-authz"]),
        .executable(name: "fake-pms", targets: ["fake-pms"]),
        .library(name: "LiveTVAuthzCore", targets: ["LiveTVAuthzCore"]),
        // For the micro-benchmarks (Benchmarks/, their own package: CI never builds package-benchmark).
        .library(name: "LiveTVAuthz", targets: ["LiveTVAuthz"]),
        .library(name: "LiveTVAuthzApp", targets: ["LiveTVAuthzApp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Pure decision logic: no NIO, no Foundation, no I/O. Time comes in as a parameter.
        .target(
            name: "LiveTVAuthzCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // Runtime: settings, frontend trust, guard (validation, state), audit sink, lifecycle services. Uses
        // NIOCore/NIOHTTP1 only through AsyncHTTPClient's types for PMS calls.
        .target(
            name: "LiveTVAuthz",
            dependencies: [
                "LiveTVAuthzCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The SwiftNIO HTTP/1.1 + h2c decision server and one small adapter per frontend protocol.
        .target(
            name: "LiveTVAuthzHTTP",
            dependencies: [
                "LiveTVAuthz",
                "LiveTVAuthzCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Envoy's ext_authz messages (Generated/, from Protos/ via `make generate`, committed: CI never builds
        // the protoc plugins) and their translation to and from the core's types. Only SwiftProtobuf: the
        // CheckRequest decoder can be fuzzed without building gRPC or NIO.
        .target(
            name: "LiveTVAuthzEnvoy",
            dependencies: ["LiveTVAuthzCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Generated/VERSIONS.txt"]
        ),
        // Envoy ext_authz over gRPC (envoy.service.auth.v3.Authorization/Check): the generated service stubs
        // (Generated/, same `make generate`) and the server.
        .target(
            name: "LiveTVAuthzGRPC",
            dependencies: [
                "LiveTVAuthz",
                "LiveTVAuthzCore",
                "LiveTVAuthzEnvoy",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The composition root: the whole service graph from a Configuration and injectable dependencies.
        // Its own module because the runtime cannot import the listener modules that import it.
        .target(
            name: "LiveTVAuthzApp",
            dependencies: [
                "LiveTVAuthz",
                "LiveTVAuthzCore",
                "LiveTVAuthzHTTP",
                "LiveTVAuthzGRPC",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Guard state shared by replicas on PostgreSQL: implements the runtime's GuardStateStore, so the
        // runtime never depends on a database driver; the command line wires it in.
        .target(
            name: "LiveTVAuthzPostgres",
            dependencies: [
                "LiveTVAuthz",
                "LiveTVAuthzCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "plex-livetv-authz",
            dependencies: [
                "LiveTVAuthzCore",
                "LiveTVAuthz",
                "LiveTVAuthzApp",
                "LiveTVAuthzPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                // Operator commands (enforce-prefs, validate, blocks) speak HTTP through AsyncHTTPClient.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // A faithful fake Plex Media Server for tests, benchmarks and the demo (plex-wire.md §5).
        .target(
            name: "FakePMS",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
            ]
        ),
        .executableTarget(
            name: "fake-pms",
            dependencies: [
                "FakePMS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Fuzz targets (`make fuzz` builds them with -sanitize=fuzzer -D FUZZING; a plain build replays the
        // committed corpus, which `make test` runs).
        .target(name: "FuzzReplay", dependencies: ["LiveTVAuthzCore"], path: "Fuzz/FuzzReplay"),
        .executableTarget(
            name: "StateFileFuzz", dependencies: ["FuzzReplay", "LiveTVAuthzCore"], path: "Fuzz/StateFileFuzz"),
        .executableTarget(
            name: "TargetFuzz", dependencies: ["FuzzReplay", "LiveTVAuthzCore"], path: "Fuzz/TargetFuzz"),
        .executableTarget(
            name: "ForwardedIdentityFuzz", dependencies: ["FuzzReplay", "LiveTVAuthzCore"],
            path: "Fuzz/ForwardedIdentityFuzz"),
        .executableTarget(
            name: "EnvoyCheckFuzz",
            dependencies: [
                "FuzzReplay", "LiveTVAuthzCore", "LiveTVAuthzEnvoy",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Fuzz/EnvoyCheckFuzz"),
        // @testable: the codec is internal to the server module; fuzz and replay builds are debug builds.
        .executableTarget(
            name: "HTTPHeadFuzz",
            dependencies: [
                "FuzzReplay", "LiveTVAuthzCore", "LiveTVAuthzHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Fuzz/HTTPHeadFuzz"),
        .testTarget(name: "LiveTVAuthzCoreTests", dependencies: ["LiveTVAuthzCore"]),
        .testTarget(
            name: "LiveTVAuthzTests",
            dependencies: [
                "LiveTVAuthz", "LiveTVAuthzApp", "LiveTVAuthzCore", "FakePMS",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(
            name: "LiveTVAuthzHTTPTests",
            dependencies: [
                "LiveTVAuthzHTTP", "LiveTVAuthzGRPC", "LiveTVAuthzEnvoy", "LiveTVAuthzApp", "LiveTVAuthz",
                "LiveTVAuthzCore", "FakePMS",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
