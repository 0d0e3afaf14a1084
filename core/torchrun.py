"""``python -m pmx.torchrun ARGS``: torchrun (same arguments) for ``pmx ... --gpus N``, with a
pmx-sized failure report.

When a worker fails, torchrun raises ``ChildFailedError`` out of its ``main`` and Python prints
a launcher traceback and a failure table after the worker's own message (``Error: ...``, which
already names the file and the fix), and exits 1 whatever the worker's status was. Here the
failure becomes one line, and the exit status is the worker's (2 for a pmx user error), so
``pmx run --gpus N`` fails the way ``pmx run`` does.
"""

from __future__ import annotations

import signal
import sys
from typing import Sequence


def exit_status(codes: Sequence[int]) -> int:
    """The status to exit with for the failed workers' exit codes (a signal -N becomes 128+N)."""
    statuses = [128 - code if code < 0 else code for code in codes]
    return next((s for s in statuses if s != 0), 1)


def _describe(code: int) -> str:
    if code < 0 and -code in {int(s) for s in signal.valid_signals()}:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def main(argv: Sequence[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(list(sys.argv[1:] if argv is None else argv)))
    except ChildFailedError as exc:
        failures = sorted((rank, failure.exitcode) for rank, failure in exc.failures.items())
        # after the first failure torchrun stops the other workers with SIGTERM: not a cause
        causes = [f for f in failures if f[1] != -signal.SIGTERM] or failures
        stopped = len(failures) - len(causes)
        parts = [f"rank {rank}: {_describe(code)}" for rank, code in causes]
        print(f"pmx: {len(causes)} worker process(es) failed ({'; '.join(parts)}); "
              f"{'their messages are' if len(causes) > 1 else 'its message is'} above"
              + (f" ({stopped} other(s) stopped by torchrun)" if stopped else ""), file=sys.stderr)
        return exit_status([code for _, code in causes])
    return 0


if __name__ == "__main__":
    sys.exit(main())
