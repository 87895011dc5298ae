import Foundation
import Testing

/// `docs/grafana` and `docs/prometheus` use only metrics the service exports, and the rules pass promtool.
@Suite("Dashboard and alert rules")
struct DashboardTests {
    /// Every `plexauthz_` name in the dashboard and the rules appears in a real scrape of `/metrics` after one
    /// decision (counters labelled by rule and outcome exist once something was decided; every other series,
    /// errors and drops included, exists at zero from the start).
    @Test func everyMetricTheFilesUseIsExported() async throws {
        try await InProcessService.with { s in
            _ = try await s.nginx("/library/sections")
            let scrape = try await s.send("/metrics", headers: []).body
            let exported = Set(
                scrape.split(separator: "\n").filter { !$0.hasPrefix("#") }.map {
                    String($0.prefix { $0 != "{" && $0 != " " })
                })
            var used = Set<String>()
            for file in ["docs/grafana/plex-livetv-authz.json", "docs/prometheus/alerts.yml"] {
                let text = try String(contentsOf: repositoryRoot.appendingPathComponent(file), encoding: .utf8)
                used.formUnion(text.matches(of: #/plexauthz_[a-z_]+/#).map { String($0.output) })
            }
            #expect(used.count >= 10, "\(used)")
            #expect(
                used.subtracting(exported).isEmpty, "not exported: \(used.subtracting(exported)); exported: \(exported)"
            )
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool"), "Debian prometheus"))
    func alertRulesPassPromtoolCheckAndTheirUnitTests() async throws {
        let directory = repositoryRoot.appendingPathComponent("docs/prometheus").path
        let check = try await run("/usr/bin/promtool", ["check", "rules", directory + "/alerts.yml"])
        #expect(check.contains("SUCCESS: 7 rules found"), "\(check)")
        let unit = try await run("/usr/bin/promtool", ["test", "rules", directory + "/alerts-test.yml"])
        #expect(unit.contains("SUCCESS") && !unit.contains("FAILED"), "\(unit)")
    }

    @Test func theDashboardIsGrafanaJSONOverItsOwnVariables() throws {
        let data = try Data(contentsOf: repositoryRoot.appendingPathComponent("docs/grafana/plex-livetv-authz.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(panels.count >= 10)
        for panel in panels {
            let targets = panel["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty, "\(panel["title"] ?? "?") has no query")
            for target in targets {
                let expr = target["expr"] as? String ?? ""
                #expect(expr.contains("job=\"$job\""), "\(expr): not scoped to the job variable")
            }
        }
    }
}
