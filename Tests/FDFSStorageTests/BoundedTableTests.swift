import Testing
@testable import FDFSStorage

/// The storage's memory-only tables: the oldest inserted key goes first, a changed value keeps
/// its place, and removed keys neither count nor get evicted in place of live ones.
@Suite struct BoundedTableTests {
    @Test func theOldestInsertedGoesFirstAndAChangeKeepsItsPlace() {
        var table = BoundedTable<Int>(capacity: 2)
        table.set("a", 1)
        table.set("b", 2)
        table.set("a", 10)
        table.set("c", 3)
        #expect(table["a"] == nil && table["b"] == 2 && table["c"] == 3)
    }

    @Test func removedKeysAreSkippedAndALongRunStaysWithinTheCapacity() {
        var table = BoundedTable<Int>(capacity: 3)
        table.set("a", 1)
        table.set("b", 2)
        #expect(table.remove("a") == 1)
        table.set("c", 3)
        table.set("a", 4)
        #expect(table.count == 3)
        table.set("d", 5)
        #expect(table["b"] == nil && table["c"] == 3 && table["a"] == 4 && table["d"] == 5)
        for i in 0..<10_000 {
            table.set("k\(i)", i)
            if i % 2 == 0 { table.remove("k\(i)") }
        }
        #expect(table.count == 3)
        #expect(table["k9999"] == 9999 && table["k9997"] == 9997 && table["k9995"] == 9995)
    }
}
