import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Every file in `frontends/` is checked by the tool that will read it (the frontend's own validator, or a
/// parser plus the facts the service depends on); the running frontends also carry the case table.
@Suite("Shipped frontend files", .serialized)
struct FrontendFilesTests {
    /// Each shipped file and what checks it; a new file without a check fails here.
    static let checked: [String: String] = [
        "nginx/plex-livetv.conf": "started by the case table",
        "nginx/plexauthz-proxy.conf": "started by the case table",
        "nginx/README.md": "documentation",
        "caddy/Caddyfile": "caddy validate; started by the case table",
        "caddy/README.md": "documentation",
        "envoy/envoy-grpc.yaml": "envoy --mode validate; started by the case table",
        "envoy/envoy-http.yaml": "envoy --mode validate; started by the case table",
        "envoy/README.md": "documentation",
        "haproxy/haproxy.cfg": "haproxy -c; started by the case table",
        "haproxy/plexauthz.lua": "loaded by haproxy -c and the case table",
        "haproxy/README.md": "documentation",
        "traefik/traefik.yml": "parsed here",
        "traefik/plex-livetv.yml": "parsed here",
        "traefik/README.md": "documentation",
        "cloudflared/config.yml": "parsed here",
        "cloudflared/README.md": "documentation",
        "vpn/nftables.conf": "nft -c",
        "vpn/README.md": "documentation",
    ]

    @Test func everyFileHasACheck() throws {
        let root = repositoryRoot.appendingPathComponent("frontends")
        let files = try FileManager.default.subpathsOfDirectory(atPath: root.path).filter {
            var directory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root.appendingPathComponent($0).path, isDirectory: &directory)
                && !directory.boolValue
        }
        #expect(Set(files) == Set(Self.checked.keys), "unchecked: \(Set(files).subtracting(Self.checked.keys))")
    }

    @Test func envoyValidatesBothFilesAsShipped() async throws {
        for file in ["envoy-grpc.yaml", "envoy-http.yaml"] {
            let path = repositoryRoot.appendingPathComponent("frontends/envoy/\(file)").path
            let output = try await run(
                Frontend.envoyBinary, ["--mode", "validate", "-c", path, "--log-level", "error"])
            #expect(output.contains("configuration '\(path)' OK"), "\(output)")
        }
    }

    @Test func caddyValidatesTheCaddyfileAsShipped() async throws {
        let path = repositoryRoot.appendingPathComponent("frontends/caddy/Caddyfile").path
        let output = try await run("/usr/bin/caddy", ["validate", "--adapter", "caddyfile", "--config", path])
        #expect(output.contains("Valid configuration"), "\(output)")
    }

    @Test func haproxyChecksItsConfigWithTheLuaAction() async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "plexauthz-haproxy-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let lua = repositoryRoot.appendingPathComponent("frontends/haproxy/plexauthz.lua").path
        let config = try Frontend.substitute(
            "frontends/haproxy/haproxy.cfg", [("lua-load /etc/haproxy/plexauthz.lua", "lua-load \(lua)")],
            into: directory.appendingPathComponent("haproxy.cfg"))
        let output = try await run("/usr/sbin/haproxy", ["-c", "-f", config.path])
        #expect(output.contains("Configuration file is valid"), "\(output)")
    }

    @Test(.enabled(if: getuid() == 0, "nft -c needs CAP_NET_ADMIN"))
    func nftablesAcceptsTheVPNRules() async throws {
        let path = repositoryRoot.appendingPathComponent("frontends/vpn/nftables.conf").path
        let output = try await run("/usr/sbin/nft", ["-c", "-f", path])
        #expect(output.isEmpty, "\(output)")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("tcp dport { 32400, 33241, 33242 }") && text.contains("iif \"lo\" accept"))
    }

    /// Traefik is not packaged here: the YAML is parsed and every fact the service depends on is checked.
    @Test func traefikRoutesEveryRequestThroughTheServiceWithTheKey() async throws {
        let staticConfig = try await yaml("frontends/traefik/traefik.yml")
        let entry = try #require((staticConfig["entryPoints"] as? [String: Any])?["plex"] as? [String: Any])
        #expect(entry["address"] as? String == ":32401")
        let dynamic = try #require(try await yaml("frontends/traefik/plex-livetv.yml")["http"] as? [String: Any])
        let routers = try #require(dynamic["routers"] as? [String: [String: Any]])
        let middlewares = try #require(dynamic["middlewares"] as? [String: [String: Any]])
        #expect(Set(routers.keys) == ["plex", "plex-livetv-writes"])
        func headers(_ name: String) -> [String: String] {
            ((middlewares[name]?["headers"] as? [String: Any])?["customRequestHeaders"] as? [String: String]) ?? [:]
        }
        var keys: Set<String> = []
        for (name, router) in routers {
            #expect(router["service"] as? String == "pms" && router["entryPoints"] as? [String] == ["plex"], "\(name)")
            let chain = try #require(router["middlewares"] as? [String], "\(name)")
            #expect(chain.count == 3, "\(name): \(chain)")
            // First the key (and the body marker, never the client's), then the decision, then both removed.
            let first = headers(chain[0])
            keys.insert(try #require(first["X-Plexauthz-Key"], "\(name)"))
            let forwardAuth = try #require(middlewares[chain[1]]?["forwardAuth"] as? [String: Any], "\(name)")
            #expect(forwardAuth["address"] as? String == "http://127.0.0.1:33241/v1/traefik")
            #expect(forwardAuth["trustForwardHeader"] as? Bool == false)
            #expect(forwardAuth["authResponseHeaders"] as? [String] == ["X-Plex-Token"])
            // No allow-list: every client header reaches the service (tokens, Connection, Referer, X-Plex-*).
            #expect(forwardAuth["authRequestHeaders"] == nil && forwardAuth["authResponseHeadersRegex"] == nil)
            #expect(headers(chain[2]) == ["X-Plexauthz-Key": "", "X-Plexauthz-Body": ""], "\(name)")
            if name == "plex" {
                #expect(router["rule"] as? String == "PathPrefix(`/`)")
                #expect(first["X-Plexauthz-Body"] == "" && forwardAuth["forwardBody"] == nil)
            } else {
                // Every mutating Live TV surface (tune, play queues, subscriptions) has its body forwarded.
                let rule = try #require(router["rule"] as? String)
                for fragment in [
                    "Method(`POST`)", "Method(`PUT`)", "Method(`PATCH`)", "Method(`DELETE`)", "PathPrefix(`/livetv/`)",
                    "PathPrefix(`/media/subscriptions`)", "PathPrefix(`/playQueues`)",
                ] {
                    #expect(rule.contains(fragment), "\(fragment)")
                }
                #expect((router["priority"] as? Int ?? 0) > (routers["plex"]?["priority"] as? Int ?? 0))
                #expect(first["X-Plexauthz-Body"] == "forwarded" && forwardAuth["forwardBody"] as? Bool == true)
                #expect((forwardAuth["maxBodySize"] as? Int).map { $0 > 0 && $0 <= 65536 } == true)
            }
        }
        #expect(keys == ["<the frontend key>"])
        let pms = (dynamic["services"] as? [String: Any])?["pms"] as? [String: Any]
        let servers = (pms?["loadBalancer"] as? [String: Any])?["servers"] as? [[String: String]]
        #expect(servers == [["url": "http://127.0.0.1:32400"]])
    }

    @Test func cloudflaredEndsAtTheFrontendOnly() async throws {
        let config = try await yaml("frontends/cloudflared/config.yml")
        let ingress = try #require(config["ingress"] as? [[String: Any]])
        #expect(ingress.first?["service"] as? String == "http://127.0.0.1:32401")
        #expect(ingress.last?["service"] as? String == "http_status:404" && ingress.last?["hostname"] == nil)
        #expect(ingress.compactMap { $0["service"] as? String }.allSatisfy { !$0.contains(":32400") })
    }

    /// Every relative link in the docs and READMEs resolves; a link to a line (`#L42`) still points at what
    /// its text names: a `code` text must be on that line (or the next), a row at a `FrontendCase(`, a test
    /// at a `func`. Catches a table cell left behind when the file it cites moves.
    @Test func documentationLinksPointAtWhatTheySay() throws {
        let fileManager = FileManager.default
        let frontends = try fileManager.contentsOfDirectory(
            atPath: repositoryRoot.appendingPathComponent("frontends").path)
        let docs = try fileManager.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("docs").path)
        let pages =
            ["README.md"] + docs.filter { $0.hasSuffix(".md") }.map { "docs/" + $0 }
            + frontends.map { "frontends/\($0)/README.md" }.filter {
                fileManager.fileExists(atPath: repositoryRoot.appendingPathComponent($0).path)
            }
        let link = #/\[([^\]]+)\]\(([^)\s]+)\)/#
        var checked = 0
        for page in pages {
            let pageURL = repositoryRoot.appendingPathComponent(page)
            let text = try String(contentsOf: pageURL, encoding: .utf8)
            for match in text.matches(of: link) {
                let (label, target) = (String(match.1), String(match.2))
                guard !target.contains("://"), !target.hasPrefix("#"), !target.hasPrefix("mailto:") else { continue }
                let parts = target.split(separator: "#", maxSplits: 1).map(String.init)
                let file = pageURL.deletingLastPathComponent().appendingPathComponent(parts[0]).standardizedFileURL
                guard fileManager.fileExists(atPath: file.path) else {
                    Issue.record("\(page): [\(label)](\(target)) points at a missing file")
                    continue
                }
                checked += 1
                guard parts.count == 2, parts[1].hasPrefix("L"), let number = Int(parts[1].dropFirst()) else {
                    continue
                }
                let lines = try String(contentsOf: file, encoding: .utf8).split(
                    separator: "\n", omittingEmptySubsequences: false)
                guard number >= 1, number <= lines.count else {
                    Issue.record("\(page): [\(label)](\(target)) points past the end of the file")
                    continue
                }
                var near = lines[(number - 1)..<min(number + 1, lines.count)].joined(separator: "\n")
                let expected: String
                if label.hasPrefix("`") && label.hasSuffix("`") {
                    // `Type.member` names the member.
                    expected = String(label.dropFirst().dropLast().split(separator: ".").last ?? "")
                } else if ["row", "declared"].contains(label) {
                    // Exactly the row's first line.
                    expected = "FrontendCase("
                    near = String(lines[number - 1])
                } else if ["test", "walk", "measured"].contains(label) {
                    expected = "func "
                } else {
                    expected = ""
                }
                #expect(
                    (expected.isEmpty || near.contains(expected)) && !near.allSatisfy(\.isWhitespace),
                    "\(page): [\(label)](\(target)) no longer points at \(expected.isEmpty ? "a line" : expected): \(near)"
                )
            }
        }
        #expect(checked > 80, "only \(checked) links found")
    }

    /// A YAML file as JSON objects, through Python's yaml module (Debian's python3-yaml).
    func yaml(_ path: String) async throws -> [String: Any] {
        let output = try await run(
            "/usr/bin/python3",
            [
                "-c", "import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
                repositoryRoot.appendingPathComponent(path).path,
            ])
        let object = try JSONSerialization.jsonObject(with: Data(output.utf8))
        return try #require(object as? [String: Any], "\(path): \(output.prefix(300))")
    }
}
