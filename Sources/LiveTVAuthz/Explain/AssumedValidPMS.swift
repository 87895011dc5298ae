import LiveTVAuthzCore

/// `explain --replay`: a PMS that takes every token as valid, so the full guard (abuse state, tracked
/// playback) can replay a sequence of requests without a Plex server. Its answer is `.assumedValid`, and
/// every elevation it leads to carries the `assumedForExplain` proof: the service never uses it.
public struct AssumedValidPMS: PMSClient {
    public init() {}

    public func checkToken(_ token: PlexToken) async -> TokenCheck { .assumedValid }

    public func identity() async -> String? { nil }

    public func send(_ request: PMSRequest, timeout: Duration) async -> Int? { nil }
}
