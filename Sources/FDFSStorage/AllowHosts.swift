import FDFSProtocol
import Foundation

/// The `allow_hosts` rule: `*`, IPv4 addresses, CIDR blocks (`10.0.0.0/8`) and bracket ranges
/// (`10.0.1.[1-15,20]`, `host[01-08].example.com`). Host names are compared with the peer's
/// address text as given; no DNS lookups are made.
public struct AllowHosts: Sendable {
    private var allowAll = false
    private var exact: Set<String> = []
    private var blocks: [(network: UInt32, mask: UInt32)] = []

    public static let all = AllowHosts(allowAll: true)

    private init(allowAll: Bool) { self.allowAll = allowAll }

    public init(patterns: [String]) throws(FDFSProtocolError) {
        for raw in patterns {
            let pattern = raw.trimmingCharacters(in: .whitespaces)
            if pattern.isEmpty { continue }
            if pattern == "*" { allowAll = true; continue }
            if let slash = pattern.firstIndex(of: "/") {
                guard let address = Self.ipv4(String(pattern[..<slash])), let bits = Int(pattern[pattern.index(after: slash)...]), (0...32).contains(bits) else {
                    throw FDFSProtocolError(.invalidConfig, "bad CIDR '\(pattern)'")
                }
                let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << UInt32(32 - bits)
                blocks.append((address & mask, mask))
                continue
            }
            for expanded in try Self.expand(pattern) { exact.insert(expanded) }
        }
    }

    /// Whether a peer with this address may connect.
    public func allows(_ address: String) -> Bool {
        if allowAll || exact.contains(address) { return true }
        guard let value = Self.ipv4(address) else { return false }
        return blocks.contains { value & $0.mask == $0.network }
    }

    static func ipv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, let octet = UInt8(part) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }

    /// Expands one `[a-b,c]` group (the C reader allows one per pattern), keeping the width of
    /// zero-padded bounds (`[01-08]`).
    static func expand(_ pattern: String) throws(FDFSProtocolError) -> [String] {
        guard let open = pattern.firstIndex(of: "[") else { return [pattern] }
        guard let close = pattern[open...].firstIndex(of: "]") else { throw FDFSProtocolError(.invalidConfig, "unclosed '[' in '\(pattern)'") }
        let prefix = pattern[..<open], suffix = pattern[pattern.index(after: close)...]
        var out: [String] = []
        for item in pattern[pattern.index(after: open)..<close].split(separator: ",") {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds.last!), low <= high, high - low < 65536 else {
                throw FDFSProtocolError(.invalidConfig, "bad range '\(item)' in '\(pattern)'")
            }
            let width = bounds[0].hasPrefix("0") ? bounds[0].count : 0
            for number in low...high {
                var text = String(number)
                if text.count < width { text = String(repeating: "0", count: width - text.count) + text }
                out.append(prefix + text + suffix)
            }
        }
        return out
    }
}
