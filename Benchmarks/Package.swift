// swift-tools-version:6.1
// The micro-benchmarks (`make bench-micro`, part of `make bench`), on ordo-one/package-benchmark: their own
// package, so `swift build` of the project (and CI) never builds the benchmark tool and its dependencies.
// Allocation counts are deterministic and checked against Thresholds/; times are reported, never checked.
import PackageDescription

let package = Package(
    name: "plex-livetv-authz-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "plex-livetv-authz", path: ".."),
        // Only the malloc interposer: the Swift 6.3 runtime interposer is not needed for malloc counts.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "Decisions",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LiveTVAuthzCore", package: "plex-livetv-authz"),
                .product(name: "LiveTVAuthz", package: "plex-livetv-authz"),
                .product(name: "LiveTVAuthzApp", package: "plex-livetv-authz"),
            ],
            path: "Benchmarks/Decisions",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
