import Foundation

/// A fuzz target's entry point: `(bytes, count) -> 0`, as libFuzzer calls it.
public typealias FuzzTarget = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

#if FUZZING
    @_silgen_name("LLVMFuzzerRunDriver")
    private func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: FuzzTarget
    ) -> CInt
#endif

/// Runs a fuzz target. Built for fuzzing (`make fuzz`: coverage instrumentation, `-D FUZZING`, libFuzzer
/// linked without its `main`) it hands the target to libFuzzer's driver with the command line; otherwise
/// it replays the corpus files or directories given, so the committed corpora are regression tests in
/// every `make test` and a crash found by fuzzing, once saved to the corpus, stays one.
public enum FuzzMain {
    public static func run(_ target: FuzzTarget) -> Never {
        #if FUZZING
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv, target))
        #else
            do {
                try replay(CommandLine.arguments.dropFirst(), target)
                exit(0)
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                exit(2)
            }
        #endif
    }

    static func replay(_ paths: some Sequence<String>, _ target: FuzzTarget) throws {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ReplayError(description: "\(path) does not exist")
            }
            if isDirectory.boolValue {
                files += try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" }
            } else {
                files.append(path)
            }
        }
        for file in files {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
            _ = bytes.withUnsafeBufferPointer { target($0.baseAddress, $0.count) }
        }
        print("replayed \(files.count) input(s)")
    }

    struct ReplayError: Error, CustomStringConvertible { let description: String }
}
