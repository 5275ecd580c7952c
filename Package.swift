// swift-tools-version:6.0
import PackageDescription

// Linux only: the mount is built on libfuse3 and the servers and tests use Glibc directly, so
// no Apple platform is declared (the macOS 14 entry claimed a build that does not exist).

let package = Package(
    name: "fdfs",
    products: [
        .library(name: "FDFSProtocol", targets: ["FDFSProtocol"]),
        .library(name: "FDFSClient", targets: ["FDFSClient"]),
        .executable(name: "fdfs", targets: ["fdfs"]),
        .executable(name: "fdfs-mount", targets: ["fdfs-mount"]),
        .library(name: "FDFSTracker", targets: ["FDFSTracker"]),
        .executable(name: "fdfs-trackerd", targets: ["fdfs-trackerd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "FDFSProtocol",
            dependencies: [
                "CZlib",
                "CFastCRC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .systemLibrary(
            name: "CPipe",
            path: "Sources/CPipe"
        ),
        .target(
            name: "FDFSClient",
            dependencies: [
                "FDFSProtocol",
                "CPipe",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "fdfs",
            dependencies: [
                "FDFSClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "fdfs-bench",
            dependencies: [
                "FDFSClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "FDFSFuzzTargets",
            dependencies: [
                "FDFSProtocol",
                "FDFSStorage",
                "FDFSTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Tests/FDFSFuzzTargets"
        ),
        .testTarget(
            name: "FDFSFuzzTests",
            dependencies: ["FDFSFuzzTargets", "FDFSTestSupport"]
        ),
        .executableTarget(
            name: "fdfs-fuzz",
            dependencies: ["FDFSFuzzTargets", "FDFSTestSupport"],
            path: "Tests/fdfs-fuzz"
        ),
        .executableTarget(
            name: "fdfs-fsx",
            dependencies: [
                "FDFSProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "FDFSTestSupport",
            dependencies: ["FDFSProtocol", "FDFSClient", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/FDFSTestSupport"
        ),
        .target(
            name: "FDFSMetrics",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FDFSTracker",
            dependencies: [
                "FDFSProtocol",
                "FDFSMetrics",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "fdfs-trackerd",
            dependencies: [
                "FDFSTracker",
                "FDFSProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "FDFSTrackerTests",
            dependencies: [
                "FDFSTestSupport",
                "FDFSTracker",
                "FDFSProtocol",
                "fdfs-trackerd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FDFSStorage",
            dependencies: [
                "FDFSProtocol",
                "FDFSClient",
                "FDFSMetrics",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "fdfs-storaged",
            dependencies: [
                "FDFSStorage",
                "FDFSProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "FDFSStorageTests",
            dependencies: [
                "FDFSTestSupport",
                "FDFSFuzzTargets",
                "FDFSStorage",
                "FDFSClient",
                "FDFSProtocol",
                "fdfs-storaged",
                "fdfs-trackerd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FDFSIntegrationTests",
            dependencies: ["FDFSTestSupport", "FDFSClient", "fdfs", "fdfs-trackerd"]
        ),
        .systemLibrary(
            name: "CFuse3",
            path: "Sources/CFuse3",
            pkgConfig: "fuse3",
            providers: [.apt(["libfuse3-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            path: "Sources/CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CFastCRC",
            path: "Sources/CFastCRC",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "FDFSMount",
            dependencies: [
                "CFastCRC",
                "FDFSClient",
                "FDFSProtocol",
                "CSQLite",
                "CZlib",
                "FDFSMetrics",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .target(
            name: "FDFSFuse",
            dependencies: [
                "FDFSMount",
                "FDFSClient",
                "CFuse3",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "fdfs-mount",
            dependencies: [
                "CFuse3",
                "FDFSFuse",
                "FDFSMount",
                "FDFSClient",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "FDFSMountTests",
            dependencies: ["FDFSMount", "FDFSTestSupport", "FDFSProtocol", "FDFSClient", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "FDFSMountE2ETests",
            dependencies: ["FDFSTestSupport", "FDFSClient", "FDFSProtocol", "fdfs-mount", "fdfs-fsx", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "FDFSProtocolTests",
            dependencies: [
                "FDFSProtocol",
                "FDFSTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FDFSClientTests",
            dependencies: [
                "FDFSClient",
                "FDFSTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
