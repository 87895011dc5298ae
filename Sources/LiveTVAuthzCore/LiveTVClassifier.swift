/// Elevation-rules §2–§6 as one pure function of the request.
public struct LiveTVClassifier: Sendable {
    public var mode: ElevationMode
    public var references: LiveTVReferenceMatcher

    public init(mode: ElevationMode = .liveTV, references: LiveTVReferenceMatcher = LiveTVReferenceMatcher()) {
        self.mode = mode
        self.references = references
    }

    public func classify(_ request: AuthzRequest) -> Classification {
        let target = request.target
        let token = TokenLocation(target: target, headers: request.headers)
        func result(_ verdict: Classification.Verdict, _ reason: ClassificationReason) -> Classification {
            Classification(verdict: verdict, reason: reason, token: token, target: target)
        }
        if let unsafe = PathSafety.check(slice: target.path) {
            return result(.refused(.unsafePath), .unsafePath(unsafe))
        }
        if token.smuggledCarrier {
            return result(.refused(.tokenSmuggling), .tokenSmuggling)
        }
        let body = request.body.effective
        let path = target.path
        if mode == .liveTV, case .unseen = body, let mutating = Self.mutatingSurface(method: request.method, path: path)
        {
            return result(.refused(.bodyUnseen), .bodyUnseen(mutating))
        }
        switch match(request, target: target, body: body) {
        case .candidate(let surface):
            if !request.frontendRemovesQueryTokens, token.token != nil, token.queryTokenParameters > 0 {
                return result(.refused(.queryTokenKept), .queryTokenKept(surface))
            }
            if token.token == nil {
                return result(
                    .candidate(surface),
                    .noToken(surface, unusable: token.unusableToken, hopByHop: token.hopByHopHeaderToken))
            }
            return result(.candidate(surface), .matched(surface))
        case .miss(let nearMiss):
            return result(.notCandidate, .notCandidate(nearMiss))
        }
    }

    enum Match {
        case candidate(ElevationRule)
        case miss(NearMiss?)
    }

    /// Walks the §4 table in row order; the first full match (method, path and evidence) wins.
    func match(_ request: AuthzRequest, target: RequestTarget, body: RequestBody) -> Match {
        let method = request.method
        let path = target.path
        // Fine print 12: PMS answers these with tokens of the caller's rank, or changes the server.
        if Self.isCredentialSurface(path) { return .miss(.credentialSurface) }
        if mode == .all {
            return method.isEmpty || method == "OPTIONS" ? .miss(nil) : .candidate(.all)
        }
        let isRead = method == "GET" || method == "HEAD"
        var nearMiss: NearMiss? = nil
        func consider(_ surface: ElevationRule, methodOK: Bool, evidence: () -> Evidence) -> Bool {
            guard methodOK else {
                if nearMiss == nil { nearMiss = .method(surface, method) }
                return false
            }
            guard mode.allows(surface) else {
                if nearMiss == nil { nearMiss = .mode(surface, mode) }
                return false
            }
            switch evidence() {
            case .ok: return true
            case .missing:
                if nearMiss == nil { nearMiss = .evidenceMissing(surface) }
            case .notLiveTV:
                if nearMiss == nil { nearMiss = .evidenceNotLiveTV(surface) }
            }
            return false
        }
        let always: () -> Evidence = { .ok }

        if path.hasBytePrefix(Paths.livetv) {
            if consider(.livetv, methodOK: isRead, evidence: always) { return .candidate(.livetv) }
            if Self.isTunePath(path), consider(.livetvTune, methodOK: method == "POST", evidence: always) {
                return .candidate(.livetvTune)
            }
        }
        if path.elementsEqual(Paths.providers) {
            if consider(.providers, methodOK: isRead, evidence: always) { return .candidate(.providers) }
        }
        if path.hasBytePrefix(Paths.grabbers) {
            // discovery-only narrows this row to exactly /media/grabbers/devices.
            if mode == .discoveryOnly, !path.elementsEqual(Paths.grabberDevices) {
                if nearMiss == nil { nearMiss = .mode(.grabbers, mode) }
            } else if consider(.grabbers, methodOK: isRead, evidence: always) {
                return .candidate(.grabbers)
            }
        }
        if path.hasBytePrefix(Paths.epgProvider) {
            if consider(.epgProvider, methodOK: isRead, evidence: always) { return .candidate(.epgProvider) }
        }
        if Self.isUnder(path, Paths.subscriptions) {
            let isTemplate = Self.isUnder(path, Paths.subscriptionTemplate)
            let isWrite = method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE"
            if !isTemplate, !isWrite, consider(.subscriptionsRead, methodOK: isRead, evidence: always) {
                return .candidate(.subscriptionsRead)
            }
            if isTemplate,
                consider(
                    .subscriptionsTemplate, methodOK: isRead,
                    evidence: {
                        subscriptionEvidence(target: target, body: .none)
                    })
            {
                return .candidate(.subscriptionsTemplate)
            }
            if isWrite,
                consider(
                    .subscriptionsWrite, methodOK: true, evidence: { subscriptionEvidence(target: target, body: body) })
            {
                return .candidate(.subscriptionsWrite)
            }
            if Self.isNumberedSubscription(path), isWrite,
                consider(
                    .subscriptionsTeardown, methodOK: method == "DELETE",
                    evidence: { sessionEvidence(request, target: target) })
            {
                return .candidate(.subscriptionsTeardown)
            }
        }
        if path.hasBytePrefix(Paths.transcode) {
            if consider(
                .transcode, methodOK: isRead,
                evidence: {
                    referenceEvidence(target: target, body: .none, names: [Names.path])
                })
            {
                return .candidate(.transcode)
            }
        }
        if Self.isUnder(path, Paths.playQueues) {
            // Fine print 4: a body counts only for the POST (stream start); reads are judged on the query.
            let isPost = method == "POST"
            if consider(
                .playQueue, methodOK: isRead || isPost,
                evidence: {
                    referenceEvidence(target: target, body: isPost ? body : .none, names: [Names.uri, Names.path])
                })
            {
                return .candidate(.playQueue)
            }
        }
        if path.elementsEqual(Paths.timeline) {
            if consider(
                .timeline, methodOK: isRead,
                evidence: {
                    referenceEvidence(target: target, body: .none, names: [Names.key])
                })
            {
                return .candidate(.timeline)
            }
        }
        if path.elementsEqual(Paths.root) || path.elementsEqual(Paths.identity) {
            if consider(
                .rootReferer, methodOK: isRead,
                evidence: {
                    guard let referer = request.firstHeader("referer") else { return .missing }
                    return LiveTVReferenceMatcher.isLiveTVPage(referer.utf8) ? .ok : .notLiveTV
                })
            {
                return .candidate(.rootReferer)
            }
        }
        return .miss(nearMiss)
    }

    enum Evidence { case ok, missing, notLiveTV }

    /// Every value of every inspected name (query, and body when given) is a Live TV reference, and at
    /// least one is present.
    func referenceEvidence(target: RequestTarget, body: RequestBody, names: [[UInt8]]) -> Evidence {
        evidence(target: target, body: body) { name in names.contains { name.equalsLowercased($0) } }
    }

    /// Subscription evidence keys: `guid`, `key`, `uri`, `ratingkey` and hint keys ending in `[guid]`,
    /// `[key]`, `[uri]`, `[ratingkey]` (lower-cased, trimmed).
    func subscriptionEvidence(target: RequestTarget, body: RequestBody) -> Evidence {
        evidence(target: target, body: body, isKey: Self.isSubscriptionEvidenceKey)
    }

    static func isSubscriptionEvidenceKey(_ name: ArraySlice<UInt8>) -> Bool {
        let trimmed = name.trimmedBytes()
        for key in Names.subscriptionKeys {
            if trimmed.equalsLowercased(key) { return true }
            let suffixLength = key.count + 2
            if trimmed.count >= suffixLength {
                let suffix = trimmed.suffix(suffixLength)
                if suffix.first == 0x5B, suffix.last == 0x5D, suffix.dropFirst().dropLast().equalsLowercased(key) {
                    return true
                }
            }
        }
        return false
    }

    private func evidence(target: RequestTarget, body: RequestBody, isKey: (ArraySlice<UInt8>) -> Bool) -> Evidence {
        var found = false
        let query = target.query
        for component in query.components where isKey(query.decodedName(component)) {
            guard references.isReference(query.decodedValue(component)) else { return .notLiveTV }
            found = true
        }
        if case .seen(let bytes, let contentType) = body {
            guard let fields = BodyFields.fields(of: bytes, contentType: contentType) else { return .notLiveTV }
            for field in fields where isKey(field.name) {
                guard let value = field.value, references.isReference(value) else { return .notLiveTV }
                found = true
            }
        }
        return found ? .ok : .missing
    }

    /// `subscriptions-teardown`: a playback or session id, non-empty after trimming, in a header or the
    /// query (names case-insensitive, any occurrence counts).
    func sessionEvidence(_ request: AuthzRequest, target: RequestTarget) -> Evidence {
        for field in request.headers
        where Names.sessionIDs.contains(where: { field.name.utf8.equalsLowercased($0) })
            && !Array(field.value.utf8)[...].trimmedBytes().isEmpty
        {
            return .ok
        }
        let query = target.query
        for component in query.components
        where Names.sessionIDs.contains(where: { query.nameEquals(component, $0) })
            && !query.decodedValue(component).trimmedBytes().isEmpty
        {
            return .ok
        }
        return .missing
    }

    /// The mutating surfaces judged on method and path alone (fine print 11).
    static func mutatingSurface(method: String, path: ArraySlice<UInt8>) -> ElevationRule? {
        switch method {
        case "POST":
            if isTunePath(path) { return .livetvTune }
            if isUnder(path, Paths.playQueues) { return .playQueue }
            if isUnder(path, Paths.subscriptions) { return .subscriptionsWrite }
        case "PUT", "PATCH", "DELETE":
            if isUnder(path, Paths.subscriptions) { return .subscriptionsWrite }
        default:
            break
        }
        return nil
    }

    /// Paths under `/security/`, `/myplex/`, `/:/prefs`, `/accounts`, `/system/`, `/api/` (segment
    /// boundaries; compared case-insensitively, since refusing more is always safe).
    static func isCredentialSurface(_ path: ArraySlice<UInt8>) -> Bool {
        Paths.credentials.contains { base in
            path.hasPrefixLowercased(base)
                && (path.count == base.count || path[path.startIndex + base.count] == 0x2F)
        }
    }

    /// `path == base` or `path` starts with `base + "/"` (segment-boundary prefix).
    static func isUnder(_ path: ArraySlice<UInt8>, _ base: [UInt8]) -> Bool {
        guard path.hasBytePrefix(base) else { return false }
        return path.count == base.count || path[path.startIndex + base.count] == 0x2F
    }

    /// `/livetv/dvrs/{dvr}/channels/{channel}/tune`.
    static func isTunePath(_ path: ArraySlice<UInt8>) -> Bool {
        let segments = path.dropFirst().split(separator: 0x2F, omittingEmptySubsequences: false)
        return segments.count == 6 && segments[0].elementsEqual("livetv".utf8)
            && segments[1].elementsEqual("dvrs".utf8) && !segments[2].isEmpty
            && segments[3].elementsEqual("channels".utf8) && !segments[4].isEmpty
            && segments[5].elementsEqual("tune".utf8)
    }

    /// `/media/subscriptions/{digits}`.
    static func isNumberedSubscription(_ path: ArraySlice<UInt8>) -> Bool {
        guard path.hasBytePrefix(Paths.subscriptions) else { return false }
        let rest = path.dropFirst(Paths.subscriptions.count)
        guard rest.first == 0x2F else { return false }
        let digits = rest.dropFirst()
        return !digits.isEmpty && digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    enum Paths {
        static let root: [UInt8] = Array("/".utf8)
        static let identity: [UInt8] = Array("/identity".utf8)
        static let livetv: [UInt8] = Array("/livetv/".utf8)
        static let providers: [UInt8] = Array("/media/providers".utf8)
        static let grabbers: [UInt8] = Array("/media/grabbers/".utf8)
        static let grabberDevices: [UInt8] = Array("/media/grabbers/devices".utf8)
        static let epgProvider: [UInt8] = Array("/tv.plex.providers.epg.xmltv:".utf8)
        static let subscriptions: [UInt8] = Array("/media/subscriptions".utf8)
        static let subscriptionTemplate: [UInt8] = Array("/media/subscriptions/template".utf8)
        static let transcode: [UInt8] = Array("/video/:/transcode/".utf8)
        static let playQueues: [UInt8] = Array("/playQueues".utf8)
        static let timeline: [UInt8] = Array("/:/timeline".utf8)
        static let credentials: [[UInt8]] = ["/security", "/myplex", "/:/prefs", "/accounts", "/system", "/api"].map {
            Array($0.utf8)
        }
    }

    enum Names {
        static let path: [UInt8] = Array("path".utf8)
        static let uri: [UInt8] = Array("uri".utf8)
        static let key: [UInt8] = Array("key".utf8)
        static let subscriptionKeys: [[UInt8]] = ["guid", "key", "uri", "ratingkey"].map { Array($0.utf8) }
        static let sessionIDs: [[UInt8]] = ["x-plex-playback-session-id", "x-plex-session-id"].map { Array($0.utf8) }
    }
}
