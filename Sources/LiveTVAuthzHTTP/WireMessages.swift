import LiveTVAuthzCore

/// One header field of a decision subrequest: the name as sent (ASCII), the value as raw bytes. Values
/// stay bytes because nginx passes the client's target in `X-Original-URI` byte for byte, invalid UTF-8
/// included (elevation-rules §6: the target is bytes, never repaired).
public struct WireField: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    public init(_ name: String, _ value: String) {
        self.init(name: name, value: Array(value.utf8))
    }

    /// The value as text (a byte that is not UTF-8 becomes U+FFFD: only for headers whose bytes do not
    /// travel on).
    public var text: String { String(decoding: value, as: UTF8.self) }
}

/// The header fields of a subrequest, in order, duplicates kept.
public struct WireHeaders: Sendable, Hashable, Sequence {
    public var fields: [WireField]

    public init(_ fields: [WireField] = []) { self.fields = fields }

    public init(_ pairs: [(String, String)]) { self.fields = pairs.map { WireField($0.0, $0.1) } }

    public func makeIterator() -> IndexingIterator<[WireField]> { fields.makeIterator() }

    /// The first value of `name` (compared case-insensitively).
    public func first(_ name: String) -> [UInt8]? {
        let needle = Array(name.lowercased().utf8)
        return fields.first { $0.name.utf8.elementsEqualLowercased(needle) }?.value
    }

    /// The first value of `name` as text.
    public func firstText(_ name: String) -> String? { first(name).map { String(decoding: $0, as: UTF8.self) } }

    public mutating func add(_ name: String, _ value: String) { fields.append(WireField(name, value)) }
}

/// What a decision subrequest looked like on the wire, before any adapter reads it.
public struct WireRequest: Sendable {
    /// The subrequest's own method (nginx always sends GET; Envoy HTTP mode sends the client's).
    public var method: String
    /// The subrequest's own target, as bytes (`/v1/nginx`, `/v1/envoy/livetv/dvrs?…`).
    public var target: [UInt8]
    public var headers: WireHeaders
    /// The subrequest's body, if any was kept (only Envoy HTTP mode sends one).
    public var body: [UInt8]
    /// The body was longer than the inspection limit and was not kept.
    public var bodyTooLarge: Bool

    public init(method: String, target: [UInt8], headers: WireHeaders, body: [UInt8] = [], bodyTooLarge: Bool = false) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.bodyTooLarge = bodyTooLarge
    }

    public init(method: String, uri: String, headers: WireHeaders, body: [UInt8] = [], bodyTooLarge: Bool = false) {
        self.init(method: method, target: Array(uri.utf8), headers: headers, body: body, bodyTooLarge: bodyTooLarge)
    }

    /// The path of the subrequest's own target (before `?`), as text.
    public var path: String {
        String(decoding: target.prefix { $0 != 0x3F }, as: UTF8.self)
    }
}

/// An answer of the decision server.
public struct ServerResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func text(_ status: Int, _ text: String, headers: [(String, String)] = []) -> ServerResponse {
        ServerResponse(
            status: status, headers: [("Content-Type", "text/plain; charset=utf-8")] + headers,
            body: Array((text + "\n").utf8))
    }

    /// The reason phrase of the statuses the server uses.
    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

extension Collection where Element == UInt8 {
    /// ASCII case-insensitive equality against an already lower-cased needle.
    func elementsEqualLowercased(_ lowercased: [UInt8]) -> Bool {
        guard count == lowercased.count else { return false }
        return zip(self, lowercased).allSatisfy { ($0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0) == $1 }
    }
}
