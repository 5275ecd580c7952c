#if canImport(Glibc)
import Glibc
#endif

/// Bytes of a cached block for the kernel to splice straight from the cache file into the
/// READ reply (no copy through the mount's memory): `count` bytes at `offset` of `fd`. The
/// descriptor is open and the block's slot pinned while the span lives; both end when it is
/// released (after the reply).
public final class CachedSpan: Sendable {
    let cache: BlockCache
    let key: BlockKey
    /// Read-only descriptor of the cache file.
    public let fd: Int32
    /// Position of the bytes in the cache file.
    public let offset: Int64
    public let count: Int
    /// The whole block's length and CRC (for the whole-file check).
    public let hit: BlockCache.Hit

    init(cache: BlockCache, key: BlockKey, fd: Int32, offset: Int64, count: Int, hit: BlockCache.Hit) {
        self.cache = cache
        self.key = key
        self.fd = fd
        self.offset = offset
        self.count = count
        self.hit = hit
    }

    deinit {
        close(fd)
        cache.unpin(key)
    }
}
