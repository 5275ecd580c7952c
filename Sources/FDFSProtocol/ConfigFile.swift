import Foundation

/// A FastDFS configuration file (`tracker.conf`, `storage.conf`, `client.conf`, …) in
/// libfastcommon's ini dialect: `key = value`, `#` comments, `[section]` headers, repeated keys,
/// and `#include other.conf` resolved against the including file's directory.
///
/// Every value remembers its file and line, so a bad value can be reported precisely.
public struct FDFSConfig: Sendable {
    /// One `key = value` line.
    public struct Entry: Sendable, Hashable {
        public var key: String
        public var value: String
        public var file: String
        public var line: Int
    }

    /// Keys outside any section (included files add here too), in file order.
    public private(set) var entries: [Entry] = []
    /// Keys inside `[section]` blocks.
    public private(set) var sections: [String: [Entry]] = [:]

    /// Parses text. `file` names the source in errors and anchors relative includes; `loader`
    /// reads an included file (defaults to the file system).
    public init(
        text: String, file: String = "<string>",
        loader: (String) throws -> String = FDFSConfig.readFile
    ) throws(FDFSProtocolError) {
        var depth = 0
        try parse(text: text, file: file, loader: loader, section: nil, depth: &depth)
    }

    /// Reads and parses a file.
    public static func load(path: String) throws(FDFSProtocolError) -> FDFSConfig {
        let text: String
        do { text = try readFile(path) } catch {
            throw FDFSProtocolError(.invalidConfig, "\(path): cannot read: \(error.localizedDescription)")
        }
        return try FDFSConfig(text: text, file: path)
    }

    /// Reads a whole text file.
    public static func readFile(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    private mutating func parse(
        text: String, file: String, loader: (String) throws -> String, section: String?, depth: inout Int
    ) throws(FDFSProtocolError) {
        var section = section
        var lineNumber = 0
        // Split on any line break. Splitting on the Character "\n" would miss CRLF files: Swift
        // treats "\r\n" as one Character, so every line of such a file would run together.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            if line.hasPrefix("#include") {
                let rest = line.dropFirst("#include".count)
                guard let first = rest.first, first == " " || first == "\t" else { continue }
                let target = rest.trimmingCharacters(in: .whitespaces)
                guard !target.isEmpty else {
                    throw FDFSProtocolError(.invalidConfig, "\(file):\(lineNumber): #include without a file name")
                }
                let path = target.hasPrefix("/") ? target : (Self.directory(of: file) + "/" + target)
                guard depth < 16 else {
                    throw FDFSProtocolError(.invalidConfig, "\(file):\(lineNumber): #include nested too deeply (loop?)")
                }
                let included: String
                do { included = try loader(path) } catch {
                    throw FDFSProtocolError(.invalidConfig, "\(file):\(lineNumber): cannot include \(path): \(error.localizedDescription)")
                }
                depth += 1
                try parse(text: included, file: path, loader: loader, section: nil, depth: &depth)
                depth -= 1
                continue
            }
            if line.hasPrefix("#") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw FDFSProtocolError(.invalidConfig, "\(file):\(lineNumber): bad section header '\(line)'")
                }
                section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw FDFSProtocolError(.invalidConfig, "\(file):\(lineNumber): expected 'key = value', got '\(line)'")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else {
                throw FDFSProtocolError(.invalidConfig, "\(file):\(lineNumber): empty key")
            }
            let entry = Entry(key: key, value: value, file: file, line: lineNumber)
            if let section { sections[section, default: []].append(entry) } else { entries.append(entry) }
        }
    }

    private static func directory(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "." }
        return slash == file.startIndex ? "/" : String(file[..<slash])
    }

    // MARK: Lookups

    /// The first entry for `key` (global section).
    public func entry(_ key: String) -> Entry? { entries.first { $0.key == key } }

    /// The first value for `key`, or nil.
    public func string(_ key: String) -> String? { entry(key)?.value }

    /// Every value of a repeated key, in order.
    public func strings(_ key: String) -> [String] { entries.filter { $0.key == key }.map(\.value) }

    /// All distinct keys.
    public var keys: [String] {
        var seen = Set<String>()
        return entries.compactMap { seen.insert($0.key).inserted ? $0.key : nil }
    }

    /// An integer value; a non-integer is an error naming file and line.
    public func int(_ key: String, default fallback: Int) throws(FDFSProtocolError) -> Int {
        guard let entry = entry(key), !entry.value.isEmpty else { return fallback }
        guard let value = Int(entry.value) else { throw bad(entry, "an integer") }
        return value
    }

    /// A boolean: true/yes/on/1 are true, false/no/off/0 false; anything else is an error.
    public func bool(_ key: String, default fallback: Bool) throws(FDFSProtocolError) -> Bool {
        guard let entry = entry(key), !entry.value.isEmpty else { return fallback }
        switch entry.value.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw bad(entry, "a boolean (true/false)")
        }
    }

    /// A byte size with an optional K/M/G (or KB/MB/GB) suffix.
    public func size(_ key: String, default fallback: Int64) throws(FDFSProtocolError) -> Int64 {
        guard let entry = entry(key), !entry.value.isEmpty else { return fallback }
        guard let value = Self.parseSize(entry.value) else { throw bad(entry, "a size such as 256KB or 64MB") }
        return value
    }

    /// Parses `123`, `4K`, `256KB`, `64MB`, `2G`, `1T` (binary multiples).
    public static func parseSize(_ text: String) -> Int64? {
        var digits = text.uppercased()
        if digits.hasSuffix("B") && digits.count > 1 && !(digits.dropLast().last?.isNumber ?? true) { digits.removeLast() }
        var multiplier: Int64 = 1
        switch digits.last {
        case "K": multiplier = 1 << 10
        case "M": multiplier = 1 << 20
        case "G": multiplier = 1 << 30
        case "T": multiplier = 1 << 40
        default: break
        }
        if multiplier != 1 { digits.removeLast() }
        guard let value = Int64(digits.trimmingCharacters(in: .whitespaces)), value >= 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// The error for a value of the wrong type.
    public func bad(_ entry: Entry, _ expected: String) -> FDFSProtocolError {
        FDFSProtocolError(.invalidConfig, "\(entry.file):\(entry.line): \(entry.key) = '\(entry.value)' is not \(expected)")
    }
}

/// A `host:port` address as written in `tracker_server` and similar keys.
public struct ServerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST[:PORT]`, `[v6]:port`, and the inner/outer form `ip1,ip2:port` (the first
    /// address is used).
    public init(parsing text: String, defaultPort: Int) throws(FDFSProtocolError) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var host: Substring
        var port = defaultPort
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw FDFSProtocolError(.invalidConfig, "bad address '\(text)'") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let value = Int(rest.dropFirst()) else { throw FDFSProtocolError(.invalidConfig, "bad port in '\(text)'") }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else { throw FDFSProtocolError(.invalidConfig, "bad port in '\(text)'") }
            port = value
        } else {
            host = rest
        }
        if let comma = host.firstIndex(of: ",") { host = host[..<comma] }
        guard !host.isEmpty, (1...65535).contains(port) else { throw FDFSProtocolError(.invalidConfig, "bad address '\(text)'") }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
