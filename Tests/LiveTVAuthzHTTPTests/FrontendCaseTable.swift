import FakePMS
import Foundation
import Testing

/// What Plex must receive for one request: the path, the query as received (token values as labels), and
/// the token classes in the query and in the `X-Plex-Token` header.
struct Upstream: Equatable, Sendable, CustomStringConvertible {
    var path: String
    var rawQuery: String
    var query: [String]
    var header: [String]
    var smuggled: [String] = []

    init(_ path: String, query rawQuery: String = "", tokens query: [String] = [], header: [String]) {
        self.path = path
        self.rawQuery = rawQuery
        self.query = query
        self.header = header
    }

    init(_ recorded: RecordedRequest) {
        self.init(recorded.path, query: recorded.rawQuery, tokens: recorded.queryTokens, header: recorded.headerTokens)
        smuggled = recorded.smuggledTokens
    }

    var elevated: Bool { header.contains("OWNER") || query.contains("OWNER") }
    var description: String { "\(path)?\(rawQuery) query=\(query) header=\(header) smuggled=\(smuggled)" }
}

/// What the client must get and Plex must receive (nil: the request never reaches Plex).
struct Outcome: Sendable {
    var status: Int
    var upstream: Upstream?
    var bodyContains: String? = nil
}

/// Why a frontend's outcome for a row differs from the table's.
enum Difference: Sendable {
    /// The frontend cannot do what the row asks; the test also asserts that the request is then not
    /// elevated unless the row itself elevates it.
    case limit(Outcome, why: String)
    /// The frontend shows the service more than the row assumes (a request body), so the rules decide on
    /// more evidence.
    case seesMore(Outcome, why: String)

    var outcome: Outcome {
        switch self {
        case .limit(let outcome, _), .seesMore(let outcome, _): outcome
        }
    }
}

/// One row of the shared table: what a client sends, what must come of it, and where a frontend declares a
/// different outcome.
struct FrontendCase: Sendable, CustomTestStringConvertible {
    var name: String
    var method = "GET"
    /// The request target exactly as sent, byte for byte.
    var target: [UInt8]
    var headers: [(String, String)] = []
    var body: [UInt8]? = nil
    /// The source address the client claims through `CF-Connecting-IP` (honoured from a loopback hop); by
    /// default one of its own per row, so rows never share a blocker record.
    var source: String? = nil
    var expect: Outcome
    var differences: [Frontend: Difference] = [:]

    var testDescription: String { name }

    init(
        _ name: String, _ target: String, method: String = "GET", headers: [(String, String)] = [],
        body: String? = nil, source: String? = nil, expect: Outcome, differences: [Frontend: Difference] = [:]
    ) {
        self.name = name
        self.method = method
        self.target = Array(target.utf8)
        self.headers = headers
        self.body = body.map { Array($0.utf8) }
        self.source = source
        self.expect = expect
        self.differences = differences
    }
}

let user = "X-Plex-Token=\(userToken)"
let liveQueueQuery =
    "type=video&uri=server%3A%2F%2Fx%2Fcom.plexapp.plugins.library%2Flivetv%2Fsessions%2Fabc&\(user)"

/// The end-to-end cases every frontend runs (elevation-rules and decision-contract, seen from a client).
let frontendCases: [FrontendCase] =
    [
        FrontendCase(
            "Live TV with a query token: elevated, owner token in the header only", "/livetv/dvrs?\(user)",
            expect: Outcome(
                status: 200, upstream: Upstream("/livetv/dvrs", header: ["OWNER"]), bodyContains: "key=\"135\"")),
        FrontendCase(
            "ordinary request: preserved byte for byte", "/library/sections?\(user)&x=%20a+b%2F",
            expect: Outcome(
                status: 200,
                upstream: Upstream(
                    "/library/sections", query: "X-Plex-Token=USER&x=%20a+b%2F", tokens: ["USER"], header: ["USER"]))),
        FrontendCase(
            "guide grid: elevated, encoded query intact",
            "/tv.plex.providers.epg.xmltv:135/grid?type=1%2C4&\(user)&beginsAt%3C=1767236400",
            expect: Outcome(
                status: 200,
                upstream: Upstream(
                    "/tv.plex.providers.epg.xmltv:135/grid", query: "type=1%2C4&beginsAt%3C=1767236400",
                    header: ["OWNER"])),
            differences: [
                .envoyGRPC: .limit(
                    Outcome(
                        status: 200,
                        upstream: Upstream(
                            "/tv.plex.providers.epg.xmltv:135/grid", query: "beginsAt%3C=1767236400&type=1%2C4",
                            header: ["OWNER"])),
                    why: "Envoy rebuilds a query it removes a parameter from: names sorted, bytes kept")
            ]),
        {
            var row = FrontendCase(
                "a byte that is not UTF-8 reaches Plex as sent", "",
                expect: Outcome(
                    status: 200,
                    upstream: Upstream(
                        "/library/sections", query: "a=%FF&X-Plex-Token=USER", tokens: ["USER"], header: ["USER"])
                ),
                differences: [
                    .haproxy: .limit(
                        Outcome(status: 400, upstream: nil),
                        why:
                            "HAProxy refuses a request line with a raw non-ASCII byte (option accept-invalid-http-request)"
                    ),
                    .envoyGRPC: envoyRefusesTheByte, .envoyHTTP: envoyRefusesTheByte,
                ])
            row.target = Array("/library/sections?a=".utf8) + [0xFF] + Array("&\(user)".utf8)
            return row
        }(),
        FrontendCase(
            "header token, JSON: elevated", "/media/providers",
            headers: [("X-Plex-Token", userToken), ("Accept", "application/json")],
            expect: Outcome(
                status: 200, upstream: Upstream("/media/providers", header: ["OWNER"]),
                bodyContains: "tv.plex.providers.epg.xmltv:135")),
        FrontendCase(
            "query token on a discovery path: elevated, query carrier removed", "/media/providers?\(user)",
            expect: Outcome(status: 200, upstream: Upstream("/media/providers", header: ["OWNER"]))),
        FrontendCase(
            "header token, not Live TV: preserved", "/hubs/promoted", headers: [("X-Plex-Token", userToken)],
            expect: Outcome(status: 200, upstream: Upstream("/hubs/promoted", header: ["USER"]))),
        FrontendCase(
            "a token Plex refuses: never elevated", "/livetv/dvrs?X-Plex-Token=\(otherToken)",
            expect: Outcome(
                status: 401,
                upstream: Upstream("/livetv/dvrs", query: "X-Plex-Token=OTHER", tokens: ["OTHER"], header: ["OTHER"]))),
        FrontendCase(
            "a made-up token: never elevated", "/livetv/dvrs", headers: [("X-Plex-Token", "fakefakefakefake")],
            expect: Outcome(
                status: 401, upstream: Upstream("/livetv/dvrs", header: ["unknown:sha256:8defa1fb2dfdb66a"]))),
        FrontendCase(
            "no token: never elevated", "/livetv/dvrs",
            expect: Outcome(status: 401, upstream: Upstream("/livetv/dvrs", header: []))),
        FrontendCase(
            "a token in a hop-by-hop header is neither used nor forwarded", "/livetv/dvrs",
            headers: [("X-Plex-Token", userToken), ("Connection", "close, X-Plex-Token")],
            expect: Outcome(status: 401, upstream: Upstream("/livetv/dvrs", header: []))),
        {
            var row = FrontendCase(
                "a second carrier beside a valid token: not elevated",
                "/livetv/dvrs?\(user)&x-plex-token=\(otherToken)",
                expect: Outcome(
                    status: 200,
                    upstream: Upstream(
                        "/livetv/dvrs", query: "X-Plex-Token=USER&x-plex-token=OTHER", tokens: ["USER"],
                        header: ["USER"])))
            row.expect.upstream?.smuggled = ["OTHER"]
            return row
        }(),
        FrontendCase(
            "a stream start whose body the service cannot see: not elevated", "/playQueues?\(liveQueueQuery)",
            method: "POST",
            headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "uri=%2Flibrary%2Fmetadata%2F1",
            expect: Outcome(
                status: 403,
                upstream: Upstream(
                    "/playQueues", query: liveQueueQuery.replacingOccurrences(of: userToken, with: "USER"),
                    tokens: ["USER"],
                    header: ["USER"]))),
        FrontendCase(
            "tune with an empty body (Content-Length: 0, as browsers send it): elevated",
            "/livetv/dvrs/135/channels/c7pt/tune?\(user)", method: "POST", body: "",
            expect: Outcome(status: 200, upstream: Upstream("/livetv/dvrs/135/channels/c7pt/tune", header: ["OWNER"]))),
        FrontendCase(
            "tune with neither Content-Length nor Transfer-Encoding: elevated",
            "/livetv/dvrs/135/channels/c7pt/tune?\(user)", method: "POST",
            expect: Outcome(status: 200, upstream: Upstream("/livetv/dvrs/135/channels/c7pt/tune", header: ["OWNER"])),
            differences: [
                .caddy: .limit(
                    Outcome(
                        status: 403,
                        upstream: Upstream(
                            "/livetv/dvrs/135/channels/c7pt/tune", query: "X-Plex-Token=USER", tokens: ["USER"],
                            header: ["USER"])),
                    why:
                        "Caddy cannot tell this from a chunked body (Go hides Transfer-Encoding), so it is marked unseen"
                )
            ]),
        FrontendCase(
            "tune with a chunked body the service cannot see: not elevated",
            "/livetv/dvrs/135/channels/c7pt/tune?\(user)", method: "POST", headers: [("Transfer-Encoding", "chunked")],
            body: "x",
            expect: Outcome(
                status: 403,
                upstream: Upstream(
                    "/livetv/dvrs/135/channels/c7pt/tune", query: "X-Plex-Token=USER", tokens: ["USER"],
                    header: ["USER"])),
            differences: [.envoyGRPC: envoySeesTheBody, .envoyHTTP: envoySeesTheBody]),
        FrontendCase(
            "decision headers sent by a client change nothing", "/library/sections?\(user)",
            headers: [
                ("X-Plexauthz-Decision", "elevated"), ("X-Plexauthz-Uri", "/livetv/dvrs"),
                ("X-Plexauthz-Token", "forged00000000000000"), ("X-Plexauthz-Query", "?"),
            ],
            expect: Outcome(
                status: 200,
                upstream: Upstream("/library/sections", query: "X-Plex-Token=USER", tokens: ["USER"], header: ["USER"]))
        ),
    ] + blockerCases + [
        FrontendCase(
            "websocket notifications: upgraded with the user's own token", "/:/websockets/notifications?\(user)",
            headers: [
                ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            expect: Outcome(
                status: 101,
                upstream: Upstream(
                    "/:/websockets/notifications", query: "X-Plex-Token=USER", tokens: ["USER"], header: ["USER"]),
                bodyContains: "NotificationContainer"))
    ]

/// Envoy's HTTP/1 codec answers 400 to a request line with a raw non-ASCII byte.
let envoyRefusesTheByte = Difference.limit(
    Outcome(status: 400, upstream: nil), why: "Envoy refuses a request line with a raw non-ASCII byte")

/// Envoy buffers the body (`with_request_body`) and sends it with the check: a body the service has seen and
/// that names nothing else is no reason to refuse the tune.
let envoySeesTheBody = Difference.seesMore(
    Outcome(status: 200, upstream: Upstream("/livetv/dvrs/135/channels/c7pt/tune", header: ["OWNER"])),
    why: "Envoy sends the body with the check")

/// Five failed Live TV attempts from one source block it; the block spares its valid token, its ordinary
/// requests and every other source.
let blockerCases: [FrontendCase] =
    (1...5).map {
        FrontendCase(
            "failed Live TV attempt \($0) from a source", "/livetv/dvrs", source: "203.0.113.66",
            expect: Outcome(status: 401, upstream: Upstream("/livetv/dvrs", header: [])))
    } + [
        FrontendCase(
            "the source is blocked: 429, Plex never asked", "/livetv/dvrs", source: "203.0.113.66",
            expect: Outcome(status: 429, upstream: nil)),
        FrontendCase(
            "the blocked source with a valid token: elevated", "/livetv/dvrs?\(user)", source: "203.0.113.66",
            expect: Outcome(status: 200, upstream: Upstream("/livetv/dvrs", header: ["OWNER"]))),
        FrontendCase(
            "the blocked source, ordinary request: untouched", "/library/sections", source: "203.0.113.66",
            expect: Outcome(status: 401, upstream: Upstream("/library/sections", header: []))),
        FrontendCase(
            "another source: not blocked", "/livetv/dvrs", source: "203.0.113.67",
            expect: Outcome(status: 401, upstream: Upstream("/livetv/dvrs", header: []))),
    ]
