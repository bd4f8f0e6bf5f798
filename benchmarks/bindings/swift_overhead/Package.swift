// swift-tools-version:5.9
// Per-op call overhead of the Swift binding: a 1-element float32 add through Heron.add (the generated
// function) and through the operator, against the same heron_op_call made from C (COverhead, compiled
// into the same process). Run: swift run -c release -j 1 swift-overhead (see swift/README.md).
import PackageDescription

let package = Package(
    name: "SwiftOverhead",
    dependencies: [.package(path: "../../../swift")],
    targets: [
        .target(name: "COverhead", dependencies: [.product(name: "Heron", package: "swift")], path: "Sources/COverhead",
                cSettings: [.unsafeFlags(["-O2"])]),
        .executableTarget(name: "swift-overhead", dependencies: [.product(name: "Heron", package: "swift"), "COverhead"],
                          path: "Sources/swift-overhead"),
    ]
)
