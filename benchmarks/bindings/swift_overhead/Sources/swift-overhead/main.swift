// Prints the median ns/call of a 1-element add from C, from Swift's generated function and from the
// Swift operator, and the ratio to C (the bar: <= 3x). swift-overhead [ITERS [REPEATS]]
import COverhead
import Foundation
import Heron

let args = CommandLine.arguments
let iters = args.count > 1 ? Int(args[1]) ?? 20000 : 20000
let repeats = args.count > 2 ? Int(args[2]) ?? 15 : 15

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

func timeSwift(_ body: () throws -> Tensor) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<iters { _ = try body() }
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(iters)
}

do {
    let a = try Tensor([Float(1)]), b = try Tensor([Float(1)])
    _ = coverhead_add_ns(Int64(iters))  // warm-up
    _ = try timeSwift { try Heron.add(a, b) }
    var c: [Double] = [], f: [Double] = [], op: [Double] = []
    for _ in 0..<repeats {
        c.append(coverhead_add_ns(Int64(iters)))
        f.append(try timeSwift { try Heron.add(a, b) })
        op.append(try timeSwift { try a + b })
    }
    if c.contains(where: { $0 < 0 }) { fatalError("the C loop failed") }
    let mc = median(c), mf = median(f), mo = median(op)
    print(String(format: "1-element add, median of %d x %d calls: C %.0f ns/call", repeats, iters, mc))
    print(String(format: "Swift Heron.add %.0f ns/call (%.2fx C); Swift a + b %.0f ns/call (%.2fx C); bar <= 3x: %@",
                 mf, mf / mc, mo, mo / mc, max(mf, mo) / mc <= 3 ? "met" : "NOT met"))
} catch {
    print("swift-overhead: \(error)")
    exit(1)
}
