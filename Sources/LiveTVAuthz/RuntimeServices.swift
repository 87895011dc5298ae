import AsyncHTTPClient
import Foundation
import LiveTVAuthzCore
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Emits the `plexlabelproxy_audit_summary:` line every interval; a last one at shutdown.
public struct AuditSummaryService: Service {
    let audit: AuditLog
    let interval: Duration
    let clock: any WallClock

    public init(audit: AuditLog, interval: Duration, clock: any WallClock) {
        self.audit = audit
        self.interval = interval
        self.clock = clock
    }

    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                break
            }
            audit.emitSummary(now: clock.now())
        }
        // The interval cut short by shutdown still gets its line.
        audit.emitSummary(now: clock.now())
    }
}

/// Runs the abuse state writer; at graceful shutdown it stops taking changes and writes the final state.
public struct AbuseStateService: Service {
    let writer: AbuseStateWriter

    public init(writer: AbuseStateWriter) {
        self.writer = writer
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await writer.run()
        } onGracefulShutdown: {
            writer.finish()
        }
    }
}

/// Asks PMS for `/identity` (no token needed) every interval: readiness, and the machine identifier that
/// pins `server://` references to this server.
public struct PMSIdentityService: Service {
    let client: HTTPClient
    let pms: PMSURL
    let interval: Duration
    let timeout: Duration
    let clock: any WallClock
    let logger: Logger
    let onIdentity: @Sendable (_ machineIdentifier: String?, _ at: Timestamp) -> Void

    public init(
        client: HTTPClient, pms: PMSURL, interval: Duration, timeout: Duration, clock: any WallClock, logger: Logger,
        onIdentity: @escaping @Sendable (String?, Timestamp) -> Void
    ) {
        self.client = client
        self.pms = pms
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.logger = logger
        self.onIdentity = onIdentity
    }

    public func run() async throws {
        var failures = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            if let identifier = await probe() {
                if failures > 0 { logger.notice("PMS at \(pms) answers /identity again; ready") }
                failures = 0
                onIdentity(identifier.isEmpty ? nil : identifier, clock.now())
            } else {
                failures += 1
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("PMS at \(pms) did not answer /identity (\(failures) time(s) in a row); not ready")
                }
            }
            // Probe quickly until the first answer, then every interval.
            let pause = failures > 0 && failures < 10 ? min(interval, .seconds(2)) : interval
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            } catch {
                return
            }
        }
    }

    /// The machine identifier ("" when PMS answered without one), or `nil` when PMS did not answer 200.
    func probe() async -> String? {
        var request = HTTPClientRequest(url: "\(pms)/identity")
        request.headers.add(name: "Accept", value: "application/json")
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            let body = try await response.body.collect(upTo: 64 * 1024)
            guard response.status.code == 200 else { return nil }
            return Self.machineIdentifier(in: String(buffer: body)) ?? ""
        } catch {
            return nil
        }
    }

    /// `machineIdentifier` from the JSON or XML form of `/identity`.
    static func machineIdentifier(in text: String) -> String? {
        for pattern in [#""machineIdentifier"\s*:\s*"([0-9A-Za-z-]+)""#, #"machineIdentifier="([0-9A-Za-z-]+)""#] {
            if let range = text.range(of: pattern, options: .regularExpression) {
                let match = String(text[range])
                if let open = match.dropLast().lastIndex(of: "\"") {
                    return String(match[match.index(after: open)..<match.index(before: match.endIndex)])
                }
            }
        }
        return nil
    }
}

/// Re-reads the owner token file on SIGHUP. A bad file is reported and the old token kept.
public struct OwnerTokenReloadService: Service {
    let path: String
    let owner: OwnerTokenHolder
    let logger: Logger

    public init(path: String, owner: OwnerTokenHolder, logger: Logger) {
        self.path = path
        self.owner = owner
        self.logger = logger
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                do {
                    let token = try OwnerTokenFile.read(path)
                    owner.replace(with: token)
                    logger.notice("SIGHUP: owner token reloaded from \(path) (\(token.fingerprint))")
                } catch {
                    logger.error("SIGHUP: keeping the previous owner token: \(error)")
                }
            }
        }
    }
}

/// Reading secrets from files: the owner token and the frontend key.
public enum OwnerTokenFile {
    public struct FileError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The file's first line, trimmed. Refuses files readable by group or others.
    public static func read(_ path: String) throws -> PlexToken {
        let text = try readSecret(path)
        guard let token = PlexToken(text) else {
            throw FileError(description: "\(path) does not hold a usable token (1-4096 visible ASCII characters)")
        }
        return token
    }

    /// The first line of a secret file that only its owner may read (mode 0600 or 0400).
    public static func readSecret(_ path: String) throws -> String {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw FileError(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw FileError(
                description:
                    "\(path) is readable by group or others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it"
            )
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw FileError(description: "cannot read \(path)")
        }
        return String(text.split(whereSeparator: \.isNewline).first ?? "").trimmingCharacters(in: .whitespaces)
    }
}
