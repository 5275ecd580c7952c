@testable import FDFSMount
import Foundation
import Synchronization
import Testing
import enum FDFSTestSupport.Processes

/// Schema versions: stores written before versioning open and migrate without loss, a store
/// from a newer fdfs-mount is refused with both versions named, on both engines.
@Suite struct MetadataSchemaTests {
    /// The tables as fdfs-mount wrote them before special files and hard links (no `rdev`,
    /// no `link_ino`, user_version 0), with a directory, a file, a pending upload, a queued
    /// deletion and a setting in them.
    static let firstLayout = """
        PRAGMA journal_mode=WAL;
        CREATE TABLE entries(
          ino INTEGER PRIMARY KEY, parent INTEGER NOT NULL, name TEXT NOT NULL, kind INTEGER NOT NULL,
          mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
          atime INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,
          size INTEGER NOT NULL DEFAULT 0, file_id TEXT, target TEXT, state INTEGER NOT NULL DEFAULT 0,
          UNIQUE(parent, name));
        CREATE INDEX entries_file_id ON entries(file_id);
        CREATE TABLE pending(
          id INTEGER PRIMARY KEY, ino INTEGER NOT NULL, spool TEXT NOT NULL, size INTEGER NOT NULL,
          old_file_id TEXT, new_file_id TEXT, in_place INTEGER NOT NULL DEFAULT 0, started INTEGER NOT NULL);
        CREATE TABLE deletions(file_id TEXT PRIMARY KEY, since INTEGER NOT NULL);
        CREATE TABLE streams(file_id TEXT PRIMARY KEY, ino INTEGER NOT NULL, since INTEGER NOT NULL);
        CREATE TABLE metadata_due(file_id TEXT PRIMARY KEY, ino INTEGER NOT NULL, marked INTEGER NOT NULL);
        CREATE TABLE groups(name TEXT PRIMARY KEY, store_paths INTEGER NOT NULL, subdirs INTEGER NOT NULL);
        CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO entries(ino, parent, name, kind, mode, uid, gid, atime, mtime, ctime) VALUES(1, 0, '', 0, 493, 0, 0, 5, 5, 5);
        INSERT INTO entries VALUES(2, 1, 'group1', 5, 493, 0, 0, 5, 5, 5, 0, 'group1', NULL, 0);
        INSERT INTO entries VALUES(3, 2, 'photos', 3, 448, 1000, 1000, 6, 7, 8, 0, NULL, NULL, 0);
        INSERT INTO entries VALUES(4, 3, 'a.jpg', 2, 420, 1000, 1000, 9, 10, 11, 12345, 'group1/M00/00/00/wKgAAWVxAAAAAAAAAAAAAA.jpg', NULL, 0);
        INSERT INTO entries VALUES(5, 3, 'link', 4, 511, 1000, 1000, 9, 10, 11, 5, NULL, 'a.jpg', 0);
        INSERT INTO pending(id, ino, spool, size, old_file_id, new_file_id, in_place, started) VALUES(7, 4, 'spool/4', 12345, NULL, NULL, 0, 13);
        INSERT INTO deletions VALUES('group1/M00/00/00/old.jpg', 14);
        INSERT INTO groups VALUES('group1', 1, 256);
        INSERT INTO settings VALUES('upload_group', 'group1');
        """

    /// Writes a store with `sql` through the sqlite3 command-line shell (the layout as old
    /// code left it, not as this build would write it).
    static func writeStore(_ path: String, _ sql: String) throws {
        let result = try Processes.run("/usr/bin/sqlite3", [path], stdin: Data(sql.utf8))
        #expect(result.status == 0, "sqlite3 failed to write the old layout")
    }

    static func checkMigratedContent(_ store: MappingStore) throws {
        #expect(try store.schemaVersion() == MetadataSchema.currentVersion)
        let photos = try #require(try store.child(2, "photos"))
        #expect(photos.kind == .directory && photos.mode == 0o700 && photos.uid == 1000 && photos.mtime == 7 && photos.ctime == 8)
        let file = try #require(try store.child(3, "a.jpg"))
        #expect(file.fileID == "group1/M00/00/00/wKgAAWVxAAAAAAAAAAAAAA.jpg" && file.size == 12345 && file.rdev == 0 && file.linkIno == 0)
        #expect(try store.readlink(3, "link") == "a.jpg")
        #expect(try store.children(3).map(\.name) == ["a.jpg", "link"])
        #expect(try store.pendingUploads() == [PendingUpload(id: 7, ino: 4, spool: "spool/4", size: 12345, oldFileID: nil, newFileID: nil, inPlace: false)])
        #expect(try store.deletions() == ["group1/M00/00/00/old.jpg"])
        #expect(try store.savedGroups().map(\.name) == ["group1"])
        #expect(try store.setting("upload_group") == "group1")
        // The columns of version 2 work: a hard link to the old file.
        let linked = try store.link(4, into: 3, as: "b.jpg")
        #expect(linked.fileID == file.fileID)
        #expect(try store.linkCount(4) == 1)
        // New inodes come after the old ones.
        #expect(try store.insert(Entry(ino: 0, parent: 3, name: "new", kind: .directory, mode: 0o755, uid: 0, gid: 0, atime: 1, mtime: 1, ctime: 1,
                                       size: 0, fileID: nil, target: nil, state: Entry.committed)).ino > 5)
    }

    @Test func storeOfTheFirstLayoutMigrates() throws {
        let dir = TempDir()
        let path = dir.path + "/mapping.db"
        try Self.writeStore(path, Self.firstLayout)
        try Self.checkMigratedContent(try MappingStore(path: path))
        // Opening again finds the current version and changes nothing.
        let reopened = try MappingStore(path: path)
        #expect(try reopened.schemaVersion() == MetadataSchema.currentVersion)
        #expect(try reopened.linkCount(4) == 1)
    }

    @Test func storeOfTheLayoutBeforeVersioningMigrates() throws {
        // As the previous release left it: rdev and link_ino added, user_version still 0.
        let dir = TempDir()
        let path = dir.path + "/mapping.db"
        try Self.writeStore(path, Self.firstLayout + """
            ALTER TABLE entries ADD COLUMN rdev INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE entries ADD COLUMN link_ino INTEGER NOT NULL DEFAULT 0;
            CREATE INDEX entries_links ON entries(link_ino) WHERE kind = 13;
            CREATE INDEX entries_subdirectories ON entries(parent) WHERE kind = 3;
            """)
        try Self.checkMigratedContent(try MappingStore(path: path))
    }

    @Test func newerSQLiteStoreIsRefused() throws {
        let dir = TempDir()
        let path = dir.path + "/mapping.db"
        try Self.writeStore(path, Self.firstLayout + "PRAGMA user_version = 99;")
        let error = try #require(throws: FSError.self) { try MappingStore(path: path) }
        #expect(error.message.contains("99") && error.message.contains("version \(MetadataSchema.currentVersion)"), "\(error.message)")
        #expect(throws: FSError.self) { try MappingStore(path: path, readOnly: true) }
    }

    @Test func newerPostgresSchemaIsRefused() throws {
        let location = try TestMetadata.freshPostgres()
        let store = try MappingStore(location: .postgres(location), stateDir: "")
        #expect(try store.schemaVersion() == MetadataSchema.currentVersion)
        try store.with { (db: any MetadataConnection) throws(FSError) in try db.run("UPDATE schema_version SET version = 99") }
        let error = try #require(throws: FSError.self) { try MappingStore(location: .postgres(location), stateDir: "") }
        #expect(error.message.contains("99") && error.message.contains("version \(MetadataSchema.currentVersion)"), "\(error.message)")
    }

    /// Mounts started at once on a new schema all open it (two app servers brought up together:
    /// one of them used to fail with a unique violation from CREATE SCHEMA IF NOT EXISTS).
    @Test func mountsStartingAtOnceOnANewSchemaAllOpenIt() throws {
        for _ in 0..<3 {
            let location = try TestMetadata.freshPostgres()
            // Threads of their own: the stores' start-up blocks, and six must overlap.
            let failures = Mutex<[String]>([])
            let done = DispatchGroup()
            for _ in 0..<6 {
                done.enter()
                Thread {
                    do { _ = try MappingStore(location: .postgres(location), stateDir: "") } catch { failures.withLock { $0.append("\(error)") } }
                    done.leave()
                }.start()
            }
            done.wait()
            #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        }
    }

    @Test func postgresStoreIsSharedAndKeepsItsContent() throws {
        let location = try TestMetadata.freshPostgres()
        let first = try MappingStore(location: .postgres(location), stateDir: "")
        let second = try MappingStore(location: .postgres(location), stateDir: "")
        let dir = try first.create(Entry(ino: 0, parent: MappingStore.rootIno, name: "shared", kind: .directory, mode: 0o755, uid: 0, gid: 0,
                                         atime: 1, mtime: 1, ctime: 1, size: 0, fileID: nil, target: nil, state: Entry.committed))
        #expect(dir.ino >= 2)
        #expect(try second.child(MappingStore.rootIno, "shared")?.ino == dir.ino)
        _ = try second.rename(dir.ino, to: MappingStore.rootIno, "moved", replacing: nil, queueDeletion: true)
        #expect(try first.child(MappingStore.rootIno, "shared") == nil)
        #expect(try first.child(MappingStore.rootIno, "moved")?.ino == dir.ino)
        #expect(try first.path(dir.ino) == "moved")
    }

    @Test func metadataURLs() throws {
        #expect(try MetadataLocation(parsing: "sqlite") == .sqlite)
        let full = try MetadataLocation(parsing: "postgres://fdfs:p%40ss@db.example:6543/names?sslmode=disable&schema=mount_a")
        #expect(full == .postgres(PostgresLocation(user: "fdfs", password: "p@ss", host: "db.example", port: 6543, database: "names", schema: "mount_a")))
        #expect(full.description == "postgres://fdfs:***@db.example:6543/names?schema=mount_a")
        #expect(try MetadataLocation(parsing: "postgresql://u@[::1]/d") == .postgres(PostgresLocation(user: "u", password: nil, host: "::1", database: "d")))
        for bad in ["mysql://u@h/d", "postgres://h/d", "postgres://u@h", "postgres://u@h:0/d", "postgres://u@h/d?sslmode=require", "postgres://u@h/d?schema=A-b"] {
            #expect(throws: FSError.self, "\(bad)") { try MetadataLocation(parsing: bad) }
        }
        var options = MountOptions()
        try options.parse("meta=postgres://u@127.0.0.1:5432/d")
        #expect(options.meta == .postgres(PostgresLocation(user: "u", password: nil, host: "127.0.0.1", database: "d")))
    }
}

extension MappingStore {
    /// The target of symlink `name` in `parent`.
    func readlink(_ parent: UInt64, _ name: String) throws -> String? { try child(parent, name)?.target }
}
