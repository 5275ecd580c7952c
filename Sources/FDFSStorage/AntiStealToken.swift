import Crypto

/// The anti-steal token of fastdfs-nginx-module (reference §7.2):
/// lowercase hex of MD5(remote filename + secret key + decimal timestamp).
public enum AntiStealToken {
    public static func make(remoteFilename: String, secret: String, timestamp: Int64) -> String {
        let digest = Insecure.MD5.hash(data: Array((remoteFilename + secret + String(timestamp)).utf8))
        return digest.map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
        }.joined()
    }

    /// Why a token was refused, or nil when it is good.
    public static func check(token: String, timestamp: Int64, remoteFilename: String, secret: String, ttl: Int, now: Int64) -> String? {
        guard token.utf8.count == 32 else { return "token is not 32 characters" }
        // A hostile `ts` (e.g. Int64.min) must not overflow the age: that trapped the server.
        let (age, overflow) = now.subtractingReportingOverflow(timestamp)
        if timestamp != 0 && (overflow || age > Int64(ttl)) { return "token expired" }
        guard make(remoteFilename: remoteFilename, secret: secret, timestamp: timestamp) == token.lowercased() else { return "token mismatch" }
        return nil
    }
}
