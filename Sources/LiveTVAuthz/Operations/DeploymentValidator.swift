import AsyncHTTPClient
import Foundation
import LiveTVAuthzCore
import NIOCore
import NIOHTTP1

/// One line of `validate`'s table.
public struct DeploymentCheck: Sendable, Equatable {
    public enum Result: String, Sendable {
        case pass = "PASS"
        case fail = "FAIL"
        case skip = "SKIP"
        case note = "NOTE"
    }

    public var name: String
    public var expected: String
    public var got: String
    public var result: Result
}

/// The runbook's validation, run against a deployed frontend: made-up and missing tokens get neither
/// libraries nor Live TV; a real shared user's token gets Live TV while its library view stays its own;
/// PMS's own port is not the way in. Requests are what a client sends; tokens are never printed.
public struct DeploymentValidator: Sendable {
    public var frontend: PMSURL
    public var userToken: PlexToken?
    /// Where the user's own view is read directly (run on the Plex host: the default loopback PMS).
    public var pms: PMSURL
    /// PMS as seen from outside (e.g. `http://203.0.113.7:32400`): it must not answer.
    public var directPMS: PMSURL?
    public var timeout: Duration
    public var client: HTTPClient
    /// Told about each check as it finishes (`validate` prints them as it goes).
    public var progress: @Sendable (DeploymentCheck) -> Void = { _ in }

    public init(
        frontend: PMSURL, userToken: PlexToken?, pms: PMSURL, directPMS: PMSURL?, timeout: Duration, client: HTTPClient
    ) {
        self.frontend = frontend
        self.userToken = userToken
        self.pms = pms
        self.directPMS = directPMS
        self.timeout = timeout
        self.client = client
    }

    /// Three Live TV attempts with bad tokens: under the abuse blocker's default threshold of five, so one run
    /// does not block the address it runs from (a second within the window does; valid tokens keep working).
    public func run() async -> [DeploymentCheck] {
        var checks = Checks(progress: progress)
        let identity = await fetch(frontend, "/identity")
        checks.append(expect("GET /identity through the frontend", identity, success: true))

        let fake = Self.madeUpToken()
        for (name, target, header) in [
            ("made-up token (header): /library/sections", "/library/sections", true),
            ("made-up token (query): /library/sections", "/library/sections", false),
            ("made-up token (query): /livetv/dvrs", "/livetv/dvrs", false),
            ("made-up token (header): /media/providers", "/media/providers", true),
        ] {
            let answer = await fetch(frontend, target, token: fake, inHeader: header)
            checks.append(expect(name, answer, success: false))
        }
        checks.append(expect("no token: /livetv/dvrs", await fetch(frontend, "/livetv/dvrs"), success: false))

        if let userToken {
            for check in await userChecks(userToken) { checks.append(check) }
        } else {
            for name in [
                "shared user: /livetv/dvrs through the frontend", "shared user: /media/providers lists Live TV",
                "shared user: /library/sections is the user's own",
            ] {
                checks.append(
                    DeploymentCheck(
                        name: name, expected: "--user-token-file", got: "no user token given", result: .skip))
            }
        }

        if let directPMS {
            let direct = await fetch(directPMS, "/identity")
            checks.append(
                DeploymentCheck(
                    name: "PMS directly at \(directPMS) is closed", expected: "no answer",
                    got: direct.status.map { "HTTP \($0)" } ?? direct.error,
                    result: direct.status == nil ? .pass : .fail))
        }
        return checks.all
    }

    /// The checks so far; each one is reported as it is added.
    struct Checks {
        let progress: @Sendable (DeploymentCheck) -> Void
        var all: [DeploymentCheck] = []

        mutating func append(_ check: DeploymentCheck) {
            all.append(check)
            progress(check)
        }
    }

    private func userChecks(_ token: PlexToken) async -> [DeploymentCheck] {
        var checks: [DeploymentCheck] = []
        // Plex Web's way: the token in the query.
        let dvrs = await fetch(frontend, "/livetv/dvrs", token: token, inHeader: false)
        checks.append(expect("shared user: /livetv/dvrs through the frontend", dvrs, success: true))
        let providers = await fetch(frontend, "/media/providers", token: token, inHeader: false)
        let listsLiveTV = providers.status == 200 && providers.body.contains("tv.plex.providers.epg.")
        checks.append(
            DeploymentCheck(
                name: "shared user: /media/providers lists Live TV", expected: "200 with an EPG provider",
                got: providers.status == 200 ? (listsLiveTV ? "200, listed" : "200, not listed") : providers.summary,
                result: listsLiveTV ? .pass : .fail))

        let through = await fetch(frontend, "/library/sections", token: token, inHeader: false)
        let own = await fetch(pms, "/library/sections", token: token, inHeader: true)
        let sameView: DeploymentCheck.Result
        let got: String
        if own.status == nil {
            sameView = .fail
            got = "cannot compare: PMS at \(pms) (--pms-url) \(own.error)"
        } else {
            let (a, b) = (Self.sectionKeys(through.body), Self.sectionKeys(own.body))
            sameView = through.status == own.status && a == b ? .pass : .fail
            got =
                "frontend \(through.summary) \(a.count) sections, PMS \(own.summary) \(b.count) sections"
        }
        checks.append(
            DeploymentCheck(
                name: "shared user: /library/sections is the user's own", expected: "same as PMS with the user's token",
                got: got, result: sameView))

        let hidden = await fetch(pms, "/livetv/dvrs", token: token, inHeader: true)
        if let status = hidden.status {
            let plexHides = status == 403 || Self.isEmptyContainer(hidden.body)
            checks.append(
                DeploymentCheck(
                    name: "Plex itself hides Live TV from this user", expected: "403 or empty at --pms-url",
                    got: plexHides ? "hidden (HTTP \(status))" : "shown (HTTP \(status)): this user has tuner access",
                    result: plexHides ? .pass : .note))
        }
        return checks
    }

    private func expect(_ name: String, _ answer: Answer, success: Bool) -> DeploymentCheck {
        let ok = answer.status.map { (200..<300).contains($0) } ?? false
        return DeploymentCheck(
            name: name, expected: success ? "2xx" : "not 2xx", got: answer.summary,
            result: answer.status != nil && ok == success ? .pass : .fail)
    }

    struct Answer {
        var status: Int?
        var body: String = ""
        var error: String = ""
        var summary: String { status.map { "HTTP \($0)" } ?? error }
    }

    private func fetch(_ base: PMSURL, _ path: String, token: PlexToken? = nil, inHeader: Bool = true) async -> Answer {
        var target = path
        if let token, !inHeader { target += "?X-Plex-Token=" + token.value }
        var request = HTTPClientRequest(url: "\(base)\(target)")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "X-Plex-Product", value: "plex-livetv-authz validate")
        request.headers.add(name: "X-Plex-Client-Identifier", value: "plex-livetv-authz-validate")
        if let token, inHeader { request.headers.add(name: "X-Plex-Token", value: token.value) }
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            let body = try await response.body.collect(upTo: 8 << 20)
            return Answer(status: Int(response.status.code), body: String(buffer: body))
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return Answer(status: nil, error: "no answer in \(GoDuration.format(timeout))")
        } catch {
            return Answer(status: nil, error: "no answer (\(Self.shortError(error)))")
        }
    }

    static func shortError(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        return String(text.prefix(80))
    }

    /// A token no Plex server knows: 20 random letters and digits, like a real one.
    static func madeUpToken() -> PlexToken {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        return PlexToken(String((0..<20).map { _ in alphabet.randomElement(using: &generator)! }))!
    }

    /// The `key`s of `/library/sections` (JSON): which libraries a token sees.
    static func sectionKeys(_ body: String) -> Set<String> {
        struct Sections: Decodable {
            struct Container: Decodable {
                struct Directory: Decodable { var key: String }
                var Directory: [Directory]?
            }
            var MediaContainer: Container
        }
        let sections = try? JSONDecoder().decode(Sections.self, from: Data(body.utf8))
        return Set(sections?.MediaContainer.Directory?.map(\.key) ?? [])
    }

    /// A `MediaContainer` with `size` 0.
    static func isEmptyContainer(_ body: String) -> Bool {
        struct Sized: Decodable {
            struct Container: Decodable { var size: Int? }
            var MediaContainer: Container
        }
        return (try? JSONDecoder().decode(Sized.self, from: Data(body.utf8)))?.MediaContainer.size == 0
    }
}

extension [DeploymentCheck] {
    /// The table `validate` prints: one line per check, then the counts.
    public var table: String {
        let width = (map(\.name.count).max() ?? 10) + 2
        let expectedWidth = (map(\.expected.count).max() ?? 10) + 2
        func pad(_ text: String, _ count: Int) -> String {
            text + String(repeating: " ", count: Swift.max(0, count - text.count))
        }
        var lines = [pad("check", width) + pad("expected", expectedWidth) + "result  got"]
        for check in self {
            lines.append(
                pad(check.name, width) + pad(check.expected, expectedWidth) + pad(check.result.rawValue, 8) + check.got)
        }
        let count = { (result: DeploymentCheck.Result) in self.filter { $0.result == result }.count }
        lines.append(
            "\(count(.pass)) passed, \(count(.fail)) failed, \(count(.skip)) skipped, \(count(.note)) notes")
        return lines.joined(separator: "\n")
    }
}
