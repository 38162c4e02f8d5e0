#!/usr/bin/env bash
# A real single-node Slurm cluster on loopback, for developing and testing the Slurm executor.
#
#   scripts/slurm-cluster.sh up       install (Debian, as root) if missing, configure, start
#   scripts/slurm-cluster.sh down     stop the daemons this script started (by pid)
#   scripts/slurm-cluster.sh status   say whether the daemons are up
#
# `up` and `status` print the line to evaluate in the client's shell:
#   eval "$(scripts/slurm-cluster.sh up)"    # exports SLURM_CONF
#
# Everything lives in one state directory (AMAGO2_SLURM_DIR, default /tmp/amago2-slurm):
# configuration, munge key and socket, controller state, spool, logs, pid files, the
# jobcomp file and two fake GPU devices. No accounting daemon: `sacct` is not available,
# the jobcomp file is the durable record of finished jobs.
set -euo pipefail

STATE_DIR="${AMAGO2_SLURM_DIR:-/tmp/amago2-slurm}"
PARTITION="debug"
# Finished jobs leave squeue/scontrol after this many seconds; short so tests see the
# jobcomp fallback, long enough for a poll to catch the final state normally.
MIN_JOB_AGE=10

log() { echo "slurm-cluster: $*" >&2; }

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    log "Slurm is not installed and installing it needs root (apt-get install slurmctld slurmd slurm-client munge)"
    exit 3
  fi
  if ! command -v apt-get >/dev/null; then
    log "Slurm is not installed and there is no apt-get to install it with"
    exit 3
  fi
  log "installing slurmctld slurmd slurm-client munge"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >&2
}

# The node line Slurm itself measures (CPUs, sockets, cores, threads, memory), renamed to
# the loopback node; declaring more than the hardware has would drain the node.
node_hardware() {
  slurmd -C | head -n1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=' | tr '\n' ' '
}

write_config() {
  mkdir -p "$STATE_DIR"/{ctld,spool,log,dev,munge}
  chmod 700 "$STATE_DIR/munge"
  # Fake GPUs: gres/gpu only needs device files to exist; jobs see their indices in
  # CUDA_VISIBLE_DEVICES. 195 is the NVIDIA major number.
  for i in 0 1; do
    [[ -e "$STATE_DIR/dev/nvidia$i" ]] || mknod "$STATE_DIR/dev/nvidia$i" c 195 "$i"
  done
  [[ -f "$STATE_DIR/munge/munge.key" ]] || mungekey --create --keyfile="$STATE_DIR/munge/munge.key"
  chmod 600 "$STATE_DIR/munge/munge.key"

  cat >"$STATE_DIR/slurm.conf" <<EOF
ClusterName=amago2-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE_DIR/munge/munge.socket
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job that asks for no memory gets the whole node, one job at a time.
DefMemPerCPU=512
GresTypes=gpu
MinJobAge=$MIN_JOB_AGE
# Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
KillWait=5
ReturnToService=2
SchedulerType=sched/backfill
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 $(node_hardware) Gres=gpu:2 State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$STATE_DIR/gres.conf" <<EOF
NodeName=localhost Name=gpu File=$STATE_DIR/dev/nvidia[0-1]
EOF
}

wait_for_node() {
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if SLURM_CONF="$STATE_DIR/slurm.conf" sinfo -h -n localhost -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; then
      return 0
    fi
    sleep 0.2
  done
  log "the node did not become idle within 30 s; see $STATE_DIR/log"
  SLURM_CONF="$STATE_DIR/slurm.conf" sinfo -N -l >&2 || true
  return 1
}

cmd_up() {
  install_packages
  if pid_alive "$STATE_DIR/slurmctld.pid" && pid_alive "$STATE_DIR/slurmd.pid"; then
    log "already up"
    echo "export SLURM_CONF=$STATE_DIR/slurm.conf"
    return
  fi
  cmd_down 2>/dev/null || true
  write_config
  export SLURM_CONF="$STATE_DIR/slurm.conf"
  munged --force --key-file="$STATE_DIR/munge/munge.key" --socket="$STATE_DIR/munge/munge.socket" \
    --pid-file="$STATE_DIR/munged.pid" --log-file="$STATE_DIR/log/munged.log" \
    --seed-file="$STATE_DIR/munge/munged.seed"
  # -c: start with a clean controller state (no jobs from a previous cluster).
  slurmctld -c
  slurmd -N localhost
  wait_for_node
  log "up; state in $STATE_DIR"
  echo "export SLURM_CONF=$STATE_DIR/slurm.conf"
}

stop_by_pidfile() {
  local name=$1 pidfile=$2
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid
  pid=$(cat "$pidfile")
  kill "$pid"
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name ($pid) ignored SIGTERM; killing it"
    kill -9 "$pid"
  fi
  rm -f "$pidfile"
}

cmd_down() {
  # slurmd first: it kills its running jobs' steps as it goes.
  stop_by_pidfile slurmd "$STATE_DIR/slurmd.pid"
  stop_by_pidfile slurmctld "$STATE_DIR/slurmctld.pid"
  stop_by_pidfile munged "$STATE_DIR/munged.pid"
  log "down"
}

cmd_status() {
  local all_up=0
  for daemon in munged slurmctld slurmd; do
    if pid_alive "$STATE_DIR/$daemon.pid"; then
      log "$daemon running (pid $(cat "$STATE_DIR/$daemon.pid"))"
    else
      log "$daemon not running"
      all_up=1
    fi
  done
  if ((all_up == 0)); then echo "export SLURM_CONF=$STATE_DIR/slurm.conf"; fi
  return $all_up
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: scripts/slurm-cluster.sh up|down|status (state in \$AMAGO2_SLURM_DIR, default /tmp/amago2-slurm)" >&2
    exit 2
    ;;
esac
