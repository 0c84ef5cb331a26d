#!/usr/bin/env bash
# A real Slurm cluster of N nodes on this one machine, for tests: munged, slurmctld and one slurmd
# per node (Debian's slurm-wlm is built with MULTIPLE_SLURMD). Installs the packages if missing.
#
#   scripts/slurm_local.sh start [N]   start N nodes n1..nN (default 2); no-op if ours is running
#   scripts/slurm_local.sh stop        cancel every job, stop only the daemons `start` started
#   scripts/slurm_local.sh status      sinfo + squeue
#
# State, logs and pid files live in $SLURM_LOCAL_DIR (default /tmp/aloe-slurm). Needs root (or sudo).
# The gotchas behind each setting are in ../shared/reference/tools_slurm.md.
set -euo pipefail
DIR=${SLURM_LOCAL_DIR:-/tmp/aloe-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by aloe-repro scripts/slurm_local.sh"
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
say() { echo "[slurm-local] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || exec sudo -E "$0" "$@"
wait_for() {  # wait_for SECONDS CMD...: poll a condition, bounded
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}
ours_up() { [ -f "$DIR/pids" ] && timeout 5 sinfo -h >/dev/null 2>&1; }
private_dir() {  # $DIR is ours before anything is written or chowned in it: a real folder (no symlink), owned
  # by root, writable by nobody else; so no one can plant a file or link in it for a chown or write to follow
  [ -L "$DIR" ] && die "$DIR is a symbolic link: refused (SLURM_LOCAL_DIR= another folder)"
  mkdir -p "$DIR" || die "cannot create $DIR"
  [ "$(stat -c %u "$DIR")" = 0 ] || die "$DIR is not owned by root: refused (SLURM_LOCAL_DIR= another folder)"
  chmod 0711 "$DIR"  # the daemons' users may enter their own subfolder, not list or add to it
  local f
  for f in "$DIR"/* "$DIR"/.[!.]*; do
    [ -L "$f" ] && die "$f is a symbolic link: refused"
  done
  return 0
}

install() {
  local missing=0 b
  for b in munged slurmctld slurmd sbatch; do command -v "$b" >/dev/null || missing=1; done
  [ "$missing" = 0 ] && return
  say "installing slurmctld slurmd slurm-client munge from Debian"
  export DEBIAN_FRONTEND=noninteractive
  exec 9>/var/lock/aloe-apt.lock && flock 9  # one apt at a time: the report's test may be installing Chromium
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # no init system here: keep postinst from trying to start services
  local policy=0
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy=1; }
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
  [ "$policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  exec 9>&-  # released before any daemon starts (they would inherit it)
  return 0
}

start() {
  local nodes=${1:-2} t0 host cpus mem i
  t0=$(date +%s)
  if ours_up; then say "already running ($DIR)"; return; fi
  install
  host=$(hostname -s); cpus=$(nproc)
  mem=$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') * 9 / 10 / nodes ))
  local suser=slurm muser=munge
  id slurm >/dev/null 2>&1 || suser=root
  id munge >/dev/null 2>&1 || muser=root
  private_dir
  mkdir -p "$DIR/ctld" "$DIR/munge" /run/munge /etc/slurm
  chown "$suser:" "$DIR/ctld"             # slurmctld dies if it cannot write its own state
  chown "$muser:" "$DIR/munge" /run/munge; chmod 0700 "$DIR/munge"
  : > "$DIR/pids"
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
    chown "$muser:" /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  fi
  if ! (munge -n | unmunge) >/dev/null 2>&1; then
    rm -f /run/munge/munge.socket.2*
    runuser -u "$muser" -- munged --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
      --seed-file="$DIR/munge/munged.seed" || die "munged did not start"
    echo "munged $DIR/munge/munged.pid" >> "$DIR/pids"
    wait_for 10 bash -c 'munge -n | unmunge' || die "munge round trip failed"
  fi
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then mv "$CONF" "$CONF.aloe-saved"; fi
  cat > "$CONF" <<EOF
$MARK
ClusterName=aloe-local
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=$suser
StateSaveLocation=$DIR/ctld
SlurmctldPidFile=$DIR/ctld/slurmctld.pid
SlurmctldLogFile=$DIR/ctld/slurmctld.log
SlurmdSpoolDir=$DIR/slurmd-%n
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmdLogFile=$DIR/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/ctld/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=kill_invalid_depend
EnforcePartLimits=ALL
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
InactiveLimit=0
KillWait=5
MinJobAge=600
EOF
  for i in $(seq 1 "$nodes"); do
    echo "NodeName=n$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$((6817 + i)) CPUs=$cpus RealMemory=$mem State=UNKNOWN" >> "$CONF"
    # MASTER_ADDR is the first node's name: make n1..nN resolve (in place: /etc/hosts may be a bind mount)
    getent hosts "n$i" >/dev/null || echo "127.0.0.1 n$i # aloe-slurm" >> /etc/hosts
  done
  echo "PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >> "$CONF"
  slurmctld -c -i || die "slurmctld did not start: $(tail -5 "$DIR/ctld/slurmctld.log")"
  echo "slurmctld $DIR/ctld/slurmctld.pid" >> "$DIR/pids"
  wait_for 15 bash -c 'timeout 2 scontrol ping | grep -q UP' || die "slurmctld not answering"
  for i in $(seq 1 "$nodes"); do
    mkdir -p "$DIR/slurmd-n$i"
    slurmd -N "n$i" || die "slurmd n$i did not start: $(tail -5 "$DIR/slurmd-n$i.log")"
    echo "slurmd $DIR/slurmd-n$i.pid" >> "$DIR/pids"
  done
  wait_for 60 bash -c "[ \$(sinfo -h -N -o %T | grep -c '^idle') -ge $nodes ]" \
    || die "nodes not idle after 60 s: $(sinfo -h -N -o '%N %T' | tr '\n' ' ')"
  say "up in $(( $(date +%s) - t0 )) s: $nodes node(s) idle"
}

stop() {
  [ -f "$DIR/pids" ] || { say "nothing of ours is running"; return; }
  local jobs; jobs=$(timeout 5 squeue -h -o %A 2>/dev/null || true)
  [ -z "$jobs" ] || timeout 10 scancel $jobs || true
  wait_for 20 bash -c '[ -z "$(timeout 5 squeue -h)" ]' || say "jobs still listed; stopping anyway"
  local name pidfile pid pids=()
  while read -r name pidfile; do
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$name" ] && pids+=("$pid")  # not a reused pid
  done < "$DIR/pids"
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait_for 15 bash -c "! kill -0 ${pids[*]} 2>/dev/null" || kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  rm -f "$DIR/pids"
  if grep -q '# aloe-slurm$' /etc/hosts; then
    grep -v '# aloe-slurm$' /etc/hosts > "$DIR/hosts" || true; cat "$DIR/hosts" > /etc/hosts
  fi
  if grep -qF "$MARK" "$CONF" 2>/dev/null; then
    rm -f "$CONF"; [ -f "$CONF.aloe-saved" ] && mv "$CONF.aloe-saved" "$CONF"
  fi
  say "stopped ${#pids[@]} daemon(s)"
}

case "${1:-}" in
  start) start "${2:-2}" ;;
  stop) stop ;;
  status) sinfo; squeue ;;
  *) sed -n '2,10p' "$0"; [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] ;;
esac
