import FDFSMount
import Foundation

struct TestMetadataError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The metadata engine the kernel-free suite runs on: `FDFS_TEST_META_ENGINE=postgres` puts
/// every file system ``makeFS(_:_:configure:)`` builds into a fresh schema of the database at
/// `FDFS_TEST_POSTGRES_URL` (Scripts/test starts a throw-away server and runs the suite once
/// per engine); unset or `sqlite`, each gets its own `mapping.db`.
enum TestMetadata {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    static var engine: MetadataEngineKind {
        get throws {
            let name = environment["FDFS_TEST_META_ENGINE"] ?? "sqlite"
            guard let kind = MetadataEngineKind(rawValue: name) else {
                throw TestMetadataError("FDFS_TEST_META_ENGINE=\(name): expected sqlite or postgres")
            }
            return kind
        }
    }

    /// Where the namespace of the file system in test directory `dir` goes on the engine under
    /// test: a schema of its own, the same each time the test opens a file system there (the
    /// tests of crash recovery open a second one on what the first left).
    static func location(for dir: String) throws -> MetadataLocation {
        guard try engine == .postgres else { return .sqlite }
        var location = try freshPostgres()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in dir.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0100_0000_01b3 }
        location.schema = "t_\(processNonce)_" + String(hash, radix: 16)
        return .postgres(location)
    }

    /// Tells this test process's schemas from those of earlier runs on the same server.
    static let processNonce = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    /// A new, empty schema in the test database. Throws (the test fails) without a server.
    static func freshPostgres() throws -> PostgresLocation {
        guard let url = environment["FDFS_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw TestMetadataError("FDFS_TEST_POSTGRES_URL is not set: these tests need PostgreSQL (Scripts/test starts a throw-away server; see start_test_postgres in Scripts/lib.sh)")
        }
        guard case var .postgres(location) = try MetadataLocation(parsing: url) else {
            throw TestMetadataError("FDFS_TEST_POSTGRES_URL=\(url) is not a postgres:// URL")
        }
        location.schema = "t_" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return location
    }
}
