import Glibc
import Testing
@testable import GLMSupport

/// The one-call-at-a-time gate of chat, session and stream-parser handles.
@Suite struct CallGateTests {
    @Test func aSecondCallIsRefusedUntilTheFirstEnds() {
        let gate = CallGate()
        #expect(gate.enter())
        #expect(!gate.enter())
        #expect(!gate.leave())
        #expect(gate.enter())
        #expect(!gate.leave())
    }

    @Test func aReleaseDuringACallIsLeftToThatCall() {
        let gate = CallGate()
        #expect(gate.enter())
        #expect(!gate.requestRelease())     // deferred: the call is running
        #expect(gate.isReleaseRequested)
        #expect(!gate.enter())              // no new call on a released object
        #expect(!gate.requestRelease())     // a second release request changes nothing
        #expect(gate.leave())               // the running call does the release
        #expect(!gate.enter())
    }

    @Test func aReleaseWithoutACallHappensAtOnce() {
        let gate = CallGate()
        #expect(!gate.isReleaseRequested)
        #expect(gate.requestRelease())
        #expect(gate.isReleaseRequested)
        #expect(!gate.enter())
    }
}

/// Only regular files are opened: anything else is an `.io` error, and a FIFO is never waited on.
@Suite struct NonRegularFileTests {
    @Test func aFIFOIsRefused() throws {
        var template = Array("/tmp/glm-fifo-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { Issue.record("mkdtemp failed"); return }
        let directory = String(cString: made)
        let fifo = directory + "/config.json"
        defer { unlink(fifo); rmdir(directory) }
        #expect(mkfifo(fifo, 0o600) == 0)
        // Held open for reading and writing by the test, so that even an open without O_NONBLOCK returns and
        // the test fails instead of hanging when the check is missing.
        let holder = open(fifo, O_RDWR | O_NONBLOCK)
        #expect(holder >= 0)
        defer { close(holder) }
        for read in [{ _ = try MappedFile(path: fifo) }, { _ = try FileSystem.readText(fifo) }] as [() throws -> Void] {
            do {
                try read()
                Issue.record("a FIFO was opened as a file")
            } catch let error as GLMError {
                #expect(error.code == .io)
                #expect(error.message.contains("'\(fifo)' is a FIFO, not a regular file"), "\(error.message)")
            }
        }
    }

    @Test func devicesAndDirectoriesAreRefused() {
        for (path, what) in [("/dev/null", "is a device"), ("/dev/zero", "is a device"), ("/tmp", "is a directory")] {
            do {
                _ = try MappedFile(path: path)
                Issue.record("'\(path)' was opened as a file")
            } catch {
                #expect(error.code == .io)
                #expect(error.message.contains(what), "\(error.message)")
            }
        }
    }

    @Test func aRegularFileStillOpens() throws {
        let file = try MappedFile(path: "/proc/self/exe")
        #expect(file.count > 0)
    }
}
