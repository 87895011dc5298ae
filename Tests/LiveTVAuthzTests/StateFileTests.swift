import Foundation
import LiveTVAuthz
import LiveTVAuthzCore
import NIOConcurrencyHelpers
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One directory for the whole test process, removed when the process exits.
let temporaryRoot: String = {
    let root = NSTemporaryDirectory() + "plexauthz-tests-\(getpid())"
    try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "plexauthz-tests-\(getpid())") }
    return root
}()

/// A fresh temporary directory per test (inside `temporaryRoot`).
func temporaryDirectory() -> String {
    let path = temporaryRoot + "/\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func mode(of path: String) -> mode_t {
    var status = stat()
    precondition(lstat(path, &status) == 0)
    return status.st_mode & 0o777
}

@Suite("Abuse state file")
struct StateFileTests {
    let now = Timestamp(unixSeconds: 1_800_000_000)
    let policy = AbusePolicy()
    let blockedKey = Fingerprint.of("203.0.113.9")
    let windowKey = Fingerprint.of("198.51.100.1")

    var records: [String: SourceRecord] {
        [
            blockedKey: SourceRecord(failures: 5, windowStart: now, blockedUntil: now + .seconds(1800)),
            windowKey: SourceRecord(failures: 2, windowStart: now, blockedUntil: nil),
        ]
    }

    @Test func roundTripKeepsLiveRecordsAndDropsExpiredOnes() throws {
        let directory = temporaryDirectory() + "/state"
        let file = AbuseStateFile(path: directory + "/blocks.json")
        try file.write(GuardSnapshot(sources: records))
        #expect(mode(of: directory) == 0o700)
        #expect(mode(of: file.path) == 0o600)
        let log = CapturedLog()
        #expect(file.load(policy: policy, now: now + .seconds(60), logger: log.logger).sources == records)
        // Ten minutes later the failure window is gone; the block remains.
        #expect(
            Set(file.load(policy: policy, now: now + .seconds(600), logger: log.logger).sources.keys) == [blockedKey])
        #expect(log.all.isEmpty)
        let text = try String(contentsOfFile: file.path, encoding: .utf8)
        #expect(!text.contains("203.0.113.9") && text.contains(blockedKey))
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["blocks.json"])
    }

    @Test func missingFileIsAnEmptyStateWithoutNoise() {
        let log = CapturedLog()
        let file = AbuseStateFile(path: temporaryDirectory() + "/none.json")
        #expect(file.load(policy: policy, now: now, logger: log.logger).sources.isEmpty)
        #expect(log.all.isEmpty)
    }

    @Test(arguments: [
        "not json", #"{"version":3,"sources":{}}"#, #"{"version":1,"sources":{},"sessions":[]}"#,
        #"{"version":1,"sources":{"203.0.113.9":{"failures":1,"windowStart":1}}}"#,
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":"x","windowStart":1}}}"#, "",
    ])
    func corruptFileIsMovedAsideWithOneLogLine(_ content: String) throws {
        let directory = temporaryDirectory()
        let file = AbuseStateFile(path: directory + "/blocks.json")
        try content.write(toFile: file.path, atomically: false, encoding: .utf8)
        let log = CapturedLog()
        #expect(file.load(policy: policy, now: now, logger: log.logger).sources.isEmpty)
        #expect(log.all.count == 1)
        #expect(log.all[0].contains("moved it to \(file.path).corrupt-\(now.unixSeconds)"))
        #expect(FileManager.default.fileExists(atPath: "\(file.path).corrupt-\(now.unixSeconds)"))
        #expect(!FileManager.default.fileExists(atPath: file.path))
        // The service can write a fresh file afterwards.
        try file.write(GuardSnapshot(sources: records))
        #expect(file.load(policy: policy, now: now, logger: log.logger).sources == records)
    }

    /// Tampered numbers that used to trap at load (`Double` → `Int64`) or at the next failure (overflow):
    /// the file is moved aside like a corrupt one and the service starts empty.
    @Test(arguments: [
        // a window start far in the future
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":1,"windowStart":1900000000}}}"#,
        // a block ending in the year 33,000
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":5,"windowStart":1800000000,"blockedUntil":1.0e12}}}"#,
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":5,"windowStart":1800000000,"blockedUntil":1000000000000}}}"#,
        // a block longer than this policy ever gives
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":5,"windowStart":1800000000,"blockedUntil":1800090000}}}"#,
        // a failure count near Int.max
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":9223372036854775806,"windowStart":1800000000}}}"#,
        // huge negative and non-integer numbers
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":1,"windowStart":-1e308}}}"#,
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":1.5,"windowStart":1800000000}}}"#,
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":1,"windowStart":1800000000.0000000001}}}"#,
        // unknown fields, duplicate keys, trailing garbage
        #"{"version":1,"sources":{"sha256:0123456789abcdef":{"failures":1,"windowStart":1800000000,"x":1}}}"#,
        #"{"version":1,"version":1,"sources":{}}"#,
        #"{"version":1,"sources":{}} x"#,
    ])
    func tamperedNumbersAreRefusedNotTrusted(_ content: String) throws {
        let directory = temporaryDirectory()
        let file = AbuseStateFile(path: directory + "/blocks.json")
        try content.write(toFile: file.path, atomically: false, encoding: .utf8)
        let log = CapturedLog()
        #expect(file.load(policy: policy, now: now, logger: log.logger).sources.isEmpty)
        #expect(log.all.count == 1 && log.all[0].contains("moved it to"), "\(log.all)")
        #expect(!FileManager.default.fileExists(atPath: file.path))
    }

    @Test func aFileOthersCouldWriteIsNotTrusted() throws {
        let directory = temporaryDirectory()
        let file = AbuseStateFile(path: directory + "/blocks.json")
        try file.write(GuardSnapshot(sources: records))
        chmod(file.path, 0o620)
        let log = CapturedLog()
        #expect(file.load(policy: policy, now: now, logger: log.logger).sources.isEmpty)
        #expect(log.all.count == 1 && log.all[0].contains("writable by group or others"))
        try file.write(GuardSnapshot(sources: records))
        chmod(file.path, 0o602)
        #expect(file.load(policy: policy, now: now, logger: log.logger).sources.isEmpty)
        try file.write(GuardSnapshot(sources: records))
        #expect(file.load(policy: policy, now: now, logger: log.logger).sources == records)
    }

    @Test func encodingIsExactAndDeterministic() throws {
        let exact = [
            blockedKey: SourceRecord(
                failures: 5, windowStart: Timestamp(unixNanoseconds: 1_800_000_000_000_000_001),
                blockedUntil: Timestamp(unixNanoseconds: 1_800_001_800_500_000_000))
        ]
        let bytes = GuardStateCodec.encode(GuardSnapshot(sources: exact))
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #"{"version":2,"sources":{"\#(blockedKey)":{"failures":5,"windowStart":1800000000.000000001,"blockedUntil":1800001800.5}},"sessions":[]}"#
                + "\n")
        #expect(try GuardStateCodec.decode(bytes).sources == exact)
        // The earlier writer's floating-point form still loads.
        let old =
            #"{"sources":{"\#(blockedKey)":{"blockedUntil":1800001800,"failures":5,"windowStart":1800000000.25}},"version":1}"#
        #expect(
            try GuardStateCodec.decode(Array(old.utf8)).sources[blockedKey]?.windowStart.unixNanoseconds
                == 1_800_000_000_250_000_000)
    }

    /// Even records at the extremes of what the codec accepts never trap in the blocker's arithmetic.
    @Test func extremeRecordsDoNotOverflowTheBlocker() {
        let latest = Timestamp(unixSeconds: GuardStateCodec.latestSecond)
        var blocker = AbuseBlocker(
            policy: AbusePolicy(threshold: 3, window: .seconds(Int64.max / 4), blockDuration: .seconds(Int64.max / 4)),
            restoring: [blockedKey: SourceRecord(failures: 1_000_000, windowStart: latest, blockedUntil: nil)],
            now: latest)
        _ = blocker.recordFailure(source: blockedKey, at: latest)
        #expect(blocker.isBlocked(blockedKey, at: latest))
        #expect(Timestamp(unixNanoseconds: .max) + .seconds(1) == Timestamp(unixNanoseconds: .max))
        #expect(Timestamp(unixNanoseconds: .min) - Timestamp(unixNanoseconds: .max) == .nanoseconds(Int64.min))
    }

    @Test func symlinkAtThePathIsNeverFollowed() throws {
        let directory = temporaryDirectory()
        let victim = directory + "/victim"
        try "precious".write(toFile: victim, atomically: false, encoding: .utf8)
        let file = AbuseStateFile(path: directory + "/blocks.json")
        #expect(symlink(victim, file.path) == 0)
        #expect(throws: AbuseStateFile.StateFileError.self) { try file.write(GuardSnapshot(sources: records)) }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
        // Loading refuses it too: the link is moved aside, the target untouched.
        let log = CapturedLog()
        #expect(file.load(policy: policy, now: now, logger: log.logger).sources.isEmpty)
        #expect(log.all.first?.contains("symlink") == true)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
        try file.write(GuardSnapshot(sources: records))
        #expect(mode(of: file.path) == 0o600)
    }

    @Test func writerCoalescesChangesAndFlushesOnFinish() async throws {
        let file = AbuseStateFile(path: temporaryDirectory() + "/blocks.json")
        let clock = ManualClock(now)
        let writer = AbuseStateWriterBox()
        let state = InMemoryGuardState(blocker: AbuseBlocker(policy: AbusePolicy(threshold: 3))) { writer.markDirty() }
        // Through the protocol, as the guard uses it.
        let store: any GuardStateStore = state
        let log = CapturedLog()
        let stateWriter = AbuseStateWriter(file: file, logger: log.logger) { store.snapshot(at: clock.now()) }
        writer.set(stateWriter)
        let running = Task { await stateWriter.run() }
        for i in 0..<200 { store.recordFailure(source: Fingerprint.of("10.0.0.\(i % 50)"), at: now) { _, _ in } }
        let blocks = NIOLockedValueBox(0)
        for _ in 0..<3 {
            store.recordFailure(source: blockedKey, at: now) { _, _ in blocks.withLockedValue { $0 += 1 } }
        }
        #expect(blocks.withLockedValue { $0 } == 1)
        stateWriter.finish()
        await running.value
        let loaded = file.load(policy: AbusePolicy(threshold: 3), now: now, logger: log.logger).sources
        #expect(loaded[blockedKey]?.blockedUntil == now + .seconds(1800))
        #expect(loaded.count == 51)
        #expect(log.all.isEmpty)
    }
}
