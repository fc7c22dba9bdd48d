import Testing
@testable import GLMNumerics
import GLMSupport

/// The `.openBLAS` GEMM backend against double-precision evaluation and against the `.packed` backend, on f32,
/// bf16 and f16 weights, including matrices larger than one f32 panel; and the GLM_GEMM override.
@Suite struct OpenBLASBackendTests {
    /// Runs one projection (plus a decode-sized one in the same batch) through `batch`; returns both outputs.
    func project(_ w: WeightMatrix, input: [Float], tokens: Int, batch: ProjectionBatch) -> (many: [Float], one: [Float]) {
        let rows = w.rows, columns = w.columns
        var many = [Float](repeating: .nan, count: tokens * (rows + 2))
        var one = [Float](repeating: .nan, count: rows)
        input.withUnsafeBufferPointer { x in
            many.withUnsafeMutableBufferPointer { y in
                one.withUnsafeMutableBufferPointer { z in
                    batch.append(Projection(w, input: x.baseAddress!, inputStride: columns, tokens: tokens,
                                            output: y.baseAddress! + 1, outputStride: rows + 2))
                    batch.append(Projection(w, input: x.baseAddress!, inputStride: columns, tokens: 1,
                                            output: z.baseAddress!, outputStride: rows))
                    batch.run()
                }
            }
        }
        return (many, one)
    }

    @Test(arguments: KernelTests.Kind.allCases)
    func openBLASMatchesDoublePrecisionAndThePackedGEMM(kind: KernelTests.Kind) throws {
        var numbers = KernelTests.Numbers(state: 11)
        let openBLASBatch = try ProjectionBatch(workers: Workers(threads: 3), backend: .openBLAS, path: .avx2)
        let packedBatch = try ProjectionBatch(workers: Workers(threads: 3), backend: .packed,
                                              path: try KernelPath.resolve(nil))
        #expect(openBLASBatch.backend == .openBLAS && packedBatch.backend == .packed)
        // (1100, 1000) spans two f32 panels of OpenBLASProjector.panelFloats.
        for (rows, columns) in [(1, 1), (70, 37), (300, 64), (17, 600), (1100, 1000)] {
            for tokens in [7, 8, 9, 40] {
                let weights = numbers.array(rows * columns)
                let input = numbers.array(tokens * columns)
                KernelTests().withMatrix(weights, rows: rows, columns: columns, kind: kind) { w, exact in
                    let openBLAS = project(w, input: input, tokens: tokens, batch: openBLASBatch)
                    let packed = project(w, input: input, tokens: tokens, batch: packedBatch)
                    var worst = 0.0, worstApart = 0.0
                    for t in 0..<tokens {
                        for r in 0..<rows {
                            var sum = 0.0
                            for c in 0..<columns { sum += Double(exact[r * columns + c]) * Double(input[t * columns + c]) }
                            let i = t * (rows + 2) + 1 + r
                            worst = max(worst, abs(sum - Double(openBLAS.many[i])))
                            worstApart = max(worstApart, abs(Double(packed.many[i]) - Double(openBLAS.many[i])))
                        }
                        // Strides honoured: the entries around each output row are untouched.
                        #expect(openBLAS.many[t * (rows + 2)].isNaN && openBLAS.many[t * (rows + 2) + rows + 1].isNaN)
                    }
                    let shape = "\(kind) rows \(rows) columns \(columns) tokens \(tokens)"
                    #expect(worst < 1e-5 * Double(columns), "\(shape)")
                    #expect(worstApart < 1e-5 * Double(columns), "\(shape)")
                    // The single-row projection of the same batch takes the row kernel in both backends.
                    #expect(openBLAS.one == packed.one, "\(shape)")
                }
            }
        }
    }

    @Test func openBLASTakesOnlyProjectionsWithManyRows() throws {
        let workers = Workers(threads: 2)
        let projector = try OpenBLASProjector(workers: workers)
        let weights = [Float](repeating: 1, count: 8 * 4)
        var output = [Float](repeating: 0, count: 64)
        weights.withUnsafeBufferPointer { w in
            output.withUnsafeMutableBufferPointer { y in
                let matrix = WeightMatrix(rows: 8, columns: 4, storage: .f32(w.baseAddress!))
                func projection(tokens: Int) -> Projection {
                    Projection(matrix, input: w.baseAddress!, inputStride: 4, tokens: tokens,
                               output: y.baseAddress!, outputStride: 8)
                }
                #expect(!projector.computes(projection(tokens: ProjectionBatch.gemmMinimumTokens - 1)))
                #expect(projector.computes(projection(tokens: ProjectionBatch.gemmMinimumTokens)))
            }
        }
    }

    @Test func anExplicitBackendWinsOverTheEnvironment() throws {
        #expect(try GEMMBackend.resolve(.packed, environment: nil) == .packed)
        #expect(try GEMMBackend.resolve(.openBLAS, environment: nil) == .openBLAS)
        #expect(try GEMMBackend.resolve(.openBLAS, environment: "") == .openBLAS)
        #expect(try GEMMBackend.resolve(nil, environment: nil) == .packed)
        #expect(try GEMMBackend.resolve(nil, environment: "openblas") == .openBLAS)
        #expect(try GEMMBackend.resolve(nil, environment: "OpenBLAS") == .openBLAS)
        #expect(try GEMMBackend.resolve(.packed, environment: "openblas") == .packed)
        #expect(try GEMMBackend.resolve(.openBLAS, environment: "packed") == .openBLAS)
        do {
            _ = try GEMMBackend.resolve(.packed, environment: "mkl")
            Issue.record("GLM_GEMM=mkl was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("GLM_GEMM") && error.message.contains("mkl"))
        }
    }
}
