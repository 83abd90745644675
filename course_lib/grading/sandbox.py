"""A Jupyter kernel in a bubblewrap sandbox, one per submission.

The kernel sees a read-only system, Python environment and ``course_lib`` (bound at
``/opt/course``), a private writable scratch folder holding the one notebook it runs, a
private ``/tmp``, its own PID namespace (so neither the grader nor other submissions show up
in ``/proc``) and no network. It talks to the grader over Unix sockets in the scratch folder.
Memory, CPU time and file size are capped with rlimits (``prlimit``); the whole process tree
is killed and reaped when its sheet ends. Without bubblewrap the grader refuses to run unless
told ``--unsafe``, in which case the kernel runs in the scratch folder with the same limits
but sees the whole machine.
"""
from __future__ import annotations

import os
import pathlib
import queue
import shutil
import signal
import subprocess
import sys
import time

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec

import course_lib

LIBRARY = pathlib.Path(course_lib.__file__).resolve().parent
INSIDE = "/opt/course"


class SandboxUnavailable(RuntimeError):
    pass


def bwrap_works() -> str | None:
    """None when bubblewrap can build a sandbox here, else the reason it cannot."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = subprocess.run([exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {probe.stderr.strip()[:200]}"
    return None


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    seen = {"/usr"}
    for prefix in sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                          os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}):
        real = os.path.realpath(prefix)
        if not any(real == s or real.startswith(s + os.sep) for s in seen):
            args += ["--ro-bind", real, real]
            if prefix != real:
                args += ["--ro-bind", real, prefix]
            seen.add(real)
    return args


class SandboxKernel:
    """Start with ``start()``, run code with ``run(code, timeout)``, always ``close()``."""

    def __init__(self, scratch: pathlib.Path, memory_mb: int = 6144, cpu_seconds: int = 1800,
                 sandboxed: bool = True):
        self.scratch = scratch
        self.memory_mb, self.cpu_seconds, self.sandboxed = memory_mb, cpu_seconds, sandboxed
        self.km: KernelManager | None = None
        self.kc = None

    def _argv(self) -> list[str]:
        limits = [shutil.which("prlimit") or "prlimit", f"--as={self.memory_mb * 2**20}",
                  f"--cpu={self.cpu_seconds}", f"--fsize={1024 * 2**20}", "--"]
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        if not self.sandboxed:
            return limits + kernel
        scratch = str(self.scratch)
        return limits + [
            shutil.which("bwrap"), "--unshare-all", "--die-with-parent", "--new-session",
            *_system_binds(),
            "--ro-bind", str(LIBRARY), f"{INSIDE}/course_lib",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
            "--bind", scratch, scratch, "--chdir", scratch,
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", scratch,
            "--setenv", "PYTHONPATH", INSIDE, "--setenv", "OMP_NUM_THREADS", "1",
            "--setenv", "MPLCONFIGDIR", f"{scratch}/.matplotlib", "--setenv", "MPLBACKEND", "agg",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--"] + kernel

    def start(self, timeout: float = 120) -> None:
        spec = KernelSpec(argv=self._argv(), display_name="sandbox", language="python", env={})
        self.km = KernelManager(transport="ipc", ip=str(self.scratch / ".kernel"),
                                connection_file=str(self.scratch / ".kernel.json"))
        self.km._kernel_spec = spec
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.scratch),
               "PYTHONPATH": str(LIBRARY.parent), "OMP_NUM_THREADS": "1", "MPLBACKEND": "agg",
               "MPLCONFIGDIR": str(self.scratch / ".matplotlib")}
        self.km.start_kernel(env=env, cwd=str(self.scratch), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=timeout)

    def alive(self) -> bool:
        return self.km is not None and self.km.is_alive()

    def run(self, code: str, timeout: float) -> dict:
        """Execute ``code``; return ``{"status": "ok"|"error"|"timeout"|"died", "error": str,
        "displays": [mime types shown]}``."""
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        deadline = time.monotonic() + timeout
        out = {"status": "ok", "error": "", "displays": []}
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                out["status"] = "timeout"
                return out
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 1.0))
            except queue.Empty:
                if not self.alive():
                    out["status"] = "died"
                    return out
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error":
                out["status"] = "error"
                out["error"] = f"{content.get('ename', '')}: {content.get('evalue', '')}"[:500]
            elif kind in ("display_data", "execute_result", "update_display_data"):
                out["displays"] += list(content.get("data", {}))
            elif kind == "status" and content.get("execution_state") == "idle":
                return out

    def close(self) -> None:
        """Kill the kernel and everything it started, and reap them."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        try:
            if self.kc is not None:
                self.kc.stop_channels()
            if self.km is not None and self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        except Exception:
            pass
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the kernel runs in its own session
            except (ProcessLookupError, PermissionError, OSError):
                pass
            try:
                process.wait(timeout=10)
            except Exception:
                pass
        self.km = self.kc = None
