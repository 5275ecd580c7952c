// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "fdfs",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "FDFSProtocol", targets: ["FDFSProtocol"]),
        .library(name: "FDFSClient", targets: ["FDFSClient"]),
        .library(name: "FDFSMount", targets: ["FDFSMount"]),
        .executable(name: "fdfs", targets: ["fdfs"]),
        .executable(name: "fdfs-mount", targets: ["fdfs-mount"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
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
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "FDFSClient",
            dependencies: [
                "FDFSProtocol",
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
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FDFSFuse",
            dependencies: [
                "FDFSMount",
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
            dependencies: ["FDFSMount", "FDFSProtocol", "FDFSClient", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "FDFSMountE2ETests",
            dependencies: ["FDFSClient", "FDFSProtocol", "fdfs-mount", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "FDFSProtocolTests",
            dependencies: ["FDFSProtocol", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "FDFSClientTests",
            dependencies: [
                "FDFSClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
