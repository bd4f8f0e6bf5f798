import Foundation
import XCTest
@testable import Heron

/// Runs `body` and checks that every handle it made was released (Swift's deinit) when it returns.
func assertNoLeaks(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) rethrows {
    let before = Heron.liveHandles()
    try body()
    XCTAssertEqual(Heron.liveHandles(), before, "live handles leaked", file: file, line: line)
}

func assertClose(_ got: [Double], _ want: [Double], rtol: Double = 1e-5, atol: Double = 1e-6,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, "length", file: file, line: line)
    for (g, w) in zip(got, want) {
        if w.isNaN { XCTAssertTrue(g.isNaN, "want nan, got \(g)", file: file, line: line); continue }
        XCTAssertLessThanOrEqual(abs(g - w), atol + rtol * abs(w), "got \(got), want \(want)", file: file, line: line)
    }
}

func values(_ t: Tensor) throws -> [Double] { try t.toArray(Double.self) }

/// The repository root, found from this file's path (swift/Tests/HeronTests/Support.swift).
let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
let fixturesDir: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
