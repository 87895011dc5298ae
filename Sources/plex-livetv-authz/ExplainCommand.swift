import ArgumentParser
import LiveTVAuthz
import LiveTVAuthzApp
import LiveTVAuthzCore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show the decision for requests, assuming each inbound token is valid for this server.",
        discussion: """
            Batch mode (no --method/--target): reads one JSON request per line on standard input,
              {"method":"GET","target":"/livetv/dvrs?X-Plex-Token=abc","headers":[["Referer","…"]],
               "body":"…","contentType":"…","bodyPresent":true,"peer":"127.0.0.1"}
            (headers may also be an object; body, contentType, bodyPresent, peer are optional; a missing body
            means the request had none, "bodyPresent":true without "body" means it had one the service could
            not see) and writes one line per request:
              {"elevate":true,"rule":"livetv","upstreamTarget":"…","upstreamToken":"…"}
            A line that cannot be read gets {"error":"…"}; the command goes on and exits 1 at the end.

            Single mode: --method and --target (and --header, repeatable) describe one request; the answer
            explains which rule matched and why.

            The owner token printed is the literal OWNER unless --owner-token is given, so no secret is printed
            by accident.

            With --pms-url the full guard runs instead of assuming tokens are valid: each inbound token is
            validated against that Plex server (GET /library/sections), the abuse blocker, cooldown and
            playback tracking apply (in memory), audit lines go to standard error, and each answer gains
            "outcome" and "rejected". Lines are decided in order, so a line's decision can depend on earlier
            ones: a tune from "peer" 203.0.113.5, then that player's tokenless segments, shows the
            tracked-segment rule. --replay runs the same full guard with every token taken as valid (no
            Plex server needed).

            Examples:
              plex-livetv-authz explain --method GET --target '/livetv/dvrs?X-Plex-Token=abc'
              plex-livetv-authz explain < Tests/Fixtures/plex-web-session.jsonl
            """
    )

    @Option(help: "Which requests may be elevated: live-tv (default), discovery-only or all.")
    var mode: ElevationMode = .liveTV

    @Option(help: "The owner token to substitute (default: the literal OWNER).")
    var ownerToken: String = "OWNER"

    @Option(
        help:
            "This server's machine identifier; server:// references to any other id are not Live TV. Default: accept any id."
    )
    var machineId: String?

    @Option(
        help:
            "Run the full guard: validate inbound tokens against this Plex server (e.g. http://127.0.0.1:32400). References to its authority (or loopback) count as this server."
    )
    var pmsURL: String?

    @Flag(
        help:
            "Run the full guard over the lines in order (abuse state, tracked playback) with every token taken as valid."
    )
    var replay = false

    @Option(help: "With --pms-url: token validation timeout (Go duration).")
    var timeout: String = "3s"

    @Option(help: "Single mode: the request method (case-sensitive).")
    var method: String?

    @Option(help: "Single mode: the raw request-target (path and query, exactly as sent).")
    var target: String?

    @Option(name: .customLong("header"), help: "Single mode: a request header 'Name: value' (repeatable, in order).")
    var headers: [String] = []

    @Option(help: "Single mode: the request body as seen by the service.")
    var body: String?

    @Option(help: "Single mode: the body's Content-Type.")
    var contentType: String?

    @Flag(help: "Single mode: the request had a body the service could not see.")
    var bodyPresent = false

    func validate() throws {
        if (method == nil) != (target == nil) {
            throw ValidationError("--method and --target go together (single mode); give both or neither.")
        }
        if PlexToken(ownerToken) == nil {
            throw ValidationError("--owner-token must be 1-4096 visible ASCII characters.")
        }
        if replay, pmsURL != nil {
            throw ValidationError("--replay assumes every token is valid; --pms-url validates them: give one of them.")
        }
        if let pmsURL, PMSURL(pmsURL) == nil {
            throw ValidationError("--pms-url must be an http:// or https:// URL such as http://127.0.0.1:32400.")
        }
        if GoDuration.parse(timeout).map({ $0 <= .zero }) ?? true {
            throw ValidationError("--timeout must be a positive Go duration such as 3s or 500ms.")
        }
        for header in headers where !header.contains(":") {
            throw ValidationError("--header '\(header)' must look like 'Name: value'.")
        }
    }

    func run() async throws {
        let pms = pmsURL.flatMap(PMSURL.init)
        let classifier = LiveTVClassifier(
            mode: mode,
            references: LiveTVReferenceMatcher(
                machineIdentifier: machineId, pmsAuthority: (pms ?? Settings.pmsURL.defaultValue).authority))
        let owner = PlexToken(ownerToken)!
        let explainer = Explainer(classifier: classifier, ownerToken: owner)
        guard pms != nil || replay else {
            try await execute(explainer: explainer, guardian: nil)
            return
        }
        // The full guard, built by the same composition root as `serve`, without listeners.
        var configuration = Configuration()
        if let pms { configuration.set(Settings.pmsURL, pms) }
        configuration.set(Settings.ownerToken, owner)
        configuration.set(Settings.validationTimeout, GoDuration.parse(timeout)!)
        configuration.set(Settings.mode, mode)
        configuration.set(Settings.machineID, machineId)
        configuration.set(Settings.listen, [])
        var dependencies = AuthzDependencies()
        dependencies.logger = Logger(label: "plex-livetv-authz") { StreamLogHandler.standardError(label: $0) }
        if pms == nil { dependencies.pms = AssumedValidPMS() }
        let application = try AuthzApplication(configuration: configuration, dependencies: dependencies)
        if let machineId { application.guardian.setMachineIdentifier(machineId) }
        let result = await Result { try await execute(explainer: explainer, guardian: application.guardian) }
        await application.shutdown()
        try result.get()
    }

    private func execute(explainer: Explainer, guardian: Guard?) async throws {
        if let method, let target {
            let request = AuthzRequest(
                method: method, target: target, headers: headers.map(Self.parseHeader),
                body: body.map { .seen(bytes: Array($0.utf8), contentType: contentType) }
                    ?? (bodyPresent ? .unseen : .none),
                peer: PeerFacts(trustedFrontend: true))
            let decision: AuthzDecision
            if let guardian {
                decision = await guardian.decide(request)
            } else {
                decision = explainer.decideAssumingValidToken(request)
            }
            print(Explainer.humanReport(request, decision, mode: mode))
            return
        }
        var failed = false
        while let line = readLine(strippingNewline: true) {
            if line.allSatisfy(\.isWhitespace) { continue }
            let answer: (text: String, failed: Bool)
            if let guardian {
                answer = await Explainer.answer(line: line, guard: guardian)
            } else {
                answer = explainer.answer(line: line)
            }
            failed = failed || answer.failed
            print(answer.text)
            fflush(nil)
        }
        if failed { throw ExitCode(1) }
    }

    static func parseHeader(_ text: String) -> HTTPField {
        let colon = text.firstIndex(of: ":")!
        let value = text[text.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
        return HTTPField(name: String(text[..<colon]), value: String(value))
    }
}

extension ElevationMode: ExpressibleByArgument {}
