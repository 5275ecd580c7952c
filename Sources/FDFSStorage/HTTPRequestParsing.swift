import Foundation

/// The pure parts of an HTTP download request: the request target and the Range header. No
/// I/O, so the fuzzer drives them directly (`FuzzTargets`).
public enum HTTPRequestParsing {
    /// A parsed request target.
    public struct Target: Sendable, Equatable {
        public var path: String
        public var query: [String: String]
        public var rawQuery: String?
    }

    /// What a Range header asks for.
    public enum Range: Sendable, Equatable {
        /// The bytes from the first to the second offset, both included.
        case range(Int64, Int64)
        /// Answered 416.
        case unsatisfiable
        /// Not a byte range: the whole file is sent.
        case ignore
    }

    /// Splits a request target into path and query. Nil (answered 400) when a percent-decoded
    /// query key or value holds a control character (`%00`, `%0d%0a`, …): such text has no
    /// business in a file name or token and could not go into a response header.
    public static func target(_ uri: String) -> Target? {
        var text = Substring(uri)
        if text.hasPrefix("http://") || text.hasPrefix("https://") {
            text = text.drop { $0 != ":" }.dropFirst(3)
            text = text.firstIndex(of: "/").map { text[$0...] } ?? "/"
        }
        var rawQuery: String?
        if let mark = text.firstIndex(of: "?") {
            rawQuery = String(text[text.index(after: mark)...])
            text = text[..<mark]
        }
        var query: [String: String] = [:]
        for pair in (rawQuery ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[1])) : ""
            guard !hasControlCharacter(key), !hasControlCharacter(value) else { return nil }
            if query[key] == nil { query[key] = value }
        }
        return Target(path: String(text), query: query, rawQuery: rawQuery)
    }

    static func hasControlCharacter(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// One `bytes=` range (reference §7.4); several ranges are refused (no multipart replies).
    public static func range(_ header: String, size: Int64) -> Range {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return .ignore }
        let specs = text.dropFirst(6).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard specs.count == 1, let spec = specs.first, let dash = spec.firstIndex(of: "-") else { return .unsatisfiable }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let suffix = Int64(last), suffix > 0, size > 0 else { return .unsatisfiable }
            return .range(max(size - suffix, 0), size - 1)
        }
        guard let start = Int64(first), start >= 0 else { return .unsatisfiable }
        guard start < size else { return .unsatisfiable }
        var end = size - 1
        if !last.isEmpty {
            guard let value = Int64(last) else { return .unsatisfiable }
            end = min(value, size - 1)
        }
        guard start <= end else { return .unsatisfiable }
        return .range(start, end)
    }
}
