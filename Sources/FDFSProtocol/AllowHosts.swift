import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `allow_hosts` rule of tracker.conf and storage.conf (reference §8.4): which peers may
/// connect. A disallowed peer is disconnected right after accept, without a reply.
///
/// Each value is one of: `*` (everyone), an IPv4 or IPv6 address, an IPv4 CIDR block
/// (`10.0.0.0/8`), or a pattern with one bracketed range list, expanded before matching:
/// `10.0.1.[1-15,20]`, `host[01-08].example.com` (zero padding is kept; names are resolved once,
/// when the rule is built).
public struct AllowHosts: Sendable, Hashable {
    private var allowAll: Bool
    private var addresses: Set<String>
    private var blocks: [IPv4Block]

    struct IPv4Block: Sendable, Hashable {
        var network: UInt32
        var mask: UInt32
    }

    /// Everyone may connect.
    public static let everyone = AllowHosts(allowAll: true, addresses: [], blocks: [])

    private init(allowAll: Bool, addresses: Set<String>, blocks: [IPv4Block]) {
        self.allowAll = allowAll
        self.addresses = addresses
        self.blocks = blocks
    }

    /// Builds the rule from every `allow_hosts` value. No values means everyone, as in FastDFS.
    /// `resolve` turns a host name into addresses (defaults to the system resolver); a value
    /// that is neither an address, a block, a range nor a resolvable name is an error.
    public init(values: [String], resolve: (String) -> [String] = AllowHosts.systemResolve) throws(AllowHostsError) {
        var allowAll = values.isEmpty
        var addresses = Set<String>()
        var blocks: [IPv4Block] = []
        for raw in values {
            let value = raw.trimmingCharacters(in: .whitespaces)
            if value.isEmpty { continue }
            if value == "*" {
                allowAll = true
                continue
            }
            if let slash = value.firstIndex(of: "/") {
                let base = String(value[..<slash])
                guard let network = Self.parseIPv4(base), let bits = Int(value[value.index(after: slash)...]), (0...32).contains(bits) else {
                    throw AllowHostsError(value: value, reason: "not an IPv4 CIDR block such as 10.0.0.0/8")
                }
                let mask: UInt32 = bits == 0 ? 0 : UInt32.max << UInt32(32 - bits)
                blocks.append(IPv4Block(network: network & mask, mask: mask))
                continue
            }
            for candidate in try Self.expand(value) {
                if let ipv4 = Self.parseIPv4(candidate) {
                    addresses.insert(Self.format(ipv4))
                } else if candidate.contains(":") {
                    addresses.insert(candidate.lowercased())
                } else {
                    let resolved = resolve(candidate)
                    guard !resolved.isEmpty else {
                        throw AllowHostsError(value: value, reason: "host '\(candidate)' cannot be resolved")
                    }
                    addresses.formUnion(resolved)
                }
            }
        }
        self.init(allowAll: allowAll, addresses: addresses, blocks: blocks)
    }

    /// Whether a peer with this IP text may connect.
    public func allows(_ ip: String) -> Bool {
        if allowAll { return true }
        var text = ip
        if text.hasPrefix("::ffff:"), Self.parseIPv4(String(text.dropFirst(7))) != nil { text = String(text.dropFirst(7)) }
        if let ipv4 = Self.parseIPv4(text) {
            if addresses.contains(Self.format(ipv4)) { return true }
            return blocks.contains { ipv4 & $0.mask == $0.network }
        }
        return addresses.contains(text.lowercased())
    }

    // MARK: Helpers

    /// Expands one bracketed range list (`a.b.c.[1-15,20]`); text without brackets is returned
    /// as is.
    static func expand(_ value: String) throws(AllowHostsError) -> [String] {
        guard let open = value.firstIndex(of: "[") else { return [value] }
        guard let close = value[open...].firstIndex(of: "]") else {
            throw AllowHostsError(value: value, reason: "'[' without ']'")
        }
        let prefix = value[..<open]
        let suffix = value[value.index(after: close)...]
        guard !suffix.contains("[") else { throw AllowHostsError(value: value, reason: "only one [range] is supported") }
        var result: [String] = []
        for item in value[value.index(after: open)..<close].split(separator: ",") {
            let parts = item.split(separator: "-", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard (1...2).contains(parts.count), let low = Int(parts[0]), let high = Int(parts.last!), low >= 0, low <= high, high - low < 65536 else {
                throw AllowHostsError(value: value, reason: "bad range item '\(item)'")
            }
            let width = parts[0].count > 1 && parts[0].hasPrefix("0") ? parts[0].count : 0
            for number in low...high {
                var digits = String(number)
                if digits.count < width { digits = String(repeating: "0", count: width - digits.count) + digits }
                result.append(prefix + digits + suffix)
            }
        }
        return result
    }

    static func parseIPv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), let octet = UInt8(part) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        return value
    }

    static func format(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)"
    }

    /// Resolves a host name with getaddrinfo; returns numeric addresses.
    public static func systemResolve(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var result: [String] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
                result.append(String(decoding: bytes, as: UTF8.self))
            }
            node = current.pointee.ai_next
        }
        return result
    }
}

/// A bad `allow_hosts` value.
public struct AllowHostsError: Error, Hashable, Sendable, CustomStringConvertible {
    public var value: String
    public var reason: String
    public var description: String { "allow_hosts '\(value)': \(reason)" }
}
