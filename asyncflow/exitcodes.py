"""The exit statuses of `asyncflow` and `asyncflow serve`, in one place.

The numbers above 63 are those of BSD's sysexits.h, which supervisors and scripts know:

    EX_OK           0  done
    EX_FAILED       1  the command ran and failed (a `dags test` run failed, an unknown DAG)
    EX_USAGE        2  bad arguments (argparse's own status; sysexits says 64)
    EX_UNAVAILABLE 69  the database is held by a running daemon and the command needs it
    EX_SOFTWARE    70  the daemon's scheduler failed: a bug; the supervisor should restart it
    EX_IOERR       74  the daemon stopped, but its last state could not be written (a full
                       disk): the next start recovers it from the store; or it could not
                       start on a full disk (restarted: space may come back)
    EX_CONFIG      78  a bad setting (file, environment or flag), or a database only a person
                       can fix (a folder, read-only, corrupt, a newer schema: see
                       asyncflow.service.startup); restarting will not help
    EX_INTERRUPTED 130 interrupted by Ctrl-C (128 + SIGINT)

The systemd unit lists EX_CONFIG in `RestartPreventExitStatus=`: a bad setting is not retried.
"""

from __future__ import annotations

__all__ = [
    "EX_CONFIG",
    "EX_FAILED",
    "EX_INTERRUPTED",
    "EX_IOERR",
    "EX_OK",
    "EX_SOFTWARE",
    "EX_UNAVAILABLE",
    "EX_USAGE",
]

EX_OK = 0
EX_FAILED = 1
EX_USAGE = 2
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_IOERR = 74
EX_CONFIG = 78
EX_INTERRUPTED = 130
