import FDFSMount
import Foundation
import Testing
import enum FDFSTestSupport.Vectors

/// The option lists in README.md, SEMANTICS.md and the usage text name exactly the options the
/// parser accepts (``MountOptionKey``, over which the parser switches exhaustively).
@Suite struct OptionDocsTests {
    static let accepted = Set(MountOptionKey.allCases.map(\.rawValue))

    /// Option names in `text`: each word's part before `=`, if it looks like an option name.
    static func optionNames(in text: Substring) -> Set<String> {
        var names = Set<String>()
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "`" || $0 == "," }) {
            let name = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
            if !name.isEmpty, name.allSatisfy({ $0.isLowercase || $0 == "_" }) { names.insert(String(name)) }
        }
        return names
    }

    static func document(_ name: String) throws -> String {
        try String(contentsOf: Vectors.packageRoot.appendingPathComponent(name), encoding: .utf8)
    }

    /// The text between `start` and the next `end` after it.
    static func span(_ text: String, from start: String, to end: String) throws -> Substring {
        let from = try #require(text.range(of: start), "'\(start)' not found")
        let to = try #require(text.range(of: end, range: from.upperBound..<text.endIndex), "'\(end)' not found after '\(start)'")
        return text[from.upperBound..<to.lowerBound]
    }

    @Test func everyOptionParsesWithItsExample() throws {
        for key in MountOptionKey.allCases {
            var options = MountOptions()
            let item = key.example.map { "\(key.rawValue)=\($0)" } ?? key.rawValue
            #expect(throws: Never.self, "\(item)") { try options.parse(item) }
            #expect(key.takesValue == (key.example != nil), "\(key.rawValue)")
            if key.takesValue {
                #expect(throws: FSError.self, "\(key.rawValue) without a value") { try options.parse(key.rawValue) }
            }
        }
        var options = MountOptions()
        #expect(throws: FSError.self) { try options.parse("no_such_option") }
        #expect(throws: Never.self) { try options.parse("noatime,_netdev,x-systemd.automount") }
    }

    /// `max_read=` reaches libfuse as it is written and sets the kernel's READ size: anything
    /// but a number of bytes (at least a page) is refused by name at parse time.
    @Test func maxReadTakesBytes() throws {
        for bad in ["max_read=1M", "max_read=abc", "max_read=0", "max_read=-4096", "max_read=4095"] {
            var options = MountOptions()
            let error = try #require(throws: FSError.self, "\(bad)") { try options.parse(bad) }
            #expect(error.message.contains("max_read"), "\(error.message)")
        }
        var options = MountOptions()
        try options.parse("max_read=524288,fsname=ours,subtype=fdfsx")
        #expect(options.maxRead == 524288 && options.kernelMaxRead == 524288)
        #expect(options.fsname == "ours" && options.subtype == "fdfsx")
    }

    /// Without `max_read=`, READs are capped at what a spliced reply fits (896 KiB) while
    /// streamed READs are spliced, and left to libfuse with `nosplice` or `direct_io`.
    @Test func maxReadDefaultsToWhatASplicedReplyFits() throws {
        var options = MountOptions()
        #expect(options.maxRead == nil && options.kernelMaxRead == 917_504)
        var direct = MountOptions()
        try direct.parse("direct_io")
        #expect(direct.kernelMaxRead == 0, "direct_io handles do not stream")
        try options.parse("nosplice")
        #expect(options.kernelMaxRead == 0)
        try options.parse("max_read=131072")
        #expect(options.kernelMaxRead == 131_072)
    }

    @Test func readmeListsEveryOption() throws {
        let list = try Self.span(Self.document("README.md"), from: "Options: `", to: "`.")
        #expect(Self.optionNames(in: list) == Self.accepted)
    }

    @Test func semanticsListsEveryOption() throws {
        let section = try Self.span(Self.document("SEMANTICS.md"), from: "## Mount options", to: "\n## ")
        let list = try Self.span(String(section), from: "`", to: "`")
        #expect(Self.optionNames(in: list) == Self.accepted)
    }

    @Test func usageListsEveryOption() throws {
        let list = try Self.span(MountOptions.usage, from: "options (-o, comma-separated):", to: "(Prometheus")
            + (try Self.span(MountOptions.usage, from: "(Prometheus text at http://HOST:PORT/metrics)", to: "(passed to libfuse)"))
        #expect(Self.optionNames(in: list) == Self.accepted)
    }
}
