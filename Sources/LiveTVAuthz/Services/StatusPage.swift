import LiveTVAuthzCore

/// `/status`: one server-rendered HTML page, no script, no external asset (the SVG chart is inline).
/// Every number has an `id` so a test can read it back from a real browser and compare it with `/metrics`.
public enum StatusPage {
    /// What the page needs beyond the board.
    public struct Facts: Sendable {
        public var board: StatusBoard.Snapshot
        public var pmsReachable: Bool
        public var pmsURL: String
        public var mode: String
        public var shadow: Bool
        public var activeBlocks: Int
        public var trackedSessions: Int
        /// Where blocks and playbacks are kept, and whether it is reachable.
        public var stateStore: String
        public var stateStoreHealthy: Bool

        public init(
            board: StatusBoard.Snapshot, pmsReachable: Bool, pmsURL: String, mode: String, shadow: Bool,
            activeBlocks: Int, trackedSessions: Int, stateStore: String = "this process's memory",
            stateStoreHealthy: Bool = true
        ) {
            self.stateStore = stateStore
            self.stateStoreHealthy = stateStoreHealthy
            self.board = board
            self.pmsReachable = pmsReachable
            self.pmsURL = pmsURL
            self.mode = mode
            self.shadow = shadow
            self.activeBlocks = activeBlocks
            self.trackedSessions = trackedSessions
        }
    }

    /// Outcome labels (as in `plexauthz_decisions_total`) and their colour in the chart.
    static let colours: [(String, String)] = [
        ("elevated_live_tv", "#2e7d32"), ("elevated", "#66bb6a"), ("deny_missing_token", "#c62828"),
        ("deny_unauthorized_token", "#e53935"), ("deny_auth_cooldown", "#ef9a9a"),
        ("deny_validation_unavailable", "#f9a825"), ("deny_session_mismatch", "#8e24aa"),
        ("bad_actor_blocked", "#4a148c"), ("blocked_bad_actor", "#6a1b9a"), ("preserved", "#b0bec5"),
    ]

    public static func render(_ facts: Facts) -> String {
        let board = facts.board
        let uptime = Duration.seconds((board.now - board.startedAt).components.seconds)
        let lookups = board.cacheHits + board.cacheMisses
        let ratio = lookups == 0 ? "–" : "\(board.cacheHits * 100 / lookups)%"
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>plex-livetv-authz status</title>
            <meta http-equiv="refresh" content="30">
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:70em}
            h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.5em}
            table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}
            td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#c62828}.ok{color:#2e7d32}
            code{font-size:.95em}
            </style></head><body>
            <h1>plex-livetv-authz</h1>

            """
        html += "<table>"
        html += row("uptime", GoDuration.format(uptime), id: "uptime")
        html += row(
            "Plex (\(escape(facts.pmsURL)))", facts.pmsReachable ? "reachable" : "NOT reachable", id: "pms",
            cls: facts.pmsReachable ? "ok" : "bad")
        html += row("mode", facts.mode + (facts.shadow ? " (shadow: nothing is elevated or blocked)" : ""), id: "mode")
        html += row(
            "validation latency p50 / p95 (last \(board.validations))",
            board.latencyP50.map { "\(milliseconds($0)) / \(milliseconds(board.latencyP95!))" } ?? "–",
            id: "latency")
        html += row("validation cache hits", String(board.cacheHits), id: "cache-hits")
        html += row("validation cache misses", String(board.cacheMisses), id: "cache-misses")
        html += row("cache hit ratio", ratio, id: "cache-ratio")
        html += row(
            "state store (\(escape(facts.stateStore)))", facts.stateStoreHealthy ? "reachable" : "NOT reachable",
            id: "state-store", cls: facts.stateStoreHealthy ? "ok" : "bad")
        html += row("blocked sources", String(facts.activeBlocks), id: "blocked-sources")
        html += row("tracked playback sessions", String(facts.trackedSessions), id: "tracked-sessions")
        html += "</table>\n"

        html += "<h2>Decisions since start, by outcome</h2>\n<table>"
        for (outcome, count) in board.totals.sorted(by: { $0.key < $1.key }) {
            html += row(outcome, String(count), id: "outcome-\(outcome)")
        }
        if board.totals.isEmpty { html += "<tr><td>none yet</td></tr>" }
        html += "</table>\n"

        html += "<h2>Decisions per minute, last hour</h2>\n" + chart(board.perMinute)

        html += "<h2>Last \(board.recent.count) Live TV decisions</h2>\n<table id=\"recent\">"
        html += "<tr><th>time (UTC)</th><th>path</th><th>rule</th><th>outcome</th><th>token</th></tr>"
        for entry in board.recent {
            html +=
                "<tr><td>\(escape(entry.time.rfc3339))</td><td><code>\(escape(entry.path))</code></td>"
                + "<td>\(escape(entry.rule))</td><td>\(escape(entry.outcome))</td><td><code>\(escape(entry.token))</code></td></tr>"
        }
        html +=
            "</table>\n<p>Tokens and sources appear only as <code>sha256:</code> fingerprints.</p>\n</body></html>\n"
        return html
    }

    /// Stacked bars, one per minute, coloured by outcome, with a legend.
    static func chart(_ perMinute: [[String: Int]]) -> String {
        let width = 720
        let height = 160
        let barWidth = width / max(perMinute.count, 1)
        let peak = max(1, perMinute.map { $0.values.reduce(0, +) }.max() ?? 1)
        var svg =
            "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height + 20)\" role=\"img\" aria-label=\"decisions per minute\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
        for (index, counts) in perMinute.enumerated() {
            var y = height
            for (outcome, colour) in colours {
                guard let count = counts[outcome], count > 0 else { continue }
                let bar = max(1, count * (height - 10) / peak)
                y -= bar
                svg +=
                    "<rect x=\"\(index * barWidth + 1)\" y=\"\(y)\" width=\"\(barWidth - 2)\" height=\"\(bar)\" fill=\"\(colour)\"><title>\(count) \(outcome)</title></rect>"
            }
        }
        svg +=
            "<text x=\"2\" y=\"\(height + 15)\" font-size=\"11\">60 min ago</text><text x=\"\(width - 30)\" y=\"\(height + 15)\" font-size=\"11\">now</text>"
        svg += "<text x=\"\(width - 4)\" y=\"12\" font-size=\"11\" text-anchor=\"end\">peak \(peak)/min</text></svg>"
        let legend = colours.map {
            "<span style=\"color:\($0.1)\">■</span> \($0.0)"
        }.joined(separator: " &nbsp;")
        return svg + "\n<p>\(legend)</p>\n"
    }

    static func row(_ label: String, _ value: String, id: String, cls: String? = nil) -> String {
        "<tr><th>\(label)</th><td class=\"n\(cls.map { " " + $0 } ?? "")\" id=\"\(id)\">\(escape(value))</td></tr>"
    }

    static func milliseconds(_ duration: Duration) -> String {
        let micros = duration.nanoseconds / 1000
        return "\(micros / 1000).\(String(micros % 1000 / 100)) ms"
    }

    /// HTML text and attribute escaping.
    public static func escape(_ text: String) -> String {
        var output = ""
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&#39;"
            default: output.append(character)
            }
        }
        return output
    }
}
