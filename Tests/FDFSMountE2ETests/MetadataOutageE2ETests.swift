import Foundation
import class FDFSTestSupport.ChildProcess
import struct FDFSTestSupport.TestPostgresServer
import Testing

/// A real mount on PostgreSQL whose server stops during a copy (SEMANTICS.md, "metadata engine
/// unreachable"): the copies that meet the outage fail with EIO, the mount logs the outage once
/// and reconnects by itself when the server is back, and every copy that succeeded (close()
/// returned 0) is there with its bytes.
@Suite(.serialized) struct MetadataOutageE2ETests {
    @Test func copiesDuringAnOutageFailCleanlyAndTheMountRecovers() throws {
        let server = try TestPostgresServer()
        let mount = try TestMount(options: try SharedNamespaceE2ETests.sharedMetaOption() + ",meta_timeout=2")
        defer { mount.stop() }
        let dir = mount.workdir()
        let local = localFile(20_000, in: mount.root)
        let status = mount.root + "/copies", stop = mount.root + "/stop"

        // Copies one file after another until told to stop; one line per copy: ok N / fail N.
        let loop = "i=0; while [ ! -e '\(stop)' ]; do i=$((i+1)); if cp '\(local.path)' '\(dir)/f'$i 2>/dev/null; then echo ok $i; else echo fail $i; fi >> '\(status)'; done"
        let copier = try ChildProcess("/bin/bash", ["-c", loop])
        defer {
            FileManager.default.createFile(atPath: stop, contents: nil)
            if copier.wait(timeout: 30) == nil { _ = copier.kill9() }
        }
        func lines() -> [Substring] { ((try? String(contentsOfFile: status, encoding: .utf8)) ?? "").split(separator: "\n") }
        func count(_ word: String) -> Int { lines().filter { $0.hasPrefix(word + " ") }.count }

        #expect(waitUntil(60, { count("ok") >= 10 }), "the copies did not start: \(lines().suffix(3))")
        try server.stop()
        var restarted = false
        defer { if !restarted { try? server.start() } }
        let stopped = ContinuousClock.now
        #expect(waitUntil(30, { count("fail") >= 3 }), "no copy failed while PostgreSQL was stopped: \(lines().suffix(3))")
        #expect(ContinuousClock.now - stopped < .seconds(20))
        try server.start()
        restarted = true
        let failedBefore = count("fail")
        #expect(waitUntil(30, { lines().last?.hasPrefix("ok ") == true && count("ok") > 0 }), "the mount did not recover: \(lines().suffix(3))")
        let okAfter = count("ok")
        #expect(waitUntil(30, { count("ok") >= okAfter + 5 }), "copies did not go on after the restart: \(lines().suffix(3))")
        FileManager.default.createFile(atPath: stop, contents: nil)
        #expect(waitUntil(30, { !copier.isRunning }))

        // Every acknowledged copy is there, byte-identical.
        let acknowledged = lines().filter { $0.hasPrefix("ok ") }.map { $0.dropFirst(3) }
        #expect(failedBefore >= 3 && acknowledged.count >= 15)
        let expected = sha256(local.path)
        for number in acknowledged {
            #expect(sha256(dir + "/f" + number) == expected, "f\(number) (acknowledged) differs or is missing")
        }
        // The outage is logged once when it starts and once when it ends, not per operation.
        let log = mount.log
        #expect(log.components(separatedBy: "metadata engine unreachable").count - 1 == 1, "outage lines:\n\(log)")
        #expect(log.components(separatedBy: "metadata engine reachable again").count - 1 == 1, "recovery lines:\n\(log)")
    }
}
