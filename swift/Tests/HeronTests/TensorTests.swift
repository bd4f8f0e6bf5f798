import XCTest
@testable import Heron

final class TensorTests: XCTestCase {
    func testRoundTripEveryDType() throws {
        try assertNoLeaks {
            let f = try Tensor([1.5, -2.25, 3, 4] as [Float], shape: [2, 2])
            XCTAssertEqual(f.shape, [2, 2]); XCTAssertEqual(f.dtype, .float32); XCTAssertEqual(f.device, "cpu")
            XCTAssertEqual(f.numel, 4); XCTAssertEqual(f.ndim, 2)
            XCTAssertEqual(try f.toArray(Float.self), [1.5, -2.25, 3, 4])
            let d = try Tensor([1e300, -0.5, 2] as [Double])
            XCTAssertEqual(d.dtype, .float64); XCTAssertEqual(try d.toArray(Double.self), [1e300, -0.5, 2])
            let i = try Tensor([Int32.max, -7, 0], shape: [3, 1])
            XCTAssertEqual(i.dtype, .int32); XCTAssertEqual(i.shape, [3, 1]); XCTAssertEqual(try i.toArray(Int32.self), [Int32.max, -7, 0])
            let l = try Tensor([Int64.min, 1 << 40])
            XCTAssertEqual(l.dtype, .int64); XCTAssertEqual(try l.toArray(Int64.self), [Int64.min, 1 << 40])
            let u = try Tensor([0, 255, 128] as [UInt8])
            XCTAssertEqual(u.dtype, .uint8); XCTAssertEqual(try u.toArray(UInt8.self), [0, 255, 128])
            let b = try Tensor([true, false, true], shape: [3])
            XCTAssertEqual(b.dtype, .bool); XCTAssertEqual(try b.toArray(Bool.self), [true, false, true])
            // Reading back as another type casts.
            XCTAssertEqual(try i.toArray(Double.self), [Double(Int32.max), -7, 0])
            XCTAssertEqual(try b.toArray(Float.self), [1, 0, 1])
            let s = try Tensor([Float(7.5)], shape: [])
            XCTAssertEqual(s.shape, []); XCTAssertEqual(try s.item(), 7.5); XCTAssertEqual(try s.itemInt(), 7)
        }
    }

    func testDeinitReleasesTheHandle() throws {
        let before = Heron.liveHandles()
        var keep: Tensor? = try Tensor([1, 2] as [Float])
        var view: Tensor? = try keep!.reshape(shape: [2, 1])
        XCTAssertEqual(Heron.liveHandles(), before + 2)
        keep = nil
        XCTAssertEqual(Heron.liveHandles(), before + 1)
        XCTAssertEqual(try view!.toArray(Float.self), [1, 2])  // the view keeps the storage alive
        view = nil
        XCTAssertEqual(Heron.liveHandles(), before)
    }

    func testOperatorsAndPromotion() throws {
        try assertNoLeaks {
            let a = try Tensor([1, 2, 3] as [Float])
            let b = try Tensor([4, 5, 6] as [Float])
            XCTAssertEqual(try (a + b).toArray(Float.self), [5, 7, 9])
            XCTAssertEqual(try (a - b).toArray(Float.self), [-3, -3, -3])
            XCTAssertEqual(try (a * b).toArray(Float.self), [4, 10, 18])
            XCTAssertEqual(try (b / a).toArray(Float.self), [4, 2.5, 2])
            XCTAssertEqual(try (-a).toArray(Float.self), [-1, -2, -3])
            XCTAssertEqual(try (a * 2.0).toArray(Float.self), [2, 4, 6])
            XCTAssertEqual(try (1.0 - a).toArray(Float.self), [0, -1, -2])
            XCTAssertEqual(try (a + 1).dtype, .float32)
            // Wrapped numbers promote like literals: int32 * 2 stays int32, int32 + 2.5 becomes float32.
            let i = try Tensor([1, 2, 3] as [Int32])
            let i2 = try i * 2
            XCTAssertEqual(i2.dtype, .int32); XCTAssertEqual(try i2.toArray(Int32.self), [2, 4, 6])
            let f = try i + 2.5
            XCTAssertEqual(f.dtype, .float32); XCTAssertEqual(try f.toArray(Float.self), [3.5, 4.5, 5.5])
            // Broadcasting (2, 1) + (3,) -> (2, 3)
            let c = try Tensor([10, 20] as [Float], shape: [2, 1])
            let s = try c + a
            XCTAssertEqual(s.shape, [2, 3]); XCTAssertEqual(try s.toArray(Float.self), [11, 12, 13, 21, 22, 23])
        }
    }

    func testCreationChecksArguments() throws {
        XCTAssertThrowsError(try Tensor([1, 2, 3] as [Float], shape: [2, 2])) { e in
            guard case HeronError.invalidArgument = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try Tensor([1] as [Float], shape: [-1]))
        XCTAssertThrowsError(try Tensor([1] as [Float], device: "nosuchdevice"))
    }

    func testDevicesSeedVersion() throws {
        XCTAssertTrue(Heron.deviceTypes().contains("cpu"))
        XCTAssertGreaterThanOrEqual(try Heron.deviceCount("cpu"), 1)
        XCTAssertFalse(Heron.version.isEmpty)
        XCTAssertNoThrow(try Heron.checkABI())
        try assertNoLeaks {
            Heron.manualSeed(42)
            let a = try Heron.rand(size: [5]).toArray(Float.self)
            Heron.manualSeed(42)
            let b = try Heron.rand(size: [5]).toArray(Float.self)
            XCTAssertEqual(a, b)
            XCTAssertTrue(a.allSatisfy { $0 >= 0 && $0 < 1 })
        }
        XCTAssertEqual(try DType(name: "int64"), .int64)
        XCTAssertEqual(DType.bfloat16.name, "bfloat16")
        XCTAssertEqual(DType.float64.itemSize, 8)
    }
}
