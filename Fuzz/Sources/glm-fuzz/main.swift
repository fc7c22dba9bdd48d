import CFuzzSupport
import Glibc

// One libFuzzer binary for every parser of outside input. The target is the suffix of the name it runs under
// (`make fuzz-build` links glm-fuzz-<target> to it), so libFuzzer's re-executions (-fork, -jobs, -merge) keep it.
// Flags and corpus directories after the name are libFuzzer's own (`-help=1` lists them).

let invokedAs = String(CommandLine.arguments.first?.split(separator: "/").last ?? "glm-fuzz")
let prefix = "glm-fuzz-"
guard invokedAs.hasPrefix(prefix), let target = FuzzTarget.all[String(invokedAs.dropFirst(prefix.count))] else {
    let names = FuzzTarget.all.keys.sorted().map { prefix + $0 }.joined(separator: ", ")
    fputs("glm-fuzz: run it as one of its links: \(names)\n", stderr)
    exit(2)
}
FuzzTarget.selected = target
target.setUp()

var arguments = CommandLine.arguments.map { strdup($0) } + [nil]
var argumentCount = Int32(CommandLine.arguments.count)
let status = arguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var argv = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argumentCount, &argv) { data, size in
        FuzzTarget.selected?.run(UnsafeBufferPointer(start: data, count: size))
        return 0
    }
}
exit(status)
