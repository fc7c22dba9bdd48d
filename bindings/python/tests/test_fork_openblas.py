"""fork() while another thread is inside OpenBLAS (Model(gemm="openblas")): every child must still compute.

The scenario runs in a subprocess with a timeout, so a deadlock (in the parent's fork or in a child) fails the test
instead of hanging the suite; each child is also killed by SIGALRM if it does not finish in time.
"""
import os
import subprocess
import sys
import textwrap

from fixtures import FIXTURES

MODEL = FIXTURES / "models" / "glm47"

# One thread runs prefill through cblas_sgemm in a loop (2 threads, so OpenBLAS runs its own worker threads and
# 64 prompt tokens make the larger products multi-threaded); the main thread forks while it does. A child prints
# nothing and exits 0 when its own forward pass gives the parent's logits.
SCENARIO = textwrap.dedent("""
    import os, signal, sys, threading, time
    import numpy as np
    import glm

    path, forks = sys.argv[1], int(sys.argv[2])
    model = glm.Model(path, threads=2, gemm="openblas")
    tokens = [(7 * i + 3) % model.vocab_size for i in range(64)]
    expected = model.logits(tokens)
    stop = threading.Event()
    calls = [0]

    def busy():
        while not stop.is_set():
            model.logits(tokens)
            calls[0] += 1

    worker = threading.Thread(target=busy)
    worker.start()
    failures = []
    try:
        for n in range(forks):
            time.sleep(0.002 * (n % 7))  # vary where in the worker's call the fork lands
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                signal.alarm(20)  # a deadlocked child dies of SIGALRM instead of hanging
                ok = np.array_equal(model.logits(tokens), expected)
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                failures.append((n, status))
    finally:
        stop.set()
        worker.join()
    print("forks", forks, "worker calls", calls[0], "failures", failures)
    sys.exit(1 if failures else 0)
""")


def test_fork_while_another_thread_runs_openblas():
    root = FIXTURES.parents[1]
    env = {**os.environ, "PYTHONPATH": str(root / "bindings" / "python")}
    result = subprocess.run([sys.executable, "-c", SCENARIO, str(MODEL), "40"], env=env, capture_output=True,
                            text=True, timeout=90)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "failures []" in result.stdout
