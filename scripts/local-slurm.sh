#!/usr/bin/env bash
# local-slurm.sh - a real single-node SLURM cluster on this machine.
#
#   scripts/local-slurm.sh start    install (if missing), configure and start
#                                   munged, slurmctld and slurmd; wait until
#                                   the node is idle
#   scripts/local-slurm.sh stop     stop slurmd, slurmctld and munged
#   scripts/local-slurm.sh status   print sinfo (exit 1 if not running)
#
# Meant for ONE machine: integration tests, CI, and trying cluster runs out.
# It is not a production setup: SlurmUser=root, no accounting, no cgroups
# (nothing limits a job's memory or CPUs), one partition `debug` holding
# this host. Needs root on Debian 12 (slurm-wlm 22.05 from Debian's own
# repository); it starts the daemons directly, without systemd.
#
# `start` is idempotent: when everything is up it just reports so, and a
# node left `down` or `drain` is resumed. It writes /etc/slurm/slurm.conf
# but never replaces one it did not write. Logs: /var/log/slurm/.
#
# A cluster this script did not set up (a slurm.conf without its marker
# line): `start` uses it as it is when it works - the controller answers
# `scontrol ping` with UP and sinfo shows an `idle` or `mix` node in a
# partition that is `up` - and touches neither its configuration nor its
# daemons (munged included); it fails, saying what it found, when the
# cluster gives no usable node within LOCAL_SLURM_TIMEOUT. `status` reports
# on that cluster; `stop` leaves it running. None of them needs root then.
#
# Environment: LOCAL_SLURM_TIMEOUT  seconds to wait for the node (default 60)
#              LOCAL_SLURM_CONF     the slurm.conf to use (default
#                                   /etc/slurm/slurm.conf); exported to the
#                                   SLURM commands and daemons as SLURM_CONF

set -euo pipefail

SLURM_CONF=${LOCAL_SLURM_CONF:-/etc/slurm/slurm.conf}
readonly SLURM_CONF
export SLURM_CONF    # the SLURM commands and daemons read this file
CONF_DIR=$(dirname "$SLURM_CONF")
readonly CONF_DIR
readonly CONF_MARKER="# Written by scripts/local-slurm.sh"
readonly LOG_DIR=/var/log/slurm
readonly RUN_DIR=/run/slurm
readonly STATE_DIR=/var/lib/slurm/slurmctld
readonly SPOOL_DIR=/var/lib/slurm/slurmd
readonly CTLD_PID=$RUN_DIR/slurmctld.pid
readonly SLURMD_PID=$RUN_DIR/slurmd.pid
readonly MUNGE_KEY=/etc/munge/munge.key
readonly MUNGE_RUN=/run/munge
readonly MUNGE_PID=$MUNGE_RUN/munged.pid
readonly MUNGE_LOG=/var/log/munge/munged.log
readonly PARTITION=debug
readonly TIMEOUT=${LOCAL_SLURM_TIMEOUT:-60}

NODE=$(hostname -s)
readonly NODE

log() { echo "local-slurm: $*"; }
die() { echo "local-slurm: error: $*" >&2; exit 1; }

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root"
}

# --- processes --------------------------------------------------------------

# True if the pidfile names a live (not zombie) process whose command is $2.
pid_alive() {
    local pidfile=$1 name=$2 pid stat
    [[ -r $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ ${stat##*) } != Z* ]]
}

# Send TERM to the pidfile's process, wait up to 15 s, then KILL.
stop_by_pidfile() {
    local pidfile=$1 name=$2 pid i
    pid_alive "$pidfile" "$name" || { rm -f "$pidfile"; return 0; }
    pid=$(<"$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        pid_alive "$pidfile" "$name" || { rm -f "$pidfile"; return 0; }
        sleep 0.5
    done
    log "$name (pid $pid) ignored SIGTERM, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# --- installation -----------------------------------------------------------

packages_installed() {
    command -v slurmctld && command -v slurmd && command -v sinfo &&
        command -v munged && command -v mungekey
} >/dev/null 2>&1

install_packages() {
    packages_installed && return 0
    local pkgs=(slurm-wlm munge)
    local apt=(apt-get install -y -q --no-install-recommends "${pkgs[@]}")
    log "installing ${pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when apt does not know the packages, or
    # when the install fails (stale lists pointing at removed versions).
    if ! apt-cache show slurm-wlm >/dev/null 2>&1; then
        apt-get update -q
    fi
    if ! "${apt[@]}"; then
        log "install failed, updating package lists and retrying"
        apt-get update -q
        "${apt[@]}"
    fi
    packages_installed || die "slurm-wlm/munge installed but their commands are missing"
}

# --- hostname ---------------------------------------------------------------

# The address this host's short name resolves to; adds `127.0.0.1 NAME` to
# /etc/hosts first when it does not resolve at all.
node_address() {
    local addr
    addr=$(getent ahostsv4 "$NODE" | awk 'NR == 1 { print $1 }') || true
    if [[ -z $addr ]]; then
        log "hostname '$NODE' does not resolve; adding it to /etc/hosts as 127.0.0.1" >&2
        [[ ! -s /etc/hosts || -z $(tail -c 1 /etc/hosts) ]] || echo >>/etc/hosts
        echo "127.0.0.1 $NODE" >>/etc/hosts
        addr=127.0.0.1
    fi
    echo "$addr"
}

# --- munge ------------------------------------------------------------------

munge_works() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

setup_munge() {
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating munge key $MUNGE_KEY"
        mungekey --create --keyfile="$MUNGE_KEY"
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
}

start_munge() {
    if munge_works; then
        return 0
    fi
    stop_by_pidfile "$MUNGE_PID" munged   # a stale one that does not answer
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" --log-file="$MUNGE_LOG" ||
        fail "munged did not start"
    local i
    for ((i = 0; i < 20; i++)); do
        munge_works && return 0
        sleep 0.5
    done
    fail "munged started but munge/unmunge does not work"
}

# --- slurm.conf -------------------------------------------------------------

slurm_version() {
    slurmd -V | awk '{ print $2 }'
}

# The node's hardware line: `NodeName=... CPUs=... RealMemory=...`.
# Uses slurmd -C's topology (so slurmd never reports less than configured)
# when it has one thread per core and agrees with nproc; otherwise gives
# only CPUs, so that each CPU can go to a different 1-CPU job (with
# CR_CPU, a configured ThreadsPerCore>1 puts at most one job on a core).
node_line() {
    local addr=$1 hw cpus nproc_cpus tpc mem_mib headroom real_mem topo
    hw=$(slurmd -C | head -n 1)
    cpus=$(sed -n 's/.*\bCPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    tpc=$(sed -n 's/.*\bThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
    nproc_cpus=$(nproc)
    mem_mib=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
    headroom=$((mem_mib / 20 > 512 ? mem_mib / 20 : 512))   # 5%, at least 512 MiB
    real_mem=$((mem_mib - headroom))
    ((real_mem > 0)) || real_mem=$mem_mib
    if [[ $cpus == "$nproc_cpus" && $tpc == 1 ]]; then
        topo=$(grep -o '\bBoards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$hw" || true)
    fi
    echo "NodeName=$NODE NodeAddr=$addr CPUs=$nproc_cpus ${topo:+$topo }RealMemory=$real_mem State=UNKNOWN"
}

render_conf() {
    local addr=$1
    cat <<EOF
$CONF_MARKER for a single-node cluster
# (tests, trying things out; not production). Slurm $(slurm_version).
ClusterName=local
SlurmctldHost=$NODE($addr)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
# No cgroups: track processes through /proc, no task binding or limits.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# CPUs are the consumable resource: one 1-CPU job per CPU, memory untracked.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# A node that comes back with a valid configuration is returned to service.
ReturnToService=2
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$(node_line "$addr")
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

# Writes slurm.conf; returns 0 if it changed, 1 if it was already current.
write_conf() {
    local addr=$1 new
    new=$(render_conf "$addr")
    if [[ -e $SLURM_CONF ]] && ! grep -qF "$CONF_MARKER" "$SLURM_CONF"; then
        die "$SLURM_CONF exists and was not written by this script; move it away first"
    fi
    if [[ -e $SLURM_CONF ]] && [[ $(<"$SLURM_CONF") == "$new" ]]; then
        return 1
    fi
    install -d -m 0755 "$CONF_DIR"
    printf '%s\n' "$new" >"$SLURM_CONF.tmp"
    chmod 0644 "$SLURM_CONF.tmp"
    mv "$SLURM_CONF.tmp" "$SLURM_CONF"
    log "wrote $SLURM_CONF"
}

make_dirs() {
    install -d -m 0755 "$LOG_DIR" "$RUN_DIR" "$SPOOL_DIR"
    install -d -m 0700 "$STATE_DIR"
}

# True when slurm.conf exists and this script did not write it.
conf_is_foreign() {
    [[ -e $SLURM_CONF ]] && ! grep -qF "$CONF_MARKER" "$SLURM_CONF" 2>/dev/null
}

# One line: what `scontrol ping` says about the controller (UP, DOWN, or
# why it did not answer).
foreign_ping() {
    local out
    out=$(timeout 20 scontrol ping 2>&1) || true
    out=$({ grep -v '^\**$\|RESTORE SLURMCTLD' <<<"$out" || true; } | tr -s '\n' ' ')
    echo "${out% }"
}

# The partitions that are `up` with an `idle` or `mix` node, as
# `PARTITION:STATE:NODES ...`; empty if none (or sinfo does not answer).
foreign_usable() {
    { timeout 30 sinfo -h -o '%P %a %t %D' 2>/dev/null || true; } |
        awk '$2 == "up" && ($3 == "idle" || $3 == "mix") { printf "%s%s:%s:%s", sep, $1, $3, $4; sep = " " }'
}

# sinfo's view of the cluster on one line (or its error).
foreign_sinfo() {
    local out
    out=$(timeout 30 sinfo -h -o '%P %a %t %D' 2>&1) || true
    out=$(tr -s '\n' ';' <<<"${out:-no partitions}")
    echo "${out%;}"
}

# `start` with a slurm.conf this script did not write: use its cluster if it
# works, without touching its configuration or daemons; fail otherwise.
use_foreign_cluster() {
    local deadline=$((SECONDS + TIMEOUT)) ping usable
    local found="$SLURM_CONF exists and was not written by this script"
    command -v sinfo >/dev/null 2>&1 && command -v scontrol >/dev/null 2>&1 ||
        die "$found, and sinfo/scontrol are not installed; install the SLURM client commands, or move $SLURM_CONF away to let this script set up its own cluster"
    while :; do
        ping=$(foreign_ping)
        if [[ $ping == *" is UP"* ]]; then
            usable=$(foreign_usable)
            if [[ -n $usable ]]; then
                log "$found: using its cluster as it is (controller: $ping; usable partitions (name:state:nodes): $usable); its configuration and daemons are left alone"
                sinfo
                return 0
            fi
        fi
        ((SECONDS < deadline)) || break
        sleep 1
    done
    die "$found, and its cluster has no usable node after ${TIMEOUT}s (scontrol ping: ${ping:-no answer}; sinfo: $(foreign_sinfo)); fix that cluster, or move $SLURM_CONF away to let this script set up its own"
}

# --- slurm daemons ----------------------------------------------------------

ctld_up() { pid_alive "$CTLD_PID" slurmctld && [[ $(scontrol ping 2>/dev/null) == *UP* ]]; }
slurmd_up() { pid_alive "$SLURMD_PID" slurmd; }

# Starts one slurm daemon (they fork into the background and write their
# pidfile) unless it runs already; fails if it logs a fatal error or is
# not up within 10 s.
start_daemon() {
    local name=$1 pidfile=$2 logfile=$LOG_DIR/$1.log mark i
    pid_alive "$pidfile" "$name" && return 0
    log "starting $name"
    mark=$(stat -c %s "$logfile" 2>/dev/null || echo 0)
    "$name" || fail "$name did not start: $(last_error "$name")"
    for ((i = 0; i < 20; i++)); do
        pid_alive "$pidfile" "$name" && return 0
        [[ $(tail -c +$((mark + 1)) "$logfile" 2>/dev/null) == *fatal:* ]] && break
        sleep 0.5
    done
    fail "$name exited right after starting: $(last_error "$name")"
}

start_slurm() {
    start_daemon slurmctld "$CTLD_PID"
    start_daemon slurmd "$SLURMD_PID"
}

stop_slurm() {
    if ctld_up; then
        local running
        running=$(squeue -h -t RUNNING 2>/dev/null | wc -l)
        if ((running > 0)); then
            log "note: $running running job(s) keep running; the next start picks them up (scancel them first to end them)"
        fi
        scontrol shutdown >/dev/null 2>&1 || true   # stops slurmctld and slurmd
    fi
    stop_by_pidfile "$SLURMD_PID" slurmd
    stop_by_pidfile "$CTLD_PID" slurmctld
}

# The node's state as sinfo prints it: idle, mixed, down*, drained, ...
node_state() {
    { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null || true; } | head -n 1
}

# Waits until the node can run jobs; resumes it once if it is down/drained.
wait_for_node() {
    local deadline=$((SECONDS + TIMEOUT)) state resumed=0
    while ((SECONDS < deadline)); do
        pid_alive "$CTLD_PID" slurmctld || fail "slurmctld exited: $(last_error slurmctld)"
        pid_alive "$SLURMD_PID" slurmd || fail "slurmd exited: $(last_error slurmd)"
        state=$(node_state)
        case $state in
            idle | mixed | allocated | completing | planned) return 0 ;;
            down | drain* | fail*)
                if ((resumed == 0)); then
                    log "node $NODE is $state ($(node_reason)); resuming it"
                    scontrol update nodename="$NODE" state=resume || true
                    resumed=1
                fi ;;
        esac
        sleep 1
    done
    fail "node $NODE not ready after ${TIMEOUT}s (state: ${state:-none}; reason: $(node_reason))"
}

node_reason() {
    { scontrol show node "$NODE" 2>/dev/null || true; } | sed -n 's/^ *Reason=//p' | head -n 1
}

# --- reporting --------------------------------------------------------------

show_logs() {
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" "$MUNGE_LOG"; do
        [[ -r $f ]] || continue
        echo "----- tail of $f -----" >&2
        tail -n 20 "$f" >&2
    done
}

# The last fatal or error line of a slurm daemon's log (slurmctld, slurmd).
last_error() {
    local f=$LOG_DIR/$1.log
    [[ -r $f ]] || { echo "no log $f"; return 0; }
    grep -E 'fatal:|error:' "$f" | grep -v 'pmix' | tail -n 1 || echo "see $f"
}

fail() {
    show_logs
    die "$*"
}

# --- commands ---------------------------------------------------------------

cmd_start() {
    if conf_is_foreign; then
        use_foreign_cluster
        return 0
    fi
    require_root
    install_packages
    local addr
    addr=$(node_address)
    setup_munge
    start_munge
    make_dirs
    if write_conf "$addr" && { ctld_up || slurmd_up; }; then
        log "configuration changed, restarting slurmctld and slurmd"
        stop_slurm
    fi
    if ctld_up && slurmd_up && [[ $(node_state) =~ ^(idle|mixed|allocated|completing|planned)$ ]]; then
        log "already running (slurm $(slurm_version), node $NODE)"
        sinfo
        return 0
    fi
    start_slurm
    wait_for_node
    log "running (slurm $(slurm_version), node $NODE, partition $PARTITION)"
    sinfo
}

cmd_stop() {
    if conf_is_foreign; then
        log "$SLURM_CONF was not written by this script: leaving its cluster's daemons running (stop them with the tools that started them)"
        return 0
    fi
    require_root
    if command -v scontrol >/dev/null 2>&1; then
        stop_slurm
    fi
    stop_by_pidfile "$MUNGE_PID" munged
    log "stopped"
}

cmd_status() {
    if conf_is_foreign; then
        local ping
        if command -v sinfo >/dev/null 2>&1 && ping=$(foreign_ping) && [[ $ping == *" is UP"* ]]; then
            log "cluster of $SLURM_CONF (not written by this script): $ping"
            sinfo
        else
            log "not running: the cluster of $SLURM_CONF (not written by this script) does not answer (scontrol ping: ${ping:-not installed})"
            return 1
        fi
        return 0
    fi
    if command -v sinfo >/dev/null 2>&1 && ctld_up; then
        sinfo
    else
        log "not running"
        return 1
    fi
}

main() {
    case ${1:-} in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
    esac
}

main "$@"
