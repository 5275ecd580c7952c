import FDFSClient
import FDFSProtocol
import Foundation
import class FDFSTestSupport.ChildProcess
import enum FDFSTestSupport.Processes
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// End-to-end tests: the real `fdfs-mount` binary, a real kernel mount in a temp dir, the
/// cluster from FDFS_TEST_CLIENT_CONF, and shell tools. One suite at a time: the failure tests
/// stop servers the others need.
@Suite(.serialized) enum MountE2E {}

extension MountE2E {
@Suite(.serialized) struct ReadSideE2ETests {
    @Test func uploadedFilesAppearAtTheirPaths() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount()
        defer { mount.stop() }
        let small = localFile(10_000, in: mount.root)
        let large = localFile(3_500_000, in: mount.root)
        let smallID = try await client.upload(filePath: small.path)
        let largeID = try await client.upload(filePath: large.path)
        let empty = try await client.upload([UInt8]())
        for (id, bytes) in [(smallID, small.bytes), (largeID, large.bytes), (empty, [])] {
            let path = mount.path(id.description)
            let attrs = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attrs[.size] as? Int) == bytes.count)
            let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            #expect(Int64(mtime) == Int64(id.generated.timestamp))
            #expect(FileManager.default.contents(atPath: path) == Data(bytes))
        }
        #expect(sha256(mount.path(largeID.description)) == sha256(large.path))
        #expect(Shell.ok("cat '\(mount.path(largeID.description))' | sha256sum | cut -c1-64").prefix(64) == sha256(large.path))
        expectSameRanges(mount.path(largeID.description), large.path)
        // Listed in its HH/HH directory once known, with its xattrs.
        let dir = (mount.path(smallID.description) as NSString).deletingLastPathComponent
        #expect(Shell.ok("ls '\(dir)'").contains(smallID.name))
        #expect(Shell.ok("getfattr --only-values -n user.fdfs.file_id '\(mount.path(smallID.description))'") == smallID.description)
        #expect(Shell.ok("getfattr --only-values -n user.fdfs.crc32 '\(mount.path(smallID.description))'") == String(format: "%08x", smallID.generated.crc32))
        // The root lists groups, a group lists store paths.
        #expect(Shell.ok("ls '\(mount.mountpoint)'").contains(smallID.group))
        #expect(Shell.ok("ls '\(mount.path(smallID.group))'").contains("M00"))
        for id in [smallID, largeID, empty] { try? await client.delete(id) }
        await client.shutdown()
    }

    /// A mount with `options` and a 3.5 MB file uploaded directly: read whole and by ranges
    /// through the mount, then `more` (the mount, the file's mounted path, the local copy).
    func readsMatch(options: String, _ more: (TestMount, String, String) throws -> Void) async throws {
        let client = try TestCluster.client()
        let mount = try TestMount(options: options)
        defer { mount.stop() }
        let large = localFile(3_500_000, in: mount.root)
        let id = try await client.upload(filePath: large.path)
        let path = mount.path(id.description)
        #expect(sha256(path) == sha256(large.path))
        expectSameRanges(path, large.path)
        try more(mount, path, large.path)
        try? await client.delete(id)
        await client.shutdown()
    }

    @Test func directIOReadsMatchAndRefuseOnlySharedMappings() async throws {
        try await readsMatch(options: "direct_io") { _, path, local in
            // The kernel maps direct_io files privately only (SEMANTICS.md): MAP_PRIVATE reads the
            // right bytes, MAP_SHARED is ENODEV.
            let mapped = Shell.run("""
                python3 -c "
                import mmap, os, sys, hashlib
                fd = os.open(sys.argv[1], os.O_RDONLY)
                m = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
                print(hashlib.sha256(m[:]).hexdigest())
                try:
                    mmap.mmap(fd, 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ); print('shared')
                except OSError as e:
                    print(e.errno == 19 and 'ENODEV' or e)
                " '\(path)'
                """)
            #expect(mapped.stdout == "\(sha256(local))\nENODEV\n", "\(mapped.stdout) \(mapped.stderr)")
        }
    }

    /// `max_read=` (passed to libfuse) caps the kernel's READs; libfuse 3.14 ended the session at
    /// INIT for any value until `init` set the same one. `fsname=` and `subtype=` name the mount
    /// in the mount table (`subtype=` was accepted and ignored until then).
    @Test func maxReadCapsReadsAndTheMountServes() async throws {
        try await readsMatch(options: "max_read=131072,fsname=ourcluster,subtype=fdfsx") { mount, _, _ in
            #expect(mount.process?.isRunning == true)
            #expect(!mount.log.contains("error"), "\(mount.log)")
            let entry = Shell.ok("grep ' \(mount.mountpoint) ' /proc/self/mountinfo")
            #expect(entry.contains(" - fuse.fdfsx ourcluster "), "\(entry)")
        }
    }

    /// A large file read once (above the 16 MiB that `cache=reread` always caches) is streamed:
    /// every READ spliced from a storage's socket to the kernel, none through memory (the
    /// default `max_read` fits a pipe), nothing cached, and the READs share one download (the
    /// first READ, which finds the file's storages, has one of its own; a READ the kernel sends
    /// after a later one was taken may too); `nosplice` reads it through the blocks.
    @Test func largeFilesReadOnceAreSplicedFromTheStorage() async throws {
        let client = try TestCluster.client()
        let file = localFile(20 << 20, in: NSTemporaryDirectory())
        defer { try? FileManager.default.removeItem(atPath: file.path) }
        let id = try await client.upload(filePath: file.path)
        for options in ["", "nosplice"] {
            let mount = try TestMount(options: options)
            defer { mount.stop() }
            let path = mount.path(id.description)
            #expect(sha256(path) == sha256(file.path), "\(options)")
            let streamed = mount.metric("fdfs_mount_streamed_reads_total")
            if options.isEmpty {
                #expect(streamed >= 20 && mount.metric("fdfs_mount_streamed_reads_copied_total") == 0, "\(streamed)")
                let downloads = mount.metric("fdfs_mount_streamed_downloads_total")
                #expect(downloads >= 2 && downloads <= 4, "\(downloads) downloads for \(streamed) READs")
                #expect(mount.metric("fdfs_mount_cache_bytes") == 0)
            } else {
                #expect(streamed == 0)
            }
        }
        try? await client.delete(id)
        await client.shutdown()
    }

    @Test func secondReadComesFromTheCacheAndSurvivesRemount() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount()
        defer { mount.stop() }
        let file = localFile(5_000_000, in: mount.root)
        let id = try await client.upload(filePath: file.path)
        let path = mount.path(id.description)
        #expect(sha256(path) == sha256(file.path))
        let fromCluster = mount.metric("fdfs_mount_bytes_from_cluster_total")
        #expect(fromCluster >= 5_000_000)
        Shell.run("echo 3 > /proc/sys/vm/drop_caches")
        let hits = mount.metric("fdfs_mount_cache_hits_total")
        #expect(sha256(path) == sha256(file.path))
        #expect(mount.metric("fdfs_mount_bytes_from_cluster_total") == fromCluster)
        #expect(mount.metric("fdfs_mount_cache_hits_total") > hits)
        // Remount on the same state directory: still cached.
        mount.stop()
        try mount.start()
        #expect(sha256(path) == sha256(file.path))
        #expect(mount.metric("fdfs_mount_bytes_from_cluster_total") == 0)
        try? await client.delete(id)
        await client.shutdown()
    }

    @Test func filesLargerThanTheCacheNeverOverflowIt() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount(options: "cache_size=3M,block_size=256K,readahead=1M")
        defer { mount.stop() }
        let file = localFile(12_000_000, in: mount.root)
        let id = try await client.upload(filePath: file.path)
        #expect(sha256(mount.path(id.description)) == sha256(file.path))
        // Disk space taken: the slots of evicted blocks are punched out by the cache's writer
        // thread, right after the evictions that its accounting (the metric) counts at once.
        func used() -> Int64 { Int64(Shell.ok("du -s -B1 '\(mount.stateDir)/cache' | cut -f1").trimmingCharacters(in: .whitespacesAndNewlines)) ?? .max }
        #expect(await Processes.wait(for: 5, poll: 0.02) { () async in used() <= 3 << 20 + 300_000 }, "cache dir holds \(used()) bytes")
        #expect(mount.metric("fdfs_mount_cache_bytes") <= 3 << 20)
        #expect(mount.metric("fdfs_mount_cache_evictions_total") > 0)
        try? await client.delete(id)
        await client.shutdown()
    }

    @Test func corruptCachedBlockStillReadsCorrectly() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount(options: "block_size=256K")
        defer { mount.stop() }
        let file = localFile(1_000_000, in: mount.root)
        let id = try await client.upload(filePath: file.path)
        #expect(sha256(mount.path(id.description)) == sha256(file.path))
        // Blocks reach the disk shortly after the read (the cache writes behind), into one
        // file with a slot per block: a 4 KiB header page, then 256 KiB of data.
        let slot = 4096 + 256 * 1024
        let complete = 3 * slot + 4096 + (1_000_000 - 3 * 256 * 1024 + 4095) / 4096 * 4096
        func cacheFiles() -> [Substring] { Shell.ok("find '\(mount.stateDir)/cache' -name '*.blocks' | sort").split(separator: "\n") }
        // Bytes allocated: every slot written (they may land in any order).
        func allocated(_ path: Substring) -> Int { (Int(Shell.ok("stat -c %b '\(path)'").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) * 512 }
        #expect(await Processes.wait(for: 10, poll: 0.02) { () async in cacheFiles().count == 1 && allocated(cacheFiles()[0]) == complete })
        let files = cacheFiles()
        #expect(files.count == 1)
        for index in 0..<4 {
            // Overwrite 100 bytes in the middle of each block's data.
            Shell.ok("printf '%0100d' 0 | dd of='\(files[0])' bs=1 seek=\(index * slot + 150_000) conv=notrunc 2>/dev/null")
        }
        Shell.run("echo 3 > /proc/sys/vm/drop_caches")
        #expect(sha256(mount.path(id.description)) == sha256(file.path))
        #expect(mount.metric("fdfs_mount_cache_corruptions_total") >= 1)
        try? await client.delete(id)
        await client.shutdown()
    }

    @Test func readOnlyRefusesWritesAndHostileNamesAreENOENT() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount(options: "ro")
        defer { mount.stop() }
        let group = Shell.ok("ls '\(mount.mountpoint)' | head -1").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!group.isEmpty)
        let touch = Shell.run("touch '\(mount.path(group))/x'")
        #expect(touch.status != 0 && touch.stderr.contains("Read-only file system"), "\(touch.stderr)")
        #expect(Shell.run("mkdir '\(mount.path(group))/d'").stderr.contains("Read-only file system"))
        for name in ["..%2f..%2fetc", "wKgz6lnduTeAMdrcAAEoRmXZPp870.jpeg", "fwAAAWsBfiSAPlHxAAGGoNxKx20300.bin.x", "a\\nb", "AAAAAAAAAAAAAAAAAAAAAAAAAAA0000000", String(repeating: "z", count: 200)] {
            let result = Shell.run("stat '\(mount.path(group))/M00/00/00/\(name)'")
            #expect(result.status != 0 && result.stderr.contains("No such file or directory"), "\(name): \(result.stderr)")
        }
        #expect(Shell.run("stat '\(mount.path(group))/M00/zz'").stderr.contains("No such file"))
        #expect(Shell.run("stat '\(mount.mountpoint)/nogroup'").stderr.contains("No such file"))
    }

    @Test func sigtermLeavesNoStaleMount() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount()
        defer { mount.cleanup() }
        #expect(isMounted(mount.mountpoint))
        let status = mount.stop()
        #expect(status == 0)
        #expect(!isMounted(mount.mountpoint))
        // fusermount3 -u ends it cleanly as well.
        try mount.start()
        Shell.ok("fusermount3 -u '\(mount.mountpoint)'")
        #expect(waitUntil(10) { !(mount.process?.isRunning ?? false) })
        #expect(mount.process?.wait() == 0)
        #expect(!isMounted(mount.mountpoint))
    }
}

}

extension MountE2E {
@Suite(.serialized) struct WriteSideE2ETests {
    func workdir(_ mount: TestMount) -> String { mount.workdir() }

    func fileID(_ path: String) throws -> FileID { try mountedFileID(path) }

    func makeTree(_ dir: String) {
        Shell.ok("""
            mkdir -p '\(dir)/sub/deeper' && head -c 10000 /dev/urandom > '\(dir)/a.txt' && chmod 640 '\(dir)/a.txt' && : > '\(dir)/empty' \
            && head -c 300000 /dev/urandom > '\(dir)/sub/b.bin' && ln -s a.txt '\(dir)/link' && echo x > '\(dir)/sub/deeper/c' \
            && chmod 700 '\(dir)/sub/deeper' && touch -h -d '2024-01-02 03:04:05' '\(dir)/a.txt' '\(dir)/sub/b.bin' '\(dir)/link' '\(dir)/sub'
            """)
    }

    @Test func cpRsyncTarMvRm() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount()
        defer { mount.stop() }
        let work = workdir(mount)
        let src = mount.root + "/src"
        makeTree(src)
        // cp and cp -a
        Shell.ok("cp '\(src)/sub/b.bin' '\(work)/plain.bin'")
        #expect(sha256(work + "/plain.bin") == sha256(src + "/sub/b.bin"))
        Shell.ok("cp -a '\(src)' '\(work)/cpa'")
        Shell.ok("diff -r '\(src)' '\(work)/cpa'")
        #expect(Shell.ok("stat -c '%a %Y' '\(work)/cpa/a.txt'") == Shell.ok("stat -c '%a %Y' '\(src)/a.txt'"))
        #expect(Shell.ok("stat -c '%a' '\(work)/cpa/sub/deeper'") == "700\n")
        // rsync -a: one upload per file, a second run transfers nothing.
        let uploads = mount.metric("fdfs_mount_uploads_total")
        Shell.ok("rsync -a '\(src)/' '\(work)/rs/'")
        // The empty file is metadata only: no upload, and no file ID.
        #expect(mount.metric("fdfs_mount_uploads_total") - uploads == 3, "a.txt, b.bin, c")
        let noID = Shell.run("getfattr --only-values -n user.fdfs.file_id '\(work)/rs/empty'")
        #expect(noID.status != 0 && noID.stderr.contains("No such attribute"), "\(noID)")
        #expect(Shell.ok("rsync -a --itemize-changes '\(src)/' '\(work)/rs/'") == "")
        Shell.ok("diff -r '\(src)' '\(work)/rs'")
        #expect(Shell.ok("find '\(work)/rs' -name '.*'") == "")
        // tar -x
        Shell.ok("tar -C '\(src)' -cf '\(mount.root)/t.tar' . && mkdir '\(work)/tar' && tar -C '\(work)/tar' -xf '\(mount.root)/t.tar'")
        Shell.ok("diff -r '\(src)' '\(work)/tar'")
        // mv is a rename: same file ID, no upload.
        let before = try fileID(work + "/plain.bin")
        let count = mount.metric("fdfs_mount_uploads_total")
        Shell.ok("mv '\(work)/plain.bin' '\(work)/moved.bin' && mv '\(work)/cpa' '\(work)/cpa2'")
        #expect(try fileID(work + "/moved.bin") == before)
        #expect(mount.metric("fdfs_mount_uploads_total") == count)
        // O_TRUNC overwrite: new ID, old one deleted.
        Shell.ok("cp '\(src)/a.txt' '\(work)/moved.bin'")
        let after = try fileID(work + "/moved.bin")
        #expect(after != before)
        // Deleted on the storage that has it at once, on its replica when the delete syncs.
        await expectGone([before], client)
        // rm -rf removes every file from the cluster.
        var ids: [FileID] = []
        for line in Shell.ok("find '\(work)' -type f -size +0").split(separator: "\n") { ids.append(try fileID(String(line))) }
        // moved.bin and a.txt, b.bin and c in each of cpa2, rs and tar (the empty files have no ID).
        #expect(ids.count == 10)
        Shell.ok("rm -rf '\(work)'")
        #expect(!FileManager.default.fileExists(atPath: work))
        await expectGone(ids, client)
        await client.shutdown()
    }

    /// Waits until no storage has the files (see ``expectGoneFromCluster(_:_:sourceLocation:)``).
    func expectGone(_ ids: [FileID], _ client: FDFSClient, sourceLocation: SourceLocation = #_sourceLocation) async {
        await expectGoneFromCluster(ids, client, sourceLocation: sourceLocation)
    }

    @Test func aLargeFileIsStreamedWhileWrittenAndEndsAsANormalFile() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount(options: "stream_threshold=4M")
        defer { mount.stop() }
        let work = workdir(mount)
        let local = localFile(24_000_000, in: mount.root)
        let streamed = mount.metric("fdfs_mount_streamed_uploads_total")
        Shell.ok("cp '\(local.path)' '\(work)/big.bin'")
        #expect(mount.metric("fdfs_mount_streamed_uploads_total") - streamed == 1)
        let id = try fileID(work + "/big.bin")
        // REGENERATE_APPENDER_FILENAME made it an ordinary file whose name has the size and CRC.
        #expect(id.kind == .normal && id.fileExtension == "bin")
        #expect(id.generated.size == 24_000_000 && id.generated.crc32 == CRC32.checksum(local.bytes))
        let info = try await client.fileInfo(id)
        #expect(info.size == 24_000_000)
        #expect(Array(try await client.download(id, maxSize: 32 << 20).readableBytesView) == local.bytes)
        Shell.run("echo 3 > /proc/sys/vm/drop_caches")
        #expect(sha256(work + "/big.bin") == sha256(local.path))
        Shell.ok("rm -rf '\(work)'")
        await client.shutdown()
    }

    @Test func parallelWriters() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount()
        defer { mount.stop() }
        let work = workdir(mount)
        let script = (0..<8).map { w in
            "(mkdir '\(work)/w\(w)' && for i in $(seq 1 200); do printf 'writer \(w) file %s\\n' $i > '\(work)/w\(w)/f'$i || exit 1; done) &"
        }.joined(separator: " ") + " wait"
        Shell.ok(script, timeout: 600)
        #expect(Shell.ok("find '\(work)' -type f | wc -l").trimmingCharacters(in: .whitespacesAndNewlines) == "1600")
        Shell.run("echo 3 > /proc/sys/vm/drop_caches")
        #expect(Shell.ok("cat '\(work)/w7/f200'") == "writer 7 file 200\n")
        #expect(Shell.ok("cat '\(work)/w0/f1'") == "writer 0 file 1\n")
        let exported = Shell.ok("'\(try TestMount.binary())' export '\(mount.mountpoint)' | grep -c '/e2e-'")
        #expect(exported.trimmingCharacters(in: .whitespacesAndNewlines) == "1600")
        Shell.ok("rm -rf '\(work)'", timeout: 600)
    }

    @Test func spoolFullIsENOSPCAndNothingIsLost() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount(options: "spool_size=4M")
        defer { mount.stop() }
        let work = workdir(mount)
        let small = localFile(1_000_000, in: mount.root)
        Shell.ok("cp '\(small.path)' '\(work)/kept'")
        let big = Shell.run("dd if=/dev/urandom of='\(work)/big' bs=1M count=8 2>&1")
        #expect(big.status != 0 && big.stdout.contains("No space left on device"), "\(big.stdout)")
        #expect(sha256(work + "/kept") == sha256(small.path))
        Shell.ok("cp '\(small.path)' '\(work)/after'")
        #expect(sha256(work + "/after") == sha256(small.path))
        Shell.ok("rm -rf '\(work)'")
    }

    @Test func killDashNineThenRemountLosesNothingAcknowledged() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount()
        defer { mount.stop() }
        let work = workdir(mount)
        var files: [(String, String)] = []
        for i in 0..<20 {
            let local = localFile(50_000 + i, in: mount.root)
            Shell.ok("cp '\(local.path)' '\(work)/f\(i)'")
            files.append((work + "/f\(i)", sha256(local.path)))
        }
        // A writer still busy when the process dies (one open, never closed: no dup, no flush).
        let busy = try? ChildProcess("/usr/bin/python3", ["-c", "import time\nf = open('\(work)/open', 'wb', buffering=0)\nwhile True:\n    f.write(b'data\\n'); time.sleep(0.01)"])
        // Crash only once the writer has written something.
        let writing = waitUntil(10) { ((try? FileManager.default.attributesOfItem(atPath: work + "/open")[.size] as? Int) ?? 0) > 0 }
        #expect(writing, "the busy writer never wrote")
        mount.crash()
        busy?.signal(SIGKILL)
        busy?.wait()
        #expect(!isMounted(mount.mountpoint))
        try mount.start()
        for (path, hash) in files { #expect(sha256(path) == hash, "\(path)") }
        // The never-closed file is gone (not a dangling name) and the mount works on.
        #expect(!FileManager.default.fileExists(atPath: work + "/open"))
        Shell.ok("echo again > '\(work)/again'")
        #expect(Shell.ok("cat '\(work)/again'") == "again\n")
        let ids = try files.map { try fileID($0.0) }
        Shell.ok("rm -rf '\(work)'")
        await expectGone(ids, client)
        await client.shutdown()
    }
}

}

extension MountE2E {
/// Tests that stop and start cluster servers (FDFS_TEST_CLUSTER_DIR + Scripts/cluster, or
/// FDFS_TEST_CLUSTER_CTL).
@Suite(.serialized) struct FailureE2ETests {
    @Test func trackerDownDuringClose() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount()
        defer {
            try? TestCluster.control("start-tracker")
            mount.stop()
        }
        let group = Shell.ok("ls '\(mount.mountpoint)' | head -1").trimmingCharacters(in: .whitespacesAndNewlines)
        let file = mount.path(group) + "/tracker-down-" + UUID().uuidString.prefix(6)
        let local = mount.root + "/local"
        FileManager.default.createFile(atPath: local, contents: Data("written while the tracker was down\n".utf8))
        try TestCluster.control("stop-tracker")
        // cp checks close() (a shell redirection would not).
        let result = Shell.run("cp '\(local)' '\(file)'")
        #expect(result.status != 0 && result.stderr.contains("Input/output error"), "\(result.stderr)")
        // The data is kept and still readable; once the tracker is back it is uploaded.
        #expect(Shell.ok("cat '\(file)'") == "written while the tracker was down\n")
        try TestCluster.control("start-tracker")
        #expect(waitUntil(60) { Shell.run("getfattr --only-values -n user.fdfs.file_id '\(file)'").status == 0 }, "\(mount.log)")
        Shell.ok("rm -f '\(file)'")
    }

    @Test func storageStoppedMidReadFailsOver() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount(options: "block_size=256K,readahead=512K,stall_timeout=1,cache=always")
        var stopped = "2"
        defer {
            try? TestCluster.control("start-storage \(stopped)")
            mount.stop()
        }
        let file = localFile(40_000_000, in: mount.root)
        // group1 of Scripts/cluster has two storages (127.0.0.2 = s1, 127.0.0.3 = s2).
        let id = try await client.upload(filePath: file.path, options: UploadOptions(group: "group1"))
        // Wait until a second storage holds the file (replication is asynchronous).
        // The tracker names a replica only once that replica reports having synced something
        // newer than the file (reference §2.3), so keep uploading small files to the group.
        var replicas: [StorageEndpoint] = []
        var nudges: [FileID] = []
        _ = await Processes.wait(for: 90, poll: 0.5) {
            replicas = (try? blockingFetchAll(client, id)) ?? []
            if replicas.count >= 2 { return true }
            if let nudge = try? await client.upload(Array("nudge".utf8), options: UploadOptions(group: "group1")) { nudges.append(nudge) }
            return false
        }
        for nudge in nudges { try? await client.delete(nudge) }
        guard replicas.count >= 2 else { throw HarnessError("the cluster needs two storages in \(id.group) for the failover test") }
        let reader = try ChildProcess("/bin/bash", ["-c", "cat '\(mount.path(id.description))' | sha256sum > '\(mount.root)/sum'"])
        // Stop a storage only once the read is under way (the first block is in the cache:
        // cache=always, since a file streamed once is not cached by default).
        let started = waitUntil(30) {
            let cache = mount.stateDir + "/cache"
            return (FileManager.default.enumerator(atPath: cache)?.allObjects.count ?? 0) > 1
        }
        #expect(started, "the read never started")
        // Stop the storage the tracker sends readers to first.
        if let first = try? await client.tracker.queryFetch(id), first.ip == "127.0.0.2" { stopped = "1" }
        try TestCluster.control("stop-storage \(stopped)")
        #expect(waitUntil(120) { !reader.isRunning })
        #expect(String((try? String(contentsOfFile: mount.root + "/sum", encoding: .utf8))?.prefix(64) ?? "") == sha256(file.path))
        try? await client.delete(id)
        await client.shutdown()
    }

    /// Issue 15 item 3: the source of a fresh file is killed in the middle of a read through the
    /// mount, after the other member copied the file but before the tracker names that member
    /// (it has not reported a sync timestamp past the file's, so QUERY_FETCH_ALL named only the
    /// source when the read began). The mount must find the member itself.
    @Test func aFreshFileIsReadFromTheOtherMemberWhenItsSourceIsKilledMidRead() async throws {
        try await readWhileTheSourceIsKilled(options: "block_size=256K,readahead=512K,stall_timeout=1,cache=always") { mount in
            (FileManager.default.enumerator(atPath: mount.stateDir + "/cache")?.allObjects.count ?? 0) > 1
        }
    }

    /// The same with the default options, where the READs of a large file read once are
    /// streamed from the storages' sockets through pipes: a failed stream is read through the
    /// blocks, which fail over.
    @Test func aStreamedReadGoesOnFromTheOtherMemberWhenItsSourceIsKilled() async throws {
        try await readWhileTheSourceIsKilled(options: "stall_timeout=1") { mount in
            mount.metric("fdfs_mount_streamed_reads_total") > 2
        }
    }

    /// Reads a fresh 24 MiB file of group1 through a mount with `options`, slowly, and kills its
    /// source storage once `started` says the read is under way; the read must end with the
    /// file's bytes and no error.
    func readWhileTheSourceIsKilled(options: String, started: @escaping (TestMount) -> Bool) async throws {
        let client = try TestCluster.client()
        let mount = try TestMount(options: options)
        defer { mount.stop() }
        let file = localFile(24 << 20, in: mount.root)
        let id = try await client.upload(filePath: file.path, options: UploadOptions(group: "group1"))
        let source = try await client.fileInfo(id, computeCRC32: false).sourceIP
        // group1 of Scripts/cluster: 127.0.0.2 = s1, 127.0.0.3 = s2.
        guard source == "127.0.0.2" || source == "127.0.0.3" else { throw HarnessError("unexpected source \(source) in group1") }
        let killed = source == "127.0.0.2" ? "1" : "2"
        let members = try await client.tracker.listStorages(group: "group1").map { StorageEndpoint(ip: $0.ip, port: Int($0.storagePort)) }
        guard let other = members.first(where: { $0.ip != source }) else { throw HarnessError("the failover test needs two storages in group1") }
        let copied = await Processes.wait(for: 60, poll: 0.1) {
            var last: [UInt8] = []
            try? await client.downloadOnce(id, from: other, offset: Int64(file.bytes.count) - 1, length: 1) { last += Array($0.readableBytesView) }
            return last.count == 1
        }
        guard copied else { throw HarnessError("\(other) did not receive \(id) within 60 s") }
        // A slow reader (1 MiB every 50 ms, one open file), so the kill lands in the middle of the read.
        let path = mount.path(id.description)
        let slowRead = "import hashlib, sys, time\nh = hashlib.sha256()\nwith open(sys.argv[1], 'rb') as f:\n    while b := f.read(1 << 20):\n        h.update(b); time.sleep(0.05)\nprint(h.hexdigest())"
        let reader = try ChildProcess("python3", ["-c", slowRead, path], stdout: .file(mount.root + "/sum"), stderr: .file(mount.root + "/reader.err"))
        #expect(waitUntil(30) { started(mount) }, "the read never started")
        try TestCluster.control("kill-storage \(killed)")
        defer { try? TestCluster.control("start-storage \(killed)") }
        #expect(waitUntil(120) { !reader.isRunning })
        let errors = (try? String(contentsOfFile: mount.root + "/reader.err", encoding: .utf8)) ?? ""
        #expect(errors.isEmpty, "the reader failed: \(errors)")
        #expect(String((try? String(contentsOfFile: mount.root + "/sum", encoding: .utf8))?.prefix(64) ?? "") == sha256(file.path))
        try? await client.delete(id)
        await client.shutdown()
    }
}

}

func blockingFetchAll(_ client: FDFSClient, _ id: FileID) throws -> [StorageEndpoint] {
    let box = ResultBox()
    let semaphore = DispatchSemaphore(value: 0)
    Task {
        box.endpoints = try? await client.tracker.queryFetchAll(id)
        semaphore.signal()
    }
    semaphore.wait()
    return box.endpoints ?? []
}

final class ResultBox: @unchecked Sendable {
    var endpoints: [StorageEndpoint]?
}
