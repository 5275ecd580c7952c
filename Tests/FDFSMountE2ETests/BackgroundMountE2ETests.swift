import Foundation
import struct FDFSTestSupport.ProcessResult
import Testing

/// `fdfs-mount` without `-f`: the command returns once the background process serves, or
/// fails with the reason when it cannot (it used to return 0 before the mapping store was even
/// opened, so an unreachable metadata engine looked like a started mount).
@Suite(.serialized) struct BackgroundMountE2ETests {
    /// A temporary mount point and state directory; unmounted at the end whatever happened.
    final class Place {
        let root = NSTemporaryDirectory() + "fdfs-bg-" + UUID().uuidString.prefix(8)
        var mountpoint: String { root + "/mnt" }
        var stateDir: String { root + "/state" }
        init() throws { try FileManager.default.createDirectory(atPath: root + "/mnt", withIntermediateDirectories: true) }
        func mount(_ options: String = "") throws -> ProcessResult {
            let opts = "state_dir=\(stateDir)" + (options.isEmpty ? "" : "," + options)
            return Shell.run("'\(try TestMount.binary())' '\(mountpoint)' -c '\(try TestCluster.clientConf())' -o '\(opts)'", timeout: 60)
        }
        /// Unmounts and waits until the background process has gone.
        func unmount() {
            _ = Shell.run("fusermount3 -u '\(mountpoint)' 2>/dev/null || umount -l '\(mountpoint)' 2>/dev/null", timeout: 20)
            _ = waitUntil(20) { Shell.run("pgrep -f '\(mountpoint)'").stdout.isEmpty }
        }
        deinit {
            unmount()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    @Test func aBackgroundMountReturnsOnceItServes() throws {
        let place = try Place()
        let result = try place.mount()
        #expect(result.status == 0, "\(result.stderr)")
        // No waiting: when the command has returned, the mount answers.
        #expect(isMounted(place.mountpoint) && answers(place.mountpoint))
        let file = place.mountpoint + "/" + Shell.ok("ls '\(place.mountpoint)' | head -1").trimmingCharacters(in: .whitespacesAndNewlines) + "/bg-\(UUID().uuidString.prefix(8)).txt"
        Shell.ok("printf 'in the background' > '\(file)'")
        #expect((try? String(contentsOfFile: file, encoding: .utf8)) == "in the background")
        Shell.ok("rm '\(file)'")
        place.unmount()
        #expect(!isMounted(place.mountpoint))
        #expect(Shell.run("pgrep -f '\(place.mountpoint)'").stdout.isEmpty, "the background process ended with its mount")
    }

    @Test func aBackgroundMountThatCannotOpenItsStateSaysWhyAndFails() throws {
        let place = try Place()
        let result = try place.mount("meta=postgres://nobody@127.0.0.1:1/nothing")
        #expect(result.status != 0)
        #expect(result.stderr.contains("cannot open the state directory") && result.stderr.contains("127.0.0.1:1"), "\(result.stderr)")
        #expect(!isMounted(place.mountpoint))
        #expect(Shell.run("pgrep -f '\(place.mountpoint)'").stdout.isEmpty, "no background process left")
    }
}
