"""A throwaway single-node SLURM cluster on this machine, for the `slurm` test marker.

Starts munged, MariaDB + slurmdbd (so `sacct` works, as on a real cluster with accounting),
slurmctld and slurmd from Debian's packages, each in the foreground as a child process
whose PID we hold, with every config, socket, spool, database and log inside one temp
folder. Clients find the cluster through ``SLURM_CONF`` (see :attr:`SlurmCluster.env`);
the only path outside the temp folder is the /run/slurm/conf link (see RUN_CONF_LINK),
removed on stop. Every wait is bounded, and :meth:`SlurmCluster.stop` cancels leftover
jobs and ends exactly the processes started here, by PID, also when a start-up step
failed half way. No systemd is needed (the test machines have none).

Measured on a 2-core Debian 12 VM: start 2.4 s (mariadb-install-db 0.5 s), stop 2 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

CLUSTER_NAME = "crossglue"
NODE_NAME = "localhost"
PARTITION = "debug"
# Where SLURM clients look for the config when SLURM_CONF is unset: the snakemake jobstep
# plugin unsets every SLURM_* variable (SLURM_CONF included) before its nested `srun`, so
# inside jobs only these paths work. On configless nodes slurmd links the second to its
# config cache; the harness links it to its own config folder the same way.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
RUN_CONF_LINK = Path("/run/slurm/conf")
DB_USER = "slurm"
DB_PASS = "crossglue-test"

# Programs the harness runs; .ci/install_slurm.sh installs their packages.
REQUIRED_PROGRAMS = (
    "munged",
    "mungekey",
    "mariadbd",
    "mariadb-install-db",
    "mariadb",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sacct",
    "sinfo",
    "sacctmgr",
)


class ClusterError(RuntimeError):
    """The test cluster failed to start; the message carries the daemons' log tails."""


def missing_programs() -> list[str]:
    """Programs the harness needs that are not on PATH."""
    return [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _usable_memory_mb() -> int:
    """A RealMemory safely below what the machine has (slurmd drains a node claiming more)."""
    total_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return max(1000, int(total_kb / 1024 * 0.8))


class SlurmCluster:
    """One-node SLURM cluster living in ``root``; use :func:`running_cluster`."""

    def __init__(self, root: Path, cpus: int | None = None) -> None:
        self.root = root
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = _usable_memory_mb()
        self.ports = {name: _free_port() for name in ("slurmctld", "slurmd", "slurmdbd", "mariadb")}
        self.hostname = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen] = {}
        self.linked_run_conf = False
        self.timings: dict[str, float] = {}
        for sub in ("etc", "state", "spool", "log", "run", "db"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.conf = root / "etc" / "slurm.conf"
        self.munge_socket = root / "run" / "munge.socket"

    # ------------------------------------------------------------------ environment
    @property
    def env(self) -> dict[str, str]:
        """The environment under which SLURM clients (and Snakemake) talk to this cluster."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        for var in [k for k in env if k.startswith(("SLURM_", "SBATCH_", "SQUEUE_", "SACCT_")) and k != "SLURM_CONF"]:
            del env[var]
        return env

    def run(self, *args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        """Run one SLURM client command against this cluster, bounded by ``timeout``."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout, check=check)

    # ------------------------------------------------------------------ config files
    def write_configs(self) -> None:
        r = self.root
        auth = f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket}\n"
        accounting = (
            "AccountingStorageType=accounting_storage/slurmdbd\n"
            f"AccountingStorageHost=127.0.0.1\nAccountingStoragePort={self.ports['slurmdbd']}\n"
            # For auth/munge this names the munge socket of the link to slurmdbd.
            f"AccountingStoragePass={self.munge_socket}\n"
            "JobAcctGatherType=jobacct_gather/linux\nJobAcctGatherFrequency=5\n"
        )
        self.conf.write_text(
            f"ClusterName={CLUSTER_NAME}\n"
            f"SlurmctldHost={self.hostname}(127.0.0.1)\n"
            f"SlurmctldPort={self.ports['slurmctld']}\nSlurmdPort={self.ports['slurmd']}\n"
            "SlurmUser=root\nSlurmdUser=root\n" + auth + "CredType=cred/munge\nMpiDefault=none\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\nDefMemPerCPU=500\n"
            "SchedulerType=sched/backfill\nReturnToService=2\n"
            # squeue keeps finished jobs for 10 min, so `slurm-status-command: squeue` works too.
            "MinJobAge=600\nKillWait=5\nInactiveLimit=0\nWaitTime=0\n"
            f"StateSaveLocation={r / 'state'}\nSlurmdSpoolDir={r / 'spool'}\n"
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}\nSlurmdPidFile={r / 'run' / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}\nSlurmdLogFile={r / 'log' / 'slurmd.log'}\n"
            "SlurmctldDebug=info\nSlurmdDebug=info\nMailProg=/bin/true\n" + accounting + "JobCompType=jobcomp/none\n"
            f"NodeName={NODE_NAME} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN\n"
            f"PartitionName={PARTITION} Nodes={NODE_NAME} Default=YES MaxTime=INFINITE State=UP\n"
        )
        # No cgroup plugin is used (proctrack/linuxproc, task/none); the file keeps slurmd
        # from looking for a system one.
        (r / "etc" / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")
        dbd = r / "etc" / "slurmdbd.conf"
        dbd.write_text(
            auth + f"DbdHost={self.hostname}\nDbdAddr=127.0.0.1\nDbdPort={self.ports['slurmdbd']}\n"
            "SlurmUser=root\nDebugLevel=info\n"
            f"LogFile={r / 'log' / 'slurmdbd.log'}\nPidFile={r / 'run' / 'slurmdbd.pid'}\n"
            "StorageType=accounting_storage/mysql\n"
            f"StorageHost=127.0.0.1\nStoragePort={self.ports['mariadb']}\n"
            f"StorageUser={DB_USER}\nStoragePass={DB_PASS}\nStorageLoc=slurm_acct_db\n"
        )
        dbd.chmod(0o600)  # slurmdbd refuses a config others can read (it holds a password)

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(
            args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float, proc: str | None = None) -> None:
        """Poll ``ready`` until true; fail fast if ``proc`` died, fail after ``timeout`` s."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if proc is not None and self.procs[proc].poll() is not None:
                raise ClusterError(
                    f"{proc} exited with {self.procs[proc].returncode} before {what}\n{self.log_tails()}"
                )
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                if ready():
                    self.timings[what] = round(time.monotonic() - t0, 2)
                    return
            time.sleep(0.2)
        raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.log_tails()}")

    def _ok(self, *args: str, timeout: float = 10) -> bool:
        return subprocess.run(list(args), env=self.env, capture_output=True, timeout=timeout).returncode == 0

    def _start_munge(self) -> None:
        key = self.root / "etc" / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True, timeout=30)
        key.chmod(0o600)
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self.root / 'run' / 'munged.pid'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={self.root / 'run' / 'munged.seed'}",
            ],
        )

        def munge_roundtrip() -> bool:
            cred = subprocess.run(["munge", "-n", "-S", str(self.munge_socket)], capture_output=True, timeout=5)
            check = subprocess.run(
                ["unmunge", "-S", str(self.munge_socket)], input=cred.stdout, capture_output=True, timeout=5
            )
            return cred.returncode == 0 and check.returncode == 0

        self._wait("munged", munge_roundtrip, 20, "munged")

    def _start_mariadb(self) -> None:
        data, sock = self.root / "db" / "data", self.root / "run" / "mariadb.sock"
        data.mkdir()
        # mariadbd drops to the `mysql` user; it must reach and own its folders.
        for path in (self.root, self.root / "db", self.root / "run", self.root / "log"):
            path.chmod(0o755)
        shutil.chown(self.root / "db", "mysql", "mysql")
        shutil.chown(data, "mysql", "mysql")
        (self.root / "run").chmod(0o1777)
        t0 = time.monotonic()
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={data}",
                "--user=mysql",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        self.timings["mariadb-install-db"] = round(time.monotonic() - t0, 2)
        self._spawn(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={data}",
                f"--socket={sock}",
                f"--port={self.ports['mariadb']}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                f"--pid-file={self.root / 'run' / 'mariadbd.pid'}",
                f"--log-error={self.root / 'db' / 'mariadbd.log'}",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--skip-log-bin",
            ],
        )
        self._wait("mariadbd", lambda: self._ok("mariadb-admin", f"--socket={sock}", "ping"), 60, "mariadbd")
        sql = (
            f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASS}';"
            f"GRANT ALL ON slurm_acct_db.* TO '{DB_USER}'@'127.0.0.1';"
        )
        subprocess.run(["mariadb", f"--socket={sock}", "-e", sql], check=True, capture_output=True, timeout=30)

    def _link_run_conf(self) -> None:
        """Point /run/slurm/conf at this cluster's config folder, so `srun` in jobs finds it."""
        if SYSTEM_CONF.exists():
            raise ClusterError(f"{SYSTEM_CONF} exists: jobs' srun would use that cluster, not this test's")
        if RUN_CONF_LINK.is_symlink():
            target = RUN_CONF_LINK.readlink()
            if target.parent.name.startswith("crossglue-slurm-") and not target.exists():
                RUN_CONF_LINK.unlink()  # left by an earlier test run that was killed
        if RUN_CONF_LINK.exists() or RUN_CONF_LINK.is_symlink():
            raise ClusterError(f"{RUN_CONF_LINK} exists: another SLURM (configless) node runs here")
        RUN_CONF_LINK.parent.mkdir(parents=True, exist_ok=True)
        RUN_CONF_LINK.symlink_to(self.root / "etc")
        self.linked_run_conf = True

    def _unlink_run_conf(self) -> None:
        if self.linked_run_conf and RUN_CONF_LINK.is_symlink() and RUN_CONF_LINK.readlink() == self.root / "etc":
            RUN_CONF_LINK.unlink()
            with contextlib.suppress(OSError):
                RUN_CONF_LINK.parent.rmdir()  # only when empty
        self.linked_run_conf = False

    def start(self) -> None:
        """Start every daemon and wait until the node takes jobs; raises ClusterError."""
        t0 = time.monotonic()
        self.write_configs()
        self._link_run_conf()
        self._start_munge()
        self._start_mariadb()
        self._spawn("slurmdbd", ["slurmdbd", "-D"])  # finds slurmdbd.conf beside SLURM_CONF
        self._wait("slurmdbd", lambda: _port_open(self.ports["slurmdbd"]), 60, "slurmdbd")
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self._ok("scontrol", "ping"), 60, "slurmctld")
        self._spawn("slurmd", ["slurmd", "-D", "-N", NODE_NAME, "-f", str(self.conf)])
        self._wait(
            "node idle", lambda: self.run("sinfo", "-h", "-N", "-o", "%T").stdout.strip() == "idle", 60, "slurmd"
        )
        self._wait(
            "cluster registered in slurmdbd",
            lambda: CLUSTER_NAME
            in self.run("sacctmgr", "-n", "-P", "show", "cluster", "format=cluster").stdout.split(),
            60,
            "slurmdbd",
        )
        self.timings["total start"] = round(time.monotonic() - t0, 2)

    def stop(self, timeout: float = 20) -> None:
        """Cancel jobs left in the queue, then SIGTERM each started daemon by PID, newest
        first; SIGKILL any that outlives ``timeout``."""
        # A job's slurmstepd outlives slurmd, so jobs still running (say a snakemake run
        # that timed out) are cancelled first and waited for, within a bound.
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                jobs = self.run("squeue", "-h", "-o", "%i", timeout=10).stdout.split()
                if jobs:
                    self.run("scancel", *jobs, timeout=10, check=False)
                    deadline = time.monotonic() + timeout
                    while (
                        time.monotonic() < deadline
                        and self.run("squeue", "-h", "-t", "R,CG", "-o", "%i", timeout=10).stdout.strip()
                    ):
                        time.sleep(0.5)
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self._unlink_run_conf()

    # ------------------------------------------------------------------ diagnostics
    def log_tails(self, lines: int = 40) -> str:
        out = []
        for path in sorted([*(self.root / "log").glob("*"), *(self.root / "db").glob("*.log")]):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"==> {path} <==\n" + "\n".join(text))
        return "\n".join(out)

    def job_records(self) -> list[dict[str, str]]:
        """Every job (not step) SLURM's accounting recorded: JobID, JobName, State, ExitCode."""
        fields = ["JobID", "JobName", "State", "ExitCode"]
        out = self.run("sacct", "-X", "-n", "-P", "-a", "--starttime=2000-01-01", f"--format={','.join(fields)}").stdout
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]


def _raise_on_sigterm(signum, frame):
    raise SystemExit(f"terminated by signal {signum}")


@contextlib.contextmanager
def running_cluster(cpus: int | None = None) -> Iterator[SlurmCluster]:
    """A started cluster, stopped (by PID) on exit whatever happened; the temp folder is
    removed when all went well and kept, with its logs printed, when something failed.

    SIGTERM (an outer `timeout`, a cancelled CI job) is turned into SystemExit while the
    cluster runs, so the daemons are stopped then too; only SIGKILL leaves them behind.
    """
    root = Path(tempfile.mkdtemp(prefix="crossglue-slurm-"))
    cluster = SlurmCluster(root, cpus=cpus)
    failed = True
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        cluster.start()
        yield cluster
        failed = False
    finally:
        try:
            cluster.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
        if failed:
            print(f"SLURM test cluster kept at {root}\n{cluster.log_tails()}")
        else:
            shutil.rmtree(root, ignore_errors=True)
