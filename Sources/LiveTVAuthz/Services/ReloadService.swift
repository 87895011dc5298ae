import LiveTVAuthzCore
import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP (`systemctl reload`): re-reads what can be reloaded and never terminates the service.
///
/// Without a handler SIGHUP's default action ends the process, so the signal is always trapped: with a
/// token file the owner token is re-read (a bad file is reported and the old token kept) and, when the
/// token changed, the validation cache is flushed; with a token from the environment there is nothing to
/// re-read, which is logged.
public struct ReloadService: Service {
    let ownerTokenFile: String?
    let owner: OwnerTokenHolder
    let onOwnerTokenChange: @Sendable () async -> Void
    let logger: Logger

    public init(
        ownerTokenFile: String?, owner: OwnerTokenHolder, logger: Logger,
        onOwnerTokenChange: @escaping @Sendable () async -> Void
    ) {
        self.ownerTokenFile = ownerTokenFile
        self.owner = owner
        self.logger = logger
        self.onOwnerTokenChange = onOwnerTokenChange
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals { await reload() }
        }
    }

    /// One reload, as SIGHUP does it.
    public func reload() async {
        guard let path = ownerTokenFile else {
            logger.notice(
                "SIGHUP: the owner token comes from the environment; nothing to reload (restart to change it)")
            return
        }
        do {
            let token = try SecretFile.token(at: path)
            if owner.replace(with: token) {
                await onOwnerTokenChange()
                logger.notice(
                    "SIGHUP: owner token reloaded from \(path) (\(token.fingerprint)); validation cache flushed")
            } else {
                logger.notice("SIGHUP: owner token in \(path) unchanged")
            }
        } catch {
            logger.error("SIGHUP: keeping the previous owner token: \(error)")
        }
    }
}
