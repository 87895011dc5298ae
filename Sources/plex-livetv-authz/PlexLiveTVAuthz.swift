import ArgumentParser

@main
struct PlexLiveTVAuthz: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plex-livetv-authz",
        abstract: "Decides, for a web frontend in front of Plex, which Plex token each request may carry upstream.",
        discussion: """
            A shared Plex user keeps their own token on every request, except classified Live TV requests \
            whose token is proven valid for this server: those borrow the owner's token. The frontend \
            (nginx auth_request, Envoy ext_authz, Traefik/Caddy forward auth) asks this service and \
            forwards what it answers.
            """,
        subcommands: [
            ServeCommand.self, ExplainCommand.self, EnforcePrefsCommand.self, ValidateCommand.self,
            BlocksCommand.self, FingerprintCommand.self, SettingsCommand.self,
        ]
    )
}
