import Foundation
import Testing

/// One captured frame from `../shared/reference/vectors`.
struct CapturedFrame: Decodable {
    let cmd: Int
    let status: Int
    let pkg_len: Int
    let annotation: String
    let hex: String

    var bytes: [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
    }

    var body: [UInt8] { Array(bytes.dropFirst(10)) }
    var isRequest: Bool { cmd != 100 }
}

struct CapturedScenario: Decodable {
    let title: String
    let frames: [CapturedFrame]
}

/// Loads a scenario by file stem (e.g. "01_upload"); a missing vector directory fails the test.
func loadScenario(_ name: String) throws -> CapturedScenario {
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let url = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/reference/vectors/\(name).json")
    guard FileManager.default.fileExists(atPath: url.path) else {
        Issue.record("captured vectors missing at \(url.path): the tests need ../shared/reference/vectors next to the repository")
        throw CocoaError(.fileNoSuchFile)
    }
    return try JSONDecoder().decode(CapturedScenario.self, from: Data(contentsOf: url))
}
