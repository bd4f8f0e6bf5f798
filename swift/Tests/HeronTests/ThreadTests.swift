import Dispatch
import XCTest
import Heron

final class ThreadTests: XCTestCase {
    /// Ops and errors from several threads at once: each thread's error carries its own message
    /// (the ABI's last error is per thread), and every handle is released.
    func testConcurrentCallsAndErrors() {
        assertNoLeaks {
            let results = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 8)
            defer { results.deallocate() }
            results.initialize(repeating: false)
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                do {
                    let n = i + 2
                    let t = try Heron.arange(end: .int(Int64(n)), dtype: .float64)
                    let s = try t.sum().item()
                    var ok = s == Double(n * (n - 1) / 2)
                    do {
                        _ = try Heron.reshape(t, shape: [n + 1])
                        ok = false
                    } catch let e as HeronError {
                        ok = ok && e.op == "reshape" && e.message.contains("\(n + 1)")
                    }
                    results[i] = ok
                } catch {
                    results[i] = false
                }
            }
            XCTAssertEqual(Array(results), Array(repeating: true, count: 8))
        }
    }
}
