import Foundation
import LiveTVAuthz
import Testing

/// The service's audit sink writes from its own thread; nothing may be lost, reordered or interleaved.
@Suite("Buffered audit sink")
struct BufferedAuditSinkTests {
    /// A temporary file's descriptor, and a way to read everything written to it.
    static func withFile(_ body: (Int32, () -> [String]) throws -> Void) throws {
        let path = NSTemporaryDirectory() + "plexauthz-audit-\(UUID().uuidString.prefix(8))"
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        try #require(fd >= 0)
        defer {
            close(fd)
            unlink(path)
        }
        try body(fd) {
            (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
        }
    }

    @Test func everyLineFromEveryThreadArrivesWholeAndInOrderByCloseTime() throws {
        try Self.withFile { fd, lines in
            let sink = BufferedAuditSink(fileDescriptor: fd)
            let writers = 4
            let perWriter = 20_000
            DispatchQueue.concurrentPerform(iterations: writers) { writer in
                for index in 0..<perWriter {
                    sink.write(
                        "plexlabelproxy_audit: writer=\(writer) index=\(index) padding=\(String(repeating: "x", count: index % 97))"
                    )
                }
            }
            sink.close()
            let written = lines()
            #expect(written.count == writers * perWriter)
            var next = [Int](repeating: 0, count: writers)
            for line in written {
                let fields = line.split(separator: " ")
                guard fields.count == 4, let writer = Int(fields[1].dropFirst(7)),
                    let index = Int(fields[2].dropFirst(6))
                else {
                    Issue.record("a damaged line: \(line.prefix(80))")
                    return
                }
                #expect(index == next[writer], "writer \(writer): line \(index) out of order")
                next[writer] = index + 1
                #expect(fields[3] == "padding=" + String(repeating: "x", count: index % 97))
            }
            // After close, lines are written at once (nothing waits for a thread that has gone).
            sink.write("after close")
            #expect(lines().last == "after close")
        }
    }

    @Test func aBurstPastTheBoundIsWrittenNotDropped() throws {
        try Self.withFile { fd, lines in
            let sink = BufferedAuditSink(fileDescriptor: fd)
            let line = String(repeating: "y", count: 1000)
            let count = 3 * BufferedAuditSink.maximumBuffered / 1000
            for _ in 0..<count { sink.write(line) }
            sink.close()
            #expect(lines().count == count)
        }
    }

    @Test func closingAnUnusedSinkReturns() {
        let sink = BufferedAuditSink(fileDescriptor: -1)
        sink.close()
        sink.close()
    }
}
