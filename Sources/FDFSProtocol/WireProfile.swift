/// Which of FastDFS's historical layouts to write (reference §10). Decoders accept every
/// layout and tell them apart by length; encoders need to be told.
public struct WireProfile: Hashable, Sendable {
    /// Width of full IP fields (16 = `INET_ADDRSTRLEN`, 46 = `INET6_ADDRSTRLEN`). Query
    /// replies use one byte less.
    public var ipFieldWidth: Int
    /// The ≤ 6.10 listing layout (105-byte group and 612-byte storage records) instead of the
    /// ≥ 6.13.1 one (113 and 487/517 bytes).
    public var classicListing: Bool
    /// FETCH_ALL answers with a port per server (≥ 6.16) instead of the classic layout.
    public var fetchAllWithPorts: Bool

    public init(ipFieldWidth: Int = 16, classicListing: Bool = false, fetchAllWithPorts: Bool = true) {
        self.ipFieldWidth = ipFieldWidth
        self.classicListing = classicListing
        self.fetchAllWithPorts = fetchAllWithPorts
    }

    /// FastDFS 6.16 in its default IPv4 mode (`response_ip_addr_size = auto`).
    public static let v6_16 = WireProfile()
    /// FastDFS 6.16 with `response_ip_addr_size = IPv6` (46-byte IP fields).
    public static let v6_16IPv6Sized = WireProfile(ipFieldWidth: 46)
    /// FastDFS ≤ 6.10: 16-byte IPs, classic listing records, classic FETCH_ALL.
    public static let classic = WireProfile(ipFieldWidth: 16, classicListing: true, fetchAllWithPorts: false)

    /// Width of IP fields in tracker query replies (no terminator slot).
    public var queryIPWidth: Int { ipFieldWidth - 1 }

    /// Width of the brief IP field used between storages and trackers (always the 46-byte
    /// build size in ≥ 6.11 servers).
    public static let briefIPWidth = 46

    public static let groupNameWidth = 16
}
