// swift-tools-version:5.9
// Heron for Swift: a system-library target over heron.h (CHeron, linked through pkg-config `heron`)
// and the Swift layer (Heron). Needs libheron's pkg-config file on PKG_CONFIG_PATH and libheron on
// LD_LIBRARY_PATH at run time (see README.md). Depends on nothing but libheron.
import PackageDescription

let package = Package(
    name: "Heron",
    products: [
        .library(name: "Heron", targets: ["Heron"]),
    ],
    targets: [
        .systemLibrary(name: "CHeron", path: "Sources/CHeron", pkgConfig: "heron"),
        .target(name: "Heron", dependencies: ["CHeron"], path: "Sources/Heron"),
        .testTarget(name: "HeronTests", dependencies: ["Heron", "CHeron"], path: "Tests/HeronTests",
                    exclude: ["Fixtures"]),
    ]
)
