import FDFSProtocol
import Foundation
import Testing
@testable import FDFSStorage

@Suite struct BinlogTests {
    @Test func recordRoundTrip() throws {
        let lines = [
            "1795257157 C M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt",
            "1795257160 a M00/00/00/fwAAAmsBc2CEMlVtAAAAAA4Qul0828.txt 7 14",
            "1795257160 T M00/00/00/fwAAAmsBc2CEMlVtAAAAAA4Qul0828.txt 14 7",
            "1795257161 R M00/00/00/new.txt M00/00/00/old.txt",
            "1795257162 d M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt-m",
        ]
        for line in lines {
            let record = try #require(BinlogRecord(line: Substring(line)))
            #expect(record.line == line + "\n")
        }
        let upper = try #require(BinlogRecord(line: "1 C M00/00/00/x"))
        #expect(upper.isSource && upper.operation == .create)
        let lower = try #require(BinlogRecord(line: "1 a M00/00/00/x 1 2"))
        #expect(!lower.isSource && lower.operation == .append && lower.numbers == (1, 2))
        #expect(BinlogRecord(line: "x C name") == nil)
        #expect(BinlogRecord(line: "1 Q name") == nil)
        #expect(BinlogRecord(line: "1 A name 5") == nil)
    }
}
