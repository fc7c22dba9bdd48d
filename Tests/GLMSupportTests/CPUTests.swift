import CGLMCPU
import GLMSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The kernel path a model runs, for this CPU and for described ones (older CPUs, AVX2-only, AVX-512).
@Suite struct KernelPathTests {
    static let westmere = CPUFeatures(bits: 0, brand: "Intel Westmere")
    static let sandyBridge = CPUFeatures(bits: UInt32(GLM_CPU_AVX), brand: "Sandy Bridge")
    static let haswell = CPUFeatures(bits: UInt32(GLM_CPU_AVX | GLM_CPU_AVX2 | GLM_CPU_FMA | GLM_CPU_F16C),
                                     brand: "Haswell")
    static let skylakeX = CPUFeatures(bits: haswell.bits | UInt32(GLM_CPU_AVX512F | GLM_CPU_AVX512BW), brand: "SKX")

    func code(_ body: () throws(GLMError) -> KernelPath) -> GLMError.Code? {
        do { _ = try body(); return nil } catch { return error.code }
    }

    @Test func aCPUWithoutAVX2IsRefusedNamingWhatIsMissing() {
        do {
            _ = try KernelPath.resolve(nil, environment: nil, cpu: KernelPathTests.westmere)
            Issue.record("a CPU without AVX was accepted")
        } catch {
            #expect(error.code == .unsupported)
            #expect(error.message.contains("avx, avx2, fma, f16c"))
            #expect(error.message.contains("Westmere"))
        }
        do {
            _ = try KernelPath.resolve(.avx2, environment: nil, cpu: KernelPathTests.sandyBridge)
            Issue.record("a CPU without AVX2 was accepted")
        } catch {
            #expect(error.code == .unsupported)
            #expect(error.message.contains("lacks avx2, fma, f16c"))
        }
        #expect(KernelPath.available(on: KernelPathTests.westmere).isEmpty)
    }

    @Test func theBestPathIsTheDefaultAndAnExplicitChoiceWinsOverTheEnvironment() throws {
        #expect(try KernelPath.resolve(nil, environment: nil, cpu: KernelPathTests.haswell) == .avx2)
        #expect(try KernelPath.resolve(nil, environment: nil, cpu: KernelPathTests.skylakeX) == .avx512)
        #expect(try KernelPath.resolve(nil, environment: "avx2", cpu: KernelPathTests.skylakeX) == .avx2)
        #expect(try KernelPath.resolve(nil, environment: "AUTO", cpu: KernelPathTests.skylakeX) == .avx512)
        #expect(try KernelPath.resolve(nil, environment: "", cpu: KernelPathTests.skylakeX) == .avx512)
        #expect(try KernelPath.resolve(.avx512, environment: "avx2", cpu: KernelPathTests.skylakeX) == .avx512)
        #expect(try KernelPath.resolve(.avx2, environment: "avx512", cpu: KernelPathTests.skylakeX) == .avx2)
        #expect(KernelPath.available(on: KernelPathTests.haswell) == [.avx2])
        #expect(KernelPath.available(on: KernelPathTests.skylakeX) == [.avx2, .avx512])
    }

    @Test func impossibleOrMalformedChoicesAreErrors() {
        #expect(code { () throws(GLMError) in try KernelPath.resolve(.avx512, environment: nil, cpu: KernelPathTests.haswell) } == .unsupported)
        #expect(code { () throws(GLMError) in try KernelPath.resolve(nil, environment: "avx512", cpu: KernelPathTests.haswell) } == .unsupported)
        #expect(code { () throws(GLMError) in try KernelPath.resolve(nil, environment: "sse2", cpu: KernelPathTests.skylakeX) } == .invalidArgument)
    }

    /// This machine's CPUID agrees with what Linux reports in /proc/cpuinfo (an independent reading).
    @Test func hostFeaturesMatchProcCpuinfo() throws {
        // /proc files report size 0, so read them as a stream.
        guard let file = fopen("/proc/cpuinfo", "r") else {
            Issue.record("cannot open /proc/cpuinfo")
            return
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let flagsLine = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            Issue.record("/proc/cpuinfo has no flags line")
            return
        }
        let flags = Set(flagsLine.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
        #expect(!flags.isEmpty)
        for (name, _) in CPUFeatures.names {
            #expect(CPUFeatures.host.has(name) == flags.contains(name), "\(name)")
        }
        #expect(!CPUFeatures.host.vendor.isEmpty)
    }
}
