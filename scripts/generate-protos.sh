#!/usr/bin/env bash
# `make generate`: regenerate Sources/LiveTVAuthzEnvoy/Generated (messages) and Sources/LiveTVAuthzGRPC/Generated
# (service stubs) from Protos/ with protoc and the
# swift-protobuf / grpc-swift-protobuf plugins. Run by hand when the protos change; CI never builds the
# plugins (their first build takes about ten minutes). Tool versions are pinned below and noted in
# Protos/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPC_SWIFT_PROTOBUF_VERSION=2.4.1   # brings swift-protobuf 1.39.0 and protoc-gen-swift with it
TOOLS=.build-protoc
OUT=Sources/LiveTVAuthzEnvoy/Generated
GRPC_OUT=Sources/LiveTVAuthzGRPC/Generated

# protoc from Debian; the well-known types come from swift-protobuf's checkout (they match its runtime).
if ! command -v protoc >/dev/null 2>&1; then
    echo "protoc is missing: installing Debian's protobuf-compiler"
    apt-get install -y -qq --no-install-recommends protobuf-compiler >/dev/null
fi
if [ ! -d "$TOOLS/grpc-swift-protobuf" ]; then
    git clone -q --depth 1 --branch "$GRPC_SWIFT_PROTOBUF_VERSION" https://github.com/grpc/grpc-swift-protobuf.git \
        "$TOOLS/grpc-swift-protobuf"
fi
swift build -q -c release --package-path "$TOOLS/grpc-swift-protobuf" --product protoc-gen-grpc-swift-2
swift build -q -c release --package-path "$TOOLS/grpc-swift-protobuf" --product protoc-gen-swift
BIN=$(swift build -c release --package-path "$TOOLS/grpc-swift-protobuf" --show-bin-path)

rm -rf "$OUT" "$GRPC_OUT"
mkdir -p "$OUT" "$GRPC_OUT"
PROTOS=$(cd Protos && find . -name '*.proto' | sed 's|^\./||' | sort)
(
    cd Protos
    protoc -I . -I "$OLDPWD/$TOOLS/grpc-swift-protobuf/.build/checkouts/swift-protobuf/Protos/Sources/SwiftProtobuf" \
        --plugin=protoc-gen-swift="$BIN/protoc-gen-swift" \
        --swift_out="$OLDPWD/$OUT" --swift_opt=Visibility=Public,FileNaming=PathToUnderscores \
        --plugin=protoc-gen-grpc-swift-2="$BIN/protoc-gen-grpc-swift-2" \
        --grpc-swift-2_out="$OLDPWD/$GRPC_OUT" \
        --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true,FileNaming=PathToUnderscores \
        $PROTOS
)
{
    echo "protoc: $(protoc --version)"
    echo "grpc-swift-protobuf: $GRPC_SWIFT_PROTOBUF_VERSION (protoc-gen-grpc-swift-2)"
    echo "swift-protobuf: $(git -C "$TOOLS/grpc-swift-protobuf/.build/checkouts/swift-protobuf" describe --tags) (protoc-gen-swift)"
} >"$OUT/VERSIONS.txt"
# Files without a service come out of protoc-gen-grpc-swift-2 as empty shells: drop them.
# The messages live in their own module (LiveTVAuthzEnvoy: SwiftProtobuf only, so the decoder can be fuzzed
# without gRPC), which the stubs import.
for file in "$GRPC_OUT"/*.grpc.swift; do
    if grep -q "^public enum\|^extension\|^public struct" "$file"; then
        sed -i 's/^import GRPCProtobuf$/import GRPCProtobuf\nimport LiveTVAuthzEnvoy/' "$file"
    else
        rm "$file"
    fi
done
echo "generated into $OUT and $GRPC_OUT:"
ls "$OUT" "$GRPC_OUT"
