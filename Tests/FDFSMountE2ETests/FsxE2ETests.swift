import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The fdfs-fsx binary next to fdfs-mount.
func fsxBinary() throws -> String {
    let mountBinary = try TestMount.binary()
    let path = URL(fileURLWithPath: mountBinary).deletingLastPathComponent().path + "/fdfs-fsx"
    guard FileManager.default.isExecutableFile(atPath: path) else { throw HarnessError("\(path) is missing (swift build --product fdfs-fsx)") }
    return path
}

/// Runs fdfs-fsx on a new file in `mount` with a shadow file in the mount's temp dir; its
/// output. The test fails (with the exerciser's report: seed, step, operation log) on any
/// mismatch.
@discardableResult
func runFsx(_ mount: TestMount, seed: UInt64, ops: Int, extra: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let binary = try fsxBinary()
    let file = mount.workdir() + "/fsx-\(seed).bin"
    let shadow = mount.root + "/shadow-\(seed).bin"
    let result = Shell.run("'\(binary)' --seed \(seed) --ops \(ops) --max-size 3M \(extra) '\(file)' '\(shadow)'", timeout: 180)
    #expect(result.status == 0, "fdfs-fsx seed \(seed) (\(mount.options)):\n\(result.stdout)\n\(result.stderr)\nmount log:\n\(mount.log.suffix(3000))",
            sourceLocation: sourceLocation)
    return result.stdout
}

extension MountE2E {
/// The random-operation exerciser on real mounts: a few hundred seeded operations per run,
/// every byte and the size compared with a shadow file after every step.
@Suite(.serialized) struct FsxE2ETests {
    @Test(arguments: [UInt64(1), 2, 3])
    func randomOperationsMatchAShadowFile(seed: UInt64) throws {
        let mount = try TestMount(options: "stream_threshold=256K")
        defer { mount.stop() }
        try runFsx(mount, seed: seed, ops: 300)
    }

    @Test(arguments: [UInt64(4), 5])
    func randomOperationsMatchAShadowFileInAppendableMode(seed: UInt64) throws {
        let mount = try TestMount(options: "appendable,stream_threshold=256K")
        defer { mount.stop() }
        try runFsx(mount, seed: seed, ops: 300)
    }
}
}
