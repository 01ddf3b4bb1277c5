"""A seccomp filter for the sandboxed runner, handed to bubblewrap with `--seccomp FD`.

Default allow (DuckDB and CPython need a wide syscall surface), with the dangerous families
denied (EPERM; EAFNOSUPPORT for sockets, ENOSYS for clone3): sockets other than AF_UNIX (the network namespace is already empty; this
also stops raw/netlink sockets), new namespaces (unshare, setns, clone with CLONE_NEW* flags),
mounts, ptrace and cross-process memory access, kernel keyrings, BPF, perf, module loading,
kexec, reboot, swap, clock changes, userfaultfd and personality changes.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import tempfile

DENIED_SYSCALLS = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsmount", "fsconfig", "fspick", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "settimeofday",
    "clock_settime", "clock_adjtime", "adjtimex", "userfaultfd", "personality", "acct", "quotactl",
    "lookup_dcookie", "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm", "syslog",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
)
# CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)


def seccomp_available() -> bool:
    """Whether libseccomp (through pyseccomp) can build filters here."""
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


@functools.cache
def compiled_filter() -> bytes:
    """The filter compiled to BPF (once per process: every sandbox gets the same program)."""
    import pyseccomp as seccomp

    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    deny = seccomp.ERRNO(errno.EPERM)
    rules.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(deny, name)
        except (ValueError, RuntimeError, OSError):
            continue  # not a syscall on this architecture
    for flag in CLONE_NAMESPACE_FLAGS:
        rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory that seccomp cannot inspect: refuse it so libc falls back to clone.
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as handle:
        rules.export_bpf(handle)
        handle.flush()
        handle.seek(0)
        return handle.read()


def build_filter_fd() -> int:
    """An fd holding the compiled filter, rewound (bwrap reads the program from it).

    Returns:
        A readable fd positioned at 0; the caller passes it to bwrap and closes it after spawning.
    """
    fd = os.memfd_create("csv-analyst-seccomp", os.MFD_CLOEXEC)
    os.write(fd, compiled_filter())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
