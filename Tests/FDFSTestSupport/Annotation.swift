/// Reads the `key=value` fields of a vector annotation, for example
/// `STORAGE_PROTO_CMD_UPLOAD_FILE store_path_index=0 file_size=14 ext='txt' content=b'hello\n'`.
///
/// Values are `'quoted text'`, Python bytes literals `b'...'` (with `\n`, `\xNN` escapes) or bare
/// words. This parser is deliberately independent of the module under test.
public struct Annotation {
    public let text: String

    public init(_ text: String) { self.text = text }

    /// The raw characters after ` key=` (or at the start), or nil.
    private func valueStart(_ key: String) -> Substring? {
        var search = text[...]
        while let range = search.range(of: key + "=") {
            let before = range.lowerBound == text.startIndex ? " " : text[text.index(before: range.lowerBound)]
            if before == " " || before == "(" { return text[range.upperBound...] }
            search = text[range.upperBound...]
        }
        return nil
    }

    /// A quoted or bare value as text.
    public func string(_ key: String) -> String? {
        guard let rest = valueStart(key) else { return nil }
        if rest.hasPrefix("b'") || rest.hasPrefix("b\"") { return bytes(key).map { String(decoding: $0, as: UTF8.self) } }
        if let quote = rest.first, quote == "'" {
            let body = rest.dropFirst()
            guard let end = body.firstIndex(of: quote) else { return nil }
            return String(body[..<end])
        }
        return String(rest.prefix { $0 != " " })
    }

    public func int(_ key: String) -> Int? { string(key).flatMap { Int($0) } }

    /// A Python bytes literal (`b'...'` or `b"..."`).
    public func bytes(_ key: String) -> [UInt8]? {
        guard let rest = valueStart(key), rest.first == "b", let quote = rest.dropFirst().first,
              quote == "'" || quote == "\"" else { return nil }
        var out: [UInt8] = []
        var chars = Array(rest.dropFirst(2).utf8)[...]
        while let char = chars.popFirst() {
            if char == UInt8(ascii: quote == "'" ? "'" : "\"") { return out }
            guard char == UInt8(ascii: "\\") else { out.append(char); continue }
            guard let escape = chars.popFirst() else { return nil }
            switch escape {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "x"):
                guard chars.count >= 2, let value = UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                out.append(value)
                chars = chars.dropFirst(2)
            default: out.append(escape) // \\ \' \"
            }
        }
        return nil
    }

    /// `status=N` of an `ERROR status=N` annotation.
    public var errorStatus: Int? {
        guard let range = text.range(of: "ERROR status=") else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }

    /// `(ip field N bytes)`.
    public var ipFieldWidth: Int? {
        guard let range = text.range(of: "(ip field ") else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }
}

/// A cursor over raw bytes that reads fields at the offsets the reference gives, without the
/// module's own readers: the independent oracle for records whose annotations carry no values.
public struct RawCursor {
    private var bytes: ArraySlice<UInt8>

    public init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    public var isAtEnd: Bool { bytes.isEmpty }
    public var remaining: Int { bytes.count }

    public mutating func take(_ count: Int) -> ArraySlice<UInt8> {
        precondition(bytes.count >= count, "raw record shorter than the reference layout")
        defer { bytes = bytes.dropFirst(count) }
        return bytes.prefix(count)
    }

    /// A NUL-padded text field.
    public mutating func text(_ width: Int) -> String {
        let field = take(width)
        return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }

    public mutating func int64() -> Int64 { take(8).reduce(0) { $0 << 8 | Int64($1) } }
    public mutating func int32() -> Int32 { Int32(bitPattern: take(4).reduce(0) { $0 << 8 | UInt32($1) }) }
    public mutating func byte() -> UInt8 { take(1).first! }
}
