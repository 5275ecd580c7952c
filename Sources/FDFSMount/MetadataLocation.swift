/// Where the namespace lives: `-o meta=URL` (or `$FDFS_META_URL`, which keeps a password out
/// of `ps`). `sqlite` (the default) is `STATE_DIR/mapping.db`;
/// `postgres://USER[:PASS]@HOST[:PORT]/DB[?sslmode=disable][&schema=NAME]` is a PostgreSQL
/// database that several mounts may share.
public enum MetadataLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite
    case postgres(PostgresLocation)

    /// Parses `sqlite` or a `postgres://` (or `postgresql://`) URL.
    public init(parsing text: String) throws(FSError) {
        if text == "sqlite" {
            self = .sqlite
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(try PostgresLocation(parsing: text))
        } else {
            throw FSError(.invalid, "meta must be sqlite or postgres://USER[:PASS]@HOST[:PORT]/DB, not '\(text.prefix(16))…'")
        }
    }

    /// The location without its password (for logs).
    public var description: String {
        switch self {
        case .sqlite: "sqlite"
        case let .postgres(location): location.description
        }
    }
}

/// A PostgreSQL database (and optionally a schema in it) named by a URL.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    /// The schema the tables live in (`public` when not given); created when missing.
    public var schema: String?

    public init(user: String, password: String?, host: String, port: Int = 5432, database: String, schema: String? = nil) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.schema = schema
    }

    init(parsing text: String) throws(FSError) {
        func bad(_ why: String) -> FSError { FSError(.invalid, "meta: \(why) (postgres://USER[:PASS]@HOST[:PORT]/DB[?sslmode=disable])") }
        guard let scheme = text.range(of: "://") else { throw bad("no scheme") }
        var rest = Substring(text[scheme.upperBound...])
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard let at = rest.lastIndex(of: "@") else { throw bad("no USER@") }
        let credentials = rest[..<at]
        rest = rest[rest.index(after: at)...]
        guard let slash = rest.firstIndex(of: "/") else { throw bad("no /DB") }
        let hostPort = rest[..<slash]
        let database = Self.decoded(rest[rest.index(after: slash)...])
        let userPass = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        user = Self.decoded(userPass[0])
        password = userPass.count > 1 ? Self.decoded(userPass[1]) : nil
        if let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") {
            host = String(hostPort[..<colon])
            guard let value = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(value) else { throw bad("bad port") }
            port = value
        } else {
            host = String(hostPort)
            port = 5432
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !user.isEmpty, !host.isEmpty, !database.isEmpty else { throw bad("USER, HOST and DB are required") }
        self.database = database
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let key = String(parts[0]), value = parts.count > 1 ? Self.decoded(parts[1]) : ""
            switch key {
            case "sslmode":
                guard value == "disable" else { throw bad("only sslmode=disable is supported so far (no TLS to the database yet)") }
            case "schema":
                guard !value.isEmpty, value.utf8.count <= 63,
                      value.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
                    throw bad("schema must be lowercase letters, digits and _")
                }
                schema = value
            default:
                throw bad("unknown parameter '\(key)'")
            }
        }
    }

    /// `%XX` escapes decoded (for passwords with `@`, `:` or `/`).
    static func decoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)" + (schema.map { "?schema=\($0)" } ?? "")
    }
}
