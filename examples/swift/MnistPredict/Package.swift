// swift-tools-version:5.9
// Loads mnist.heron with Heron's Swift binding and prints the predictions for the first 20 MNIST-10k
// test images. See swift/README.md for the commands.
import PackageDescription

let package = Package(
    name: "HeronSwiftExamples",
    dependencies: [.package(path: "../../../swift")],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .executableTarget(name: "mnist-predict", dependencies: [.product(name: "Heron", package: "swift"), "CZlib"],
                          path: "Sources/mnist-predict"),
    ]
)
