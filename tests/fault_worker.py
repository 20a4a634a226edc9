"""`python -m gan_core ...` with one fault injected, for tests/test_faults.py.

    python tests/fault_worker.py FAULT CLI-ARGS...

FAULT is one of
    kill-<stage>:<step>  SIGKILL this process at <stage> of writing the checkpoint for <step>:
                         data   while the data file is written (a torn file in ckpt-N_temp/)
                         index  while TensorFlow moves it into place and writes ckpt-N.index (both torn)
                         state  while the `checkpoint` state file is written (a torn temp file)
                         sweep  after the state file names ckpt-N, half-way through deleting the oldest
    fsize:<bytes>        no file may grow past <bytes> (RLIMIT_FSIZE): writes fail with EFBIG, a full disk
    readonly             no write permission bypass: as root, CAP_DAC_OVERRIDE is dropped (then the process
                         re-executes itself), so a folder chmod-ed read-only is read-only for this process too
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
EXIT_SETUP_FAILED = 97


def die() -> None:
    """SIGKILL this process: no handler, no finally, no flush runs."""
    os.kill(os.getpid(), signal.SIGKILL)


def truncate_half(path: str) -> None:
    """Cut a file to half its length, as a write interrupted half-way leaves it."""
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)


def arm_checkpoint_kill(stage: str, step: int) -> None:
    """Patch TensorFlow's checkpoint writing (the Python layer around its C++ ops) to die at `stage` of ckpt-`step`."""
    import tensorflow as tf
    from tensorflow.python.checkpoint import checkpoint_management, functional_saver
    from tensorflow.python.lib.io import file_io

    saving = {"step": None}
    real_save = tf.train.CheckpointManager.save

    def save(self, checkpoint_number=None, **kwargs):
        saving["step"] = checkpoint_number
        return real_save(self, checkpoint_number=checkpoint_number, **kwargs)

    def armed() -> bool:
        return saving["step"] == step

    real_merge = functional_saver.gen_io_ops.merge_v2_checkpoints

    def merge(checkpoint_prefixes, destination_prefix, *args, **kwargs):
        prefix = destination_prefix.numpy().decode()
        if armed() and stage == "data":
            truncate_half(f"{prefix}_temp/part-00000-of-00001.data-00000-of-00001")
            die()
        result = real_merge(checkpoint_prefixes, destination_prefix, *args, **kwargs)
        if armed() and stage == "index":
            truncate_half(f"{prefix}.index")
            truncate_half(f"{prefix}.data-00000-of-00001")
            die()
        return result

    real_write = file_io.write_string_to_file

    def write_string_to_file(filename, file_content):
        if armed() and stage == "state" and os.path.basename(filename).startswith("checkpoint.tmp"):
            real_write(filename, file_content[: len(file_content) // 2])
            die()
        return real_write(filename, file_content)

    real_delete = file_io.delete_file

    def delete_file(filename):
        real_delete(filename)
        if armed() and stage == "sweep":
            die()

    tf.train.CheckpointManager.save = save
    functional_saver.gen_io_ops.merge_v2_checkpoints = merge
    file_io.write_string_to_file = write_string_to_file
    checkpoint_management.file_io.delete_file = delete_file


def drop_write_override() -> None:
    """As root: drop CAP_DAC_OVERRIDE from the bounding set and re-execute, so file modes bind this process."""
    if os.geteuid() != 0 or os.environ.get("FAULT_WORKER_REEXEC"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0:
        print(f"fault_worker: cannot drop CAP_DAC_OVERRIDE: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        sys.exit(EXIT_SETUP_FAILED)
    os.environ["FAULT_WORKER_REEXEC"] = "1"
    os.execv(sys.executable, [sys.executable, *sys.argv])


def main() -> int:
    """Set up the fault, then run the CLI with the remaining arguments."""
    fault, args = sys.argv[1], sys.argv[2:]
    kind, _, value = fault.partition(":")
    if kind == "readonly":
        drop_write_override()
    elif kind == "fsize":
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(value), resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    elif kind.startswith("kill-"):
        arm_checkpoint_kill(kind.removeprefix("kill-"), int(value))
    else:
        print(f"fault_worker: unknown fault '{fault}'", file=sys.stderr)
        return EXIT_SETUP_FAILED
    sys.path.insert(0, ROOT)
    from gan_core.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
