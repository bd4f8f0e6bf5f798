#!/usr/bin/env bash
# An outside SwiftPM package that depends on swift/ (by path, as a user's project would by URL) and
# runs a smoke example from its own folder: nothing may work only inside the source tree.
# libheron is found through PKG_CONFIG_PATH (build) and LD_LIBRARY_PATH (run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app/Sources/app"
cat > "$work/app/Package.swift" <<SWIFT
// swift-tools-version:5.9
import PackageDescription
let package = Package(
    name: "app",
    dependencies: [.package(path: "$here")],
    targets: [.executableTarget(name: "app", dependencies: [.product(name: "Heron", package: "swift")])]
)
SWIFT
cat > "$work/app/Sources/app/main.swift" <<'SWIFT'
import Heron

let a = try Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
let s = try Heron.matmul(a, a).sum().item()
guard s == 54 else { fatalError("sum(a @ a) = \(s), want 54") }
print("outside package works: heron \(Heron.version), sum(a @ a) = \(s)")
SWIFT
cd "$work/app"
swift build -j "${SWIFT_JOBS:-1}" >build.log 2>&1 || { cat build.log; exit 1; }
"$(swift build --show-bin-path)/app"
