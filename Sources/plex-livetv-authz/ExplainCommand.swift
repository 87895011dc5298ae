import ArgumentParser
import LiveTVAuthz
import LiveTVAuthzCore

#if canImport(Glibc)
    import Glibc
#endif

struct ExplainCommand: ParsableCommand {
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

            Examples:
              plex-livetv-authz explain --method GET --target '/livetv/dvrs?X-Plex-Token=abc'
              plex-livetv-authz explain < ../shared/data/plex-web-session.jsonl
            """
    )

    @Option(help: "Which requests may be elevated: live-tv (default), discovery-only or all.")
    var mode: ElevationMode = .liveTV

    @Option(help: "The owner token to substitute (default: the literal OWNER).")
    var ownerToken: String = "OWNER"

    @Option(help: "This server's machine identifier; server:// references to any other id are not Live TV. Default: accept any id.")
    var machineId: String?

    @Option(help: "The PMS base URL; http(s) references to its authority (or loopback) count as this server.")
    var pmsURL: String = "http://127.0.0.1:32400"

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
        if PMSURL(pmsURL) == nil {
            throw ValidationError("--pms-url must be an http:// or https:// URL such as http://127.0.0.1:32400.")
        }
        for header in headers where !header.contains(":") {
            throw ValidationError("--header '\(header)' must look like 'Name: value'.")
        }
    }

    func run() throws {
        let classifier = LiveTVClassifier(
            mode: mode,
            references: LiveTVReferenceMatcher(machineIdentifier: machineId, pmsAuthority: PMSURL(pmsURL)?.authority))
        let explainer = Explainer(classifier: classifier, ownerToken: PlexToken(ownerToken)!)
        if let method, let target {
            let request = AuthzRequest(
                method: method, target: target, headers: headers.map(Self.parseHeader),
                body: body.map { .seen(bytes: Array($0.utf8), contentType: contentType) }
                    ?? (bodyPresent ? .unseen : .none),
                peer: PeerFacts(trustedFrontend: true))
            print(Explainer.humanReport(request, explainer.decideAssumingValidToken(request), mode: mode))
            return
        }
        var failed = false
        while let line = readLine(strippingNewline: true) {
            if line.allSatisfy(\.isWhitespace) { continue }
            let answer = explainer.answer(line: line)
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
