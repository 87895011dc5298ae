import LiveTVAuthzCore
import Testing

private let m = machineID
private let liveSession = "%2Flivetv%2Fsessions%2Fc1e26483"
private let libraryItem = "%2Flibrary%2Fmetadata%2F5123"
private let liveGuid = "tv.plex.xmltv%3A%2F%2Fmovie%2FLive%253A%2520NBA"
private let imdbGuid = "com.plexapp.agents.imdb%3A%2F%2Ftt1234567"
private let serverLive = "server%3A%2F%2F\(m)%2Fcom.plexapp.plugins.library%2Flivetv%2Fsessions%2Fc1"
private let serverLibrary = "server%3A%2F%2F\(m)%2Fcom.plexapp.plugins.library%2Flibrary%2Fmetadata%2F5123"
private let tune = "/livetv/dvrs/135/channels/c7pt/tune"
private let livePage = "https://plex.example.com/web/index.html#!/server/\(m)/tv.plex.providers.epg.xmltv:135"

/// Each surface of elevation-rules §4, with its negative twins right after it.
let surfaceCases: [Case] = [
    // livetv
    Case("GET", "/livetv/dvrs?\(tok)", .livetv),
    Case("GET", "/library/sections?x=/livetv/&\(tok)", .none),
    Case("HEAD", "/livetv/dvrs?\(tok)", .livetv),
    Case("get", "/livetv/dvrs?\(tok)", .none),
    Case("Get", "/livetv/dvrs?\(tok)", .none),
    Case("", "/livetv/dvrs?\(tok)", .none),
    Case("GET", "/livetv/sessions/abc/index.m3u8?offset=0.8&\(tok)", .livetv),
    Case("GET", "/livetvx/dvrs?\(tok)", .none),
    Case("GET", "/livetv/?\(tok)", .livetv),
    Case("GET", "/livetv?\(tok)", .none),
    Case("GET", "/LiveTV/dvrs?\(tok)", .none),
    Case("OPTIONS", "/livetv/dvrs?\(tok)", .none),
    Case("POST", "/livetv/dvrs?\(tok)", .none),
    Case("PUT", "/livetv/dvrs/1?\(tok)", .none),
    Case("PATCH", "/livetv/dvrs/1?\(tok)", .none),
    Case("DELETE", "/livetv/dvrs/1?\(tok)", .none),
    Case("GET", "/livetv/dvrs", .noToken),
    Case("GET", "/livetv/dvrs", .livetv, headers: [("X-Plex-Token", userToken)]),
    Case("GET", "/library/sections", .none),
    Case("GET", "/livetv/a.b/c?\(tok)", .livetv),
    Case("GET", "/livetv/.../c?\(tok)", .livetv),
    Case("GET", "/livetv/dvrs/?\(tok)", .livetv),
    Case("GET", "/livetv/dvrs%3Fx?\(tok)", .livetv),
    // livetv-tune
    Case("POST", "\(tune)?X-Plex-Session-Identifier=7d1e&\(tok)", .livetvTune),
    Case("POST", "\(tune)/?\(tok)", .none),
    Case("POST", "/livetv/dvrs/135/channels/tune?\(tok)", .none),
    Case("POST", "/livetv/dvrs/135/channel/c7pt/tune?\(tok)", .none),
    Case("POST", "/livetv/dvrs/135/channels/c7pt/tune/x?\(tok)", .none),
    Case("GET", "\(tune)?\(tok)", .livetv),
    Case("PUT", "\(tune)?\(tok)", .none),
    Case("post", "\(tune)?\(tok)", .none),
    Case("POST", "\(tune)?\(tok)", .bodyUnseen, body: .unseen),
    Case("POST", "\(tune)?\(tok)", .livetvTune, body: .seen(bytes: [], contentType: nil)),
    Case("POST", "\(tune)?\(tok)", .livetvTune, body: form("a=b")),
    Case("POST", tune, .noToken),
    Case("POST", "\(tune)?\(tok)", .none, mode: .discoveryOnly),
    // providers
    Case("GET", "/media/providers?includePreferences=1&\(tok)", .providers),
    Case("GET", "/media/providers/1?\(tok)", .none),
    Case("GET", "/media/providersX?\(tok)", .none),
    Case("POST", "/media/providers?\(tok)", .none),
    Case("GET", "/media/providers?\(tok)", .providers, mode: .discoveryOnly),
    // grabbers
    Case("GET", "/media/grabbers/devices?\(tok)", .grabbers),
    Case("GET", "/media/grabbers?\(tok)", .none),
    Case("GET", "/media/grabbers/devices/discover?\(tok)", .grabbers),
    Case("GET", "/media/grabbers/devices/discover?\(tok)", .none, mode: .discoveryOnly),
    Case("GET", "/media/grabbers/devices?\(tok)", .grabbers, mode: .discoveryOnly),
    Case("POST", "/media/grabbers/devices?\(tok)", .none),
    // epg-provider
    Case("GET", "/tv.plex.providers.epg.xmltv:135/grid?type=1%2C4&\(tok)", .epgProvider),
    Case("GET", "/tv.plex.providers.epg.cloud:1/grid?\(tok)", .none),
    Case("OPTIONS", "/tv.plex.providers.epg.xmltv:135/grid?type=1%2C4", .none),
    Case("GET", "/TV.plex.providers.epg.xmltv:135/grid?\(tok)", .none),
    Case("GET", "/tv.plex.providers.epg.xmltv:135/hubs/discover?\(tok)", .epgProvider, mode: .discoveryOnly),
    // subscriptions-read
    Case("GET", "/media/subscriptions?includeGrabs=1&\(tok)", .subscriptionsRead),
    Case("GET", "/media/subscriptionsX?\(tok)", .none),
    Case("GET", "/media/subscriptions/scheduled?\(tok)", .subscriptionsRead),
    Case("GET", "/media/subscriptions/812?includeGrabs=1&\(tok)", .subscriptionsRead),
    Case("OPTIONS", "/media/subscriptions/812?\(tok)", .none),
    Case("GET", "/media/subscriptions?\(tok)", .subscriptionsRead, mode: .discoveryOnly),
    // subscriptions-template
    Case("GET", "/media/subscriptions/template?guid=\(liveGuid)&\(tok)", .subscriptionsTemplate),
    Case("GET", "/media/subscriptions/template?\(tok)", .none),
    Case("GET", "/media/subscriptions/template?guid=\(imdbGuid)&\(tok)", .none),
    Case("GET", "/media/subscriptions/template/x?guid=\(liveGuid)&\(tok)", .subscriptionsTemplate),
    Case("GET", "/media/subscriptions/templates?\(tok)", .subscriptionsRead),
    Case("GET", "/media/subscriptions/template?guid=\(liveGuid)&key=\(libraryItem)&\(tok)", .none),
    Case("GET", "/media/subscriptions/template?hints%5Bguid%5D=\(liveGuid)&\(tok)", .subscriptionsTemplate),
    Case("GET", "/media/subscriptions/template?hints%5Btitle%5D=\(liveGuid)&\(tok)", .none),
    Case("GET", "/media/subscriptions/template?GUID=\(liveGuid)&\(tok)", .subscriptionsTemplate),
    Case("GET", "/media/subscriptions/template?guid=\(liveGuid)&GUID=\(imdbGuid)&\(tok)", .none),
    Case("GET", "/media/subscriptions/template?\(tok)", .none, body: form("guid=\(liveGuid)")),
    Case("GET", "/media/subscriptions/template?guid=\(liveGuid)&\(tok)", .subscriptionsTemplate, mode: .discoveryOnly),
    // subscriptions-write
    Case("POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&type=1&\(tok)", .subscriptionsWrite),
    Case("POST", "/media/subscriptions?hints%5Bguid%5D=\(imdbGuid)&type=1&\(tok)", .none),
    Case("POST", "/media/subscriptions?type=1&\(tok)", .none),
    Case("POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&hints%5BratingKey%5D=5123&\(tok)", .none),
    Case(
        "POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&hints%5BratingKey%5D=\(liveGuid)&\(tok)",
        .subscriptionsWrite),
    Case(
        "POST",
        "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&hints%5Btitle%5D=Movie&params%5BmediaProviderID%5D=135&\(tok)",
        .subscriptionsWrite),
    Case("PUT", "/media/subscriptions/5?prefs%5BminVideoQuality%5D=0&guid=\(liveGuid)&\(tok)", .subscriptionsWrite),
    Case("PUT", "/media/subscriptions/5?prefs%5BminVideoQuality%5D=0&\(tok)", .none),
    Case("PATCH", "/media/subscriptions/5?uri=\(serverLive)&\(tok)", .subscriptionsWrite),
    Case("PATCH", "/media/subscriptions/5?uri=\(serverLibrary)&\(tok)", .none),
    Case("DELETE", "/media/subscriptions/5?hints%5BratingKey%5D=\(liveGuid)&\(tok)", .subscriptionsWrite),
    Case("POST", "/media/subscriptions?\(tok)", .subscriptionsWrite, body: form("hints%5Bguid%5D=\(liveGuid)&type=1")),
    Case("POST", "/media/subscriptions?\(tok)", .none, body: form("hints%5Bguid%5D=\(imdbGuid)&type=1")),
    Case("POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&\(tok)", .none, body: form("guid=\(imdbGuid)")),
    Case(
        "POST", "/media/subscriptions?\(tok)", .subscriptionsWrite,
        body: json(#"{"guid":"tv.plex.xmltv://movie/x","type":1}"#)),
    Case(
        "POST", "/media/subscriptions?\(tok)", .none, body: json(#"{"guid":"com.plexapp.agents.imdb://tt1","type":1}"#)),
    Case("POST", "/media/subscriptions?\(tok)", .none, body: json(#"{"guid":5}"#)),
    Case("POST", "/media/subscriptions?\(tok)", .none, body: json(#"{"guid":["tv.plex.xmltv://movie/x"]}"#)),
    Case("POST", "/media/subscriptions?\(tok)", .none, body: json(#"{"guid":"tv.plex.xmltv://movie/x""#)),
    Case(
        "POST", "/media/subscriptions?\(tok)", .subscriptionsWrite,
        body: json(#"{"guid":"tv.plex.xmltv://movie/x","hints":{"guid":"com.plexapp.agents.imdb://tt1"}}"#)),
    Case("POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&\(tok)", .bodyUnseen, body: .unseen),
    Case(
        "POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&\(tok)", .bodyUnseen,
        body: .seen(bytes: Array(repeating: 0x61, count: 64 * 1024 + 1), contentType: "text/plain")),
    Case(
        "POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&\(tok)", .subscriptionsWrite,
        body: .seen(bytes: Array("a".utf8), contentType: "text/plain")),
    Case(
        "POST", "/media/subscriptions?\(tok)", .none,
        body: .seen(bytes: Array("guid=\(liveGuid)".utf8), contentType: "text/plain")),
    Case("POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)", .noToken),
    Case("POST", "/media/subscriptions?type=1", .none),
    Case("POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&\(tok)", .none, mode: .discoveryOnly),
    Case("POST", "/media/subscriptions?hints%5Bguid%5D=\(liveGuid)&\(tok)", .none, body: .unseen, mode: .discoveryOnly),
    // subscriptions-teardown
    Case("DELETE", "/media/subscriptions/809?X-Plex-Playback-Session-Id=5b0f&\(tok)", .subscriptionsTeardown),
    Case("DELETE", "/media/subscriptions/809?\(tok)", .none),
    Case("DELETE", "/media/subscriptions/809?X-Plex-Session-Id=%20%20&\(tok)", .none),
    Case("DELETE", "/media/subscriptions/809?\(tok)", .subscriptionsTeardown, headers: [("x-plex-session-id", "7d1e")]),
    Case("DELETE", "/media/subscriptions/809?\(tok)", .none, headers: [("X-Plex-Session-Id", "  ")]),
    Case("DELETE", "/media/subscriptions/abc?X-Plex-Session-Id=7d1e&\(tok)", .none),
    Case("DELETE", "/media/subscriptions/809?x-plex-playback-session-id=5b0f&\(tok)", .subscriptionsTeardown),
    Case("DELETE", "/media/subscriptions/809/x?X-Plex-Session-Id=7d1e&\(tok)", .none),
    Case("GET", "/media/subscriptions/809?X-Plex-Session-Id=7d1e&\(tok)", .subscriptionsRead),
    Case("POST", "/media/subscriptions/809?X-Plex-Session-Id=7d1e&\(tok)", .none),
    Case("DELETE", "/media/subscriptions/809?X-Plex-Session-Id=7d1e&\(tok)", .bodyUnseen, body: .unseen),
    Case(
        "DELETE", "/media/subscriptions/809?X-Plex-Session-Id=7d1e&hints%5Bguid%5D=\(liveGuid)&\(tok)",
        .subscriptionsWrite),
    // transcode
    Case("GET", "/video/:/transcode/universal/decision?hasMDE=1&path=\(liveSession)&\(tok)", .transcode),
    Case("GET", "/video/:/transcode/universal/decision?hasMDE=1&path=\(libraryItem)&\(tok)", .none),
    Case("GET", "/video/:/transcode/universal/start.mpd?path=/library/metadata/9?x=/livetv/&\(tok)", .none),
    Case("GET", "/video/:/transcode/universal/decision?hasMDE=1&\(tok)", .none),
    Case("GET", "/video/:/transcode/universal/decision?path=\(liveSession)&Path=\(libraryItem)&\(tok)", .none),
    Case("GET", "/video/:/transcode/universal/decision?PATH=\(liveSession)&\(tok)", .transcode),
    Case("GET", "/video/:/transcode/universal/decision?path=%252Flivetv%252Fsessions%252Fabc&\(tok)", .transcode),
    Case("GET", "/video/:/transcode/universal/decision?path=%2Flivetv%2F..%2Flibrary%2Fsections&\(tok)", .none),
    Case("GET", "/video/:/transcode/universal/decision?path=%2Flivetv%2Fsessions%2F%252e%252e%2Flibrary&\(tok)", .none),
    Case("GET", "/video/:/transcode/universal/decision?path=/livetv/sessions/a%2F..%2F..%2Flibrary&\(tok)", .none),
    Case(
        "GET",
        "/video/:/transcode/universal/decision?path=http%3A%2F%2F127.0.0.1%3A32400%2Flivetv%2Fsessions%2Fabc&\(tok)",
        .transcode),
    Case(
        "GET", "/video/:/transcode/universal/decision?path=http%3A%2F%2Fevil.example%2Flivetv%2Fsessions%2Fabc&\(tok)",
        .none),
    Case("GET", "/video/:/transcode/universal/decision?path=\(serverLive)&\(tok)", .transcode),
    Case(
        "GET", "/video/:/transcode/universal/decision?path=server%3A%2F%2Fotherid%2Flivetv%2Fsessions%2Fc1&\(tok)",
        .none),
    Case("POST", "/video/:/transcode/universal/decision?path=\(liveSession)&\(tok)", .none),
    Case("GET", "/video/:/transcodeX/universal/decision?path=\(liveSession)&\(tok)", .none),
    Case("GET", "/video/:/transcode/universal/session/wtc6/0/1.m4s?\(tok)", .none),
    Case("GET", "/video/:/transcode/universal/decision?path=\(liveSession)&\(tok)", .none, mode: .discoveryOnly),
    // play-queue
    Case("POST", "/playQueues?type=video&uri=\(serverLive)&own=1&\(tok)", .playQueue),
    Case("POST", "/playQueues?type=video&uri=\(serverLibrary)&own=1&\(tok)", .none),
    Case("GET", "/playQueues/123?uri=\(serverLive)&\(tok)", .playQueue),
    Case("POST", "/playQueuesX?uri=\(serverLive)&\(tok)", .none),
    Case("POST", "/playQueues?uri=\(serverLive)&path=\(libraryItem)&\(tok)", .none),
    Case("POST", "/playQueues?uri=\(serverLive)&\(tok)", .none, body: form("uri=\(serverLibrary)")),
    Case("POST", "/playQueues?type=video&\(tok)", .playQueue, body: form("uri=\(serverLive)")),
    Case("POST", "/playQueues?type=video&\(tok)", .playQueue, body: json(#"{"uri":"/livetv/sessions/x"}"#)),
    Case("POST", "/playQueues?type=video&\(tok)", .none, body: json(#"{"uri":"/library/metadata/1"}"#)),
    Case("POST", "/playQueues?uri=\(serverLive)&\(tok)", .bodyUnseen, body: .unseen),
    Case("PUT", "/playQueues/1?uri=\(serverLive)&\(tok)", .none),
    Case("DELETE", "/playQueues/1?uri=\(serverLive)&\(tok)", .none),
    Case("POST", "/playQueues?uri=tv.plex.providers.epg.xmltv%3A135%2Fmetadata%2Fx&\(tok)", .playQueue),
    Case("POST", "/playQueues?uri=tv.plex.providers.epg.xmltv%3A135%2F..%2F..%2Flibrary&\(tok)", .none),
    Case("POST", "/playQueues?uri=%252Flivetv%252Fsessions%252Fabc&\(tok)", .playQueue),
    Case("POST", "/playQueues?uri=\(serverLive)&\(tok)", .none, mode: .discoveryOnly),
    Case("GET", "/playQueues?\(tok)", .none, body: form("uri=\(serverLive)")),
    // timeline
    Case("GET", "/:/timeline?ratingKey=\(liveGuid)&key=\(liveSession)&state=playing&\(tok)", .timeline),
    Case("GET", "/:/timeline?ratingKey=5123&key=\(libraryItem)&state=playing&\(tok)", .none),
    Case("GET", "/:/timeline?ratingKey=\(liveGuid)&state=playing&\(tok)", .none),
    Case("POST", "/:/timeline?key=\(liveSession)&\(tok)", .none),
    Case("GET", "/:/timeline/?key=\(liveSession)&\(tok)", .none),
    Case("GET", "/:/timeline?key=\(liveSession)&KEY=\(libraryItem)&\(tok)", .none),
    Case("GET", "/:/timeline?key=\(liveSession)&\(tok)", .none, mode: .discoveryOnly),
    // root-referer
    Case("GET", "/identity?\(tok)", .rootReferer, headers: [("Referer", livePage)]),
    Case("GET", "/identity?\(tok)", .none, headers: [("Referer", "https://app.plex.tv/")]),
    Case("GET", "/?\(tok)", .rootReferer, headers: [("referer", "https://app.plex.tv/desktop/#!/LIVETV/guide")]),
    Case("GET", "/?\(tok)", .none),
    Case("GET", "/?\(tok)", .rootReferer, headers: [("Referer", "https://app.plex.tv/x?r=%2Flivetv%2Fguide")]),
    Case("GET", "/?\(tok)", .rootReferer, headers: [("Referer", "https://x/?r=%25252Flivetv%25252F")]),
    Case("GET", "/?\(tok)", .rootReferer, headers: [("Referer", "https://x/?r=%2525252Flivetv%2525252F")]),
    Case("GET", "/?\(tok)", .none, headers: [("Referer", "https://x/?r=%252525252Flivetv%252525252F")]),
    Case("GET", "/identity/x?\(tok)", .none, headers: [("Referer", livePage)]),
    Case("POST", "/?\(tok)", .none, headers: [("Referer", livePage)]),
    Case("GET", "/?\(tok)", .none, headers: [("Referer", "https://app.plex.tv/"), ("Referer", livePage)]),
    Case("GET", "/identity?\(tok)", .rootReferer, headers: [("Referer", livePage)], mode: .discoveryOnly),
    Case("GET", "/library/sections?\(tok)", .none, headers: [("Referer", livePage)]),
    // all mode
    Case("GET", "/library/sections?\(tok)", .all, mode: .all),
    Case("OPTIONS", "/library/sections?\(tok)", .none, mode: .all),
    Case("POST", "/:/prefsx?\(tok)", .all, mode: .all),
    Case("POST", "/:/prefs?\(tok)", .none, mode: .all),
    Case("POST", "/:/prefs?\(tok)", .none),
    Case("POST", "/playQueues?\(tok)", .all, body: .unseen, mode: .all),
    Case("GET", "/library/../livetv/dvrs?\(tok)", .unsafePath, mode: .all),
    Case("GET", "/library/sections?x-plex-token=abc&\(tok)", .tokenSmuggling, mode: .all),
    Case("GET", "/library/sections", .noToken, mode: .all),
    Case("", "/library/sections?\(tok)", .none, mode: .all),
    Case("get", "/library/sections?\(tok)", .all, mode: .all),
]

/// Fine print 12: credential and configuration surfaces are never candidates, in any mode; their
/// look-alike neighbours still are in `all` mode (segment boundaries).
let credentialCases: [Case] =
    ElevationMode.allCases.flatMap { mode in
        [
            ("GET", "/security/token?type=delegation&scope=all&\(tok)"),
            ("GET", "/security/resources?\(tok)"),
            ("GET", "/security"),
            ("GET", "/myplex/account?\(tok)"),
            ("POST", "/myplex/claim?\(tok)"),
            ("GET", "/:/prefs?\(tok)"),
            ("PUT", "/:/prefs?RelayEnabled=1&\(tok)"),
            ("PUT", "/:/prefs/x?\(tok)"),
            ("GET", "/accounts?\(tok)"),
            ("GET", "/accounts/1?\(tok)"),
            ("GET", "/system/agents?\(tok)"),
            ("GET", "/api/v2/user?\(tok)"),
            ("GET", "/SECURITY/token?\(tok)"),
            ("GET", "/Accounts?\(tok)"),
        ].map { Case($0.0, $0.1, .none, mode: mode) }
    } + [
        Case("GET", "/securityx/token?\(tok)", .all, mode: .all),
        Case("GET", "/accountsx?\(tok)", .all, mode: .all),
        Case("GET", "/system?\(tok)", .none, mode: .all),
        Case("GET", "/apis/x?\(tok)", .all, mode: .all),
    ]

/// Elevation-rules §2 through the classifier: unsafe always wins, candidate or not, token or not.
let unsafeCases: [Case] = [
    Case("GET", "/livetv/../library/sections?\(tok)", .unsafePath),
    Case("GET", "/livetv/%2e%2e/library?\(tok)", .unsafePath),
    Case("GET", "/livetv/%2E%2E/library?\(tok)", .unsafePath),
    Case("GET", "/livetv/%252e%252e/library?\(tok)", .unsafePath),
    Case("GET", "/livetv/%25252e%25252e/library?\(tok)", .unsafePath),
    Case("GET", "/livetv/./dvrs?\(tok)", .unsafePath),
    Case("GET", "/livetv/%2e/dvrs?\(tok)", .unsafePath),
    Case("GET", "/livetv/..;/library?\(tok)", .unsafePath),
    Case("GET", "/livetv/dvrs/..?\(tok)", .unsafePath),
    Case("GET", "/livetv//dvrs?\(tok)", .unsafePath),
    Case("GET", "//livetv/dvrs?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%2fb?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%2Fb?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%252fb?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%5cb?\(tok)", .unsafePath),
    Case("GET", "/livetv/a\\b?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%00?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%2500?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%0a?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%20b?\(tok)", .unsafePath),
    Case("GET", "/livetv/a b?\(tok)", .unsafePath),
    Case("GET", "/livetv/a\tb?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%zz?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%25zz?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%2?\(tok)", .unsafePath),
    Case("GET", "/livetv/caf%C3%A9?\(tok)", .unsafePath),
    Case("GET", "/livetv/café?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%7f?\(tok)", .unsafePath),
    Case("GET", "*", .unsafePath),
    Case("GET", "http://127.0.0.1:32400/livetv/dvrs?\(tok)", .unsafePath),
    Case("GET", "127.0.0.1:32400", .unsafePath),
    Case("GET", "", .unsafePath),
    Case("GET", "?\(tok)", .unsafePath),
    Case("GET", "/library/../x?\(tok)", .unsafePath),
    Case("GET", "/livetv/a%2Fb", .unsafePath),
    Case("GET", "/livetv/a%2Fb?x-plex-token=abc", .unsafePath),
    Case("OPTIONS", "/livetv/../x", .unsafePath),
]

/// Elevation-rules §6 through the classifier: carriers, smuggling, hop-by-hop.
let tokenCases: [Case] = [
    Case("GET", "/livetv/dvrs?x-plex-token=\(userToken)", .tokenSmuggling),
    Case("GET", "/livetv/dvrs?X-Plex-Token=\(userToken)", .livetv),
    Case("GET", "/livetv/dvrs?X%2DPlex%2DToken=abc&\(tok)", .tokenSmuggling),
    Case("GET", "/livetv/dvrs?X%252DPlex%252DToken=abc&\(tok)", .tokenSmuggling),
    Case("GET", "/livetv/dvrs?X%25252DPlex%25252DToken=abc&\(tok)", .tokenSmuggling),
    Case("GET", "/livetv/dvrs?%58-Plex-Token=abc&\(tok)", .tokenSmuggling),
    Case("GET", "/library/sections?X-PLEX-TOKEN=abc", .tokenSmuggling),
    Case("GET", "/livetv/dvrs?X-Plex-Tokens=abc&\(tok)", .livetv),
    Case("GET", "/livetv/dvrs?My-X-Plex-Token=abc&\(tok)", .livetv),
    Case("GET", "/livetv/dvrs?X-Plex-Token=", .noToken),
    Case("GET", "/livetv/dvrs?X-Plex-Token", .noToken),
    Case("GET", "/livetv/dvrs?X-Plex-Token=%20%20", .noToken),
    Case("GET", "/livetv/dvrs?X-Plex-Token=++", .noToken),
    Case("GET", "/livetv/dvrs?X-Plex-Token=%20", .livetv, headers: [("X-Plex-Token", userToken)]),
    Case("GET", "/livetv/dvrs?X-Plex-Token=a%0d%0ab", .noToken),
    Case("GET", "/livetv/dvrs?X-Plex-Token=a%0d%0ab", .noToken, headers: [("X-Plex-Token", userToken)]),
    Case("GET", "/livetv/dvrs?X-Plex-Token=a%20b", .noToken),
    Case("GET", "/livetv/dvrs", .livetv, headers: [("X-PLEX-TOKEN", userToken)]),
    Case("GET", "/livetv/dvrs", .livetv, headers: [("x-plex-token", "  \(userToken)  ")]),
    Case("GET", "/livetv/dvrs", .noToken, headers: [("X-Plex-Token", "   ")]),
    Case("GET", "/livetv/dvrs", .noToken, headers: [("X-Plex-Token", userToken), ("Connection", "X-Plex-Token")]),
    Case(
        "GET", "/livetv/dvrs", .noToken,
        headers: [("Connection", "keep-alive, x-plex-token"), ("X-Plex-Token", userToken)]),
    Case("GET", "/livetv/dvrs", .livetv, headers: [("Connection", "Upgrade"), ("X-Plex-Token", userToken)]),
    Case("GET", "/livetv/dvrs?\(tok)", .livetv, headers: [("Connection", "X-Plex-Token"), ("X-Plex-Token", "other")]),
    Case("GET", "/livetv/dvrs?X-Plex-Token=\(String(repeating: "a", count: 4096))", .livetv),
    Case("GET", "/livetv/dvrs?X-Plex-Token=\(String(repeating: "a", count: 4097))", .noToken),
]

/// A frontend that cannot remove query parameters (Traefik): a candidate's query token is never sent on
/// beside the owner's; header tokens and non-candidates are unaffected; earlier refusals keep their order.
let keptQueryCases: [Case] = [
    Case("GET", "/livetv/dvrs?\(tok)", .queryTokenKept, frontendRemovesQueryTokens: false),
    Case("GET", "/livetv/dvrs?\(tok)", .livetv),
    Case(
        "GET", "/livetv/dvrs", .livetv, headers: [("X-Plex-Token", userToken)], frontendRemovesQueryTokens: false),
    Case(
        "GET", "/livetv/dvrs?X-Plex-Token=", .queryTokenKept, headers: [("X-Plex-Token", userToken)],
        frontendRemovesQueryTokens: false),
    Case("GET", "/livetv/dvrs?X-Plex-Token=&X-Plex-Token=", .noToken, frontendRemovesQueryTokens: false),
    Case("GET", "/library/sections?\(tok)", .none, frontendRemovesQueryTokens: false),
    Case("GET", "/livetv/dvrs?x-plex-token=abc", .tokenSmuggling, frontendRemovesQueryTokens: false),
    Case("GET", "/livetv/../x?\(tok)", .unsafePath, frontendRemovesQueryTokens: false),
    Case(
        "POST", "/livetv/dvrs/135/channels/c7pt/tune?\(tok)", .bodyUnseen, body: .unseen,
        frontendRemovesQueryTokens: false),
    Case(
        "POST", "/livetv/dvrs/135/channels/c7pt/tune", .livetvTune, headers: [("X-Plex-Token", userToken)],
        frontendRemovesQueryTokens: false),
    Case("GET", "/livetv/dvrs", .noToken, frontendRemovesQueryTokens: false),
    Case("GET", "/livetv/dvrs?\(tok)", .queryTokenKept, mode: .all, frontendRemovesQueryTokens: false),
]

@Suite("Classifier decision table")
struct ClassifierTableTests {
    @Test("surfaces and their twins", arguments: surfaceCases)
    func surfaces(_ row: Case) { check(row) }

    @Test("unsafe paths", arguments: unsafeCases)
    func unsafePaths(_ row: Case) { check(row) }

    @Test("token carriers", arguments: tokenCases)
    func tokens(_ row: Case) { check(row) }

    @Test("query tokens a frontend cannot remove", arguments: keptQueryCases)
    func keptQuery(_ row: Case) { check(row) }

    @Test("credential surfaces, every mode", arguments: credentialCases)
    func credentials(_ row: Case) {
        check(row)
        if row.expected == .none {
            #expect(classifier(row.mode).classify(row.request).reason == .notCandidate(.credentialSurface))
        }
    }

    @Test func tableIsLargeAndCoversEveryRule() {
        let all = surfaceCases + unsafeCases + tokenCases + credentialCases + keptQueryCases
        #expect(all.count >= 150)
        let covered = Set(all.map(\.expected))
        #expect(
            covered == Set(ElevationRule.allCases).subtracting(ElevationRule.guardOnly),
            "rules without a case: \(Set(ElevationRule.allCases).subtracting(covered))")
        // Every surface has a positive and at least one negative case on the same path.
        for surface in ElevationRule.surfaces {
            let positives = all.filter { $0.expected == surface }.map { RequestTarget($0.target).path }
            let twins = all.filter { $0.expected != surface && positives.contains(RequestTarget($0.target).path) }
            #expect(!twins.isEmpty, "no negative twin for \(surface.rawValue)")
        }
    }

    private func check(_ row: Case) {
        let decision = decide(row.request, mode: row.mode)
        #expect(
            decision.rule == row.expected, "\(row.testDescription): got \(decision.rule.rawValue) (\(decision.reason))")
        #expect(decision.elevate == row.expectElevate)
        if decision.elevate {
            #expect(decision.upstreamToken == ownerToken)
        } else {
            #expect(!decision.upstreamTarget.contains(ownerValue))
            // Preserved: the target unchanged, a byte that cannot travel in a header percent-escaped (§6).
            #expect(decision.upstreamTarget == PercentEscaping.headerSafe(Array(row.target.utf8)))
            #expect(decision.upstreamToken != ownerToken)
        }
    }
}
