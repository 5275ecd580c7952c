import FDFSProtocol
import NIOCore

/// One decoder under fuzzing: bytes in, and either nothing (the input was refused or decoded
/// consistently) or a finding that describes a broken invariant. A crash is a finding too: it
/// ends the process, which the test suite and libFuzzer both report with the input.
public struct FuzzTarget: Sendable {
    /// What seeds a target's corpus from the captured vectors.
    public enum Seeds: Sendable {
        /// Bodies of requests with these command codes.
        case requests([FDFSCommand])
        /// Requests with these command codes as `pkg_len` (8 bytes) followed by the body.
        case lengthAndRequests([FDFSCommand])
        /// Bodies of the responses to requests with these command codes.
        case responses([FDFSCommand])
        /// Whole frames (header and body) of every capture.
        case frames
        /// Text (file IDs, names, configuration lines) given by the target.
        case text([String])
    }

    public let name: String
    public let seeds: Seeds
    public let run: @Sendable ([UInt8]) -> String?

    public init(_ name: String, seeds: Seeds, run: @escaping @Sendable ([UInt8]) -> String?) {
        self.name = name
        self.seeds = seeds
        self.run = run
    }

    /// A body decoder whose decoded values must survive encoding: `decode(encode(v)) == v`.
    public static func body<T: Hashable & Sendable>(
        _ name: String, _ seeds: Seeds,
        decode: @escaping @Sendable (ByteBuffer) throws -> T,
        encode: (@Sendable (T) -> ByteBuffer)? = nil
    ) -> FuzzTarget {
        FuzzTarget(name, seeds: seeds) { bytes in
            guard let value = try? decode(ByteBuffer(bytes: bytes)) else { return nil }
            guard let encode else { return nil }
            let again = Result { try decode(encode(value)) }
            switch again {
            case .success(let decoded) where decoded == value: return nil
            case .success(let decoded): return "\(name): \(value) encodes to bytes that decode as \(decoded)"
            case .failure(let error): return "\(name): \(value) encodes to bytes its decoder refuses: \(error)"
            }
        }
    }

    /// A decoder of a request head followed by streamed content (`bodyLength` taken from the
    /// input's first 8 bytes, big-endian, as a frame header would give it).
    public static func head<T: Sendable>(
        _ name: String, _ commands: [FDFSCommand],
        decode: @escaping @Sendable (inout ByteBuffer, Int64) throws -> T
    ) -> FuzzTarget {
        FuzzTarget(name, seeds: .lengthAndRequests(commands)) { bytes in
            var buffer = ByteBuffer(bytes: bytes)
            let bodyLength = buffer.readInteger(as: Int64.self) ?? 0
            let before = buffer.readableBytes
            guard (try? decode(&buffer, bodyLength)) != nil else { return nil }
            if buffer.readableBytes > before { return "\(name): the decoder grew its input" }
            return nil
        }
    }

    /// A text decoder; `check` may test a decoded value's invariants.
    public static func text(_ name: String, samples: [String], check: @escaping @Sendable (String) -> String?) -> FuzzTarget {
        FuzzTarget(name, seeds: .text(samples)) { bytes in check(String(decoding: bytes, as: UTF8.self)) }
    }
}
