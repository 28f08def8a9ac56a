#!/usr/bin/env bash
# Remove this project's leftover named objects and say what was removed.
#
# Leftovers are what a demo killed with -9 could not remove: FIFOs, socket files and pid files
# in the runtime dir, the logs of `fifo-demo demo` runs that died before cleaning up, POSIX
# objects named /ipc-demo-* (in /dev/shm and /dev/mqueue, named semaphores being
# /dev/shm/sem.ipc-demo-*; message queues only where /dev/mqueue is mounted, else it says
# SKIPPED on stderr and still exits 0), and our SysV objects, created by us: keys 0x1dc0xxxx
# (mqueue-demo, sem-demo), and the keys that ftok(3) makes of the `<name>.sysv` key files in
# the runtime dir (shm-demo: ftok(file, 0x1d)), whose key files go with them. Only objects of
# ours are considered, and an object that a live process still uses is not a leftover: it is
# kept, and said so.
#
# The runtime dir is the one the demos use in this environment (common::names::runtime_dir):
# $XDG_RUNTIME_DIR/ipc-demo if XDG_RUNTIME_DIR is an absolute path, else /tmp/ipc-demo-$UID.
#
# Any file name works, whatever it holds (spaces, newlines, glob characters, a leading dash):
# names travel NUL-separated and are only ever quoted, and "in use" is decided by comparing
# device and inode numbers, never by matching a name as a pattern.
#
# Two knobs narrow the sweep, for tests that run beside other users of these objects:
#   CLEAN_IPC_POSIX_PREFIX  consider only POSIX names starting with this (default ipc-demo-;
#                           it must itself start with ipc-demo-)
#   CLEAN_IPC_SYSV_KEYS     consider only these SysV keys, space-separated hex (default: every
#                           0x1dc0xxxx key and every ftok key of a key file of ours); "none"
#                           skips SysV
set -uo pipefail

removed=0 kept=0
uid=$(id -u)

posix_prefix=${CLEAN_IPC_POSIX_PREFIX:-ipc-demo-}
if [[ $posix_prefix != ipc-demo-* || $posix_prefix == */* ]]; then
    echo "clean-ipc: CLEAN_IPC_POSIX_PREFIX must start with ipc-demo- and hold no /" >&2
    exit 2
fi
sysv_keys=${CLEAN_IPC_SYSV_KEYS:-}
for k in $sysv_keys; do
    if [[ $k != none && ! $k =~ ^0x1d[0-9a-f]{6}$ ]]; then
        echo "clean-ipc: CLEAN_IPC_SYSV_KEYS: $k is not a key of ours (0x1dxxxxxx)" >&2
        exit 2
    fi
done

# A name as it may be printed: printf %q shows a newline or an escape as $'...'.
shown() { printf '%q' "$1"; }
remove() { # what path
    if rm -f -- "$2"; then echo "removed $1 $(shown "$2")"; removed=$((removed + 1)); fi
}
keep() { # what path why
    echo "kept $1 $(shown "$2") ($3)"; kept=$((kept + 1))
}

# device:inode of PATH (following a symlink, as /proc/PID/fd links are followed).
file_id() { stat -L -c '%d:%i' -- "$1" 2>/dev/null; }
# True if some process has the file with id $1 open: a FIFO's readers and writers, an mqueue
# descriptor. As a user we see only our own processes, which are the ones that can use our
# 0600 objects.
# (The lister's own status is ignored: processes vanish and some fds are not ours to see, and
# under pipefail that, or the SIGPIPE when grep stops at its first match, would read as "no".)
open_by_someone() {
    { find -L /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -printf '%D:%i\n' 2>/dev/null; true; } |
        grep -qxF -- "$1"
}
# True if some process has the file with id $1 mapped (shared memory, a named semaphore).
# /proc/PID/maps names the device as hex major:minor, so the id is converted first.
mapped_by_someone() {
    local dev=${1%%:*} ino=${1##*:} major minor
    major=$(((dev >> 8) & 0xfff | ((dev >> 32) & ~0xfff)))
    minor=$(((dev & 0xff) | ((dev >> 12) & ~0xff)))
    { cat /proc/[0-9]*/maps 2>/dev/null; true; } |
        awk -v dev="$(printf '%02x:%02x' "$major" "$minor")" -v ino="$ino" \
            '$4 == dev && $5 == ino { found = 1; exit } END { exit !found }'
}
# True if a socket is bound to PATH (a live server; a stale file has no listener).
# First the kernel's table of bound names, compared as a literal string (a name can hold
# spaces and newlines, so the table is searched whole, not split into fields); then, for a
# server that bound another spelling of the same path, a connection attempt, which tells a
# live socket (accepted or queued) from a dead one (ECONNREFUSED) whatever its name.
socket_bound() {
    local table
    table=$(cat /proc/net/unix)$'\n'
    [[ $table == *" $1"$'\n'* ]] && return 0
    if command -v python3 >/dev/null; then
        python3 - "$1" <<'PY'
import errno, os, socket, sys
path = os.fsencode(sys.argv[1])
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
    s = socket.socket(socket.AF_UNIX, kind)
    s.setblocking(False)
    try:
        s.connect(path)
        sys.exit(0)  # bound: live
    except OSError as e:
        if e.errno == errno.EPROTOTYPE:
            continue  # a socket of another type: try the next
        # ECONNREFUSED: nobody is bound. Anything else (EAGAIN: a full backlog; a name too
        # long to connect to) is no proof of death: keep it.
        sys.exit(1 if e.errno == errno.ECONNREFUSED else 0)
sys.exit(0)
PY
    else
        return 0 # No way to probe: keep it rather than risk a live server's name.
    fi
}
# True if PATH is a pid file whose flock is still held by its daemon.
pidfile_locked() {
    ! flock -n -s -- "$1" true 2>/dev/null
}
# True if process $1 runs (0 means "none recorded"). A zombie has ended: it only waits for a
# parent that has not reaped it (in a container whose init does not reap, forever).
alive() {
    [[ $1 != 0 && -d /proc/$1 ]] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"
}

if [[ ${XDG_RUNTIME_DIR:-} == /* ]]; then
    dir=$XDG_RUNTIME_DIR/ipc-demo
else
    dir=/tmp/ipc-demo-$uid
fi
key_files=() ftok_keys=" "
if [ -d "$dir" ] && [ ! -L "$dir" ] && [ -O "$dir" ]; then
    # First the logs of `fifo-demo demo` runs that died without cleaning up (a second Ctrl-C
    # exits at once; SIGKILL): a run holds <tag>.pid locked while it lives, where <tag> is
    # fifo-demo-<pid>-<n>-<5 hex digits>, and writes its logs to <tag>.log and <tag>.log.1.
    # A run whose lock is free is gone, so its logs go (the lock itself goes below with the
    # other pid files, which is why this comes first). A lock still empty is being created
    # this instant. Logs kept on purpose (--keep, a failed check) have no lock beside them.
    while IFS= read -r -d '' f; do
        [[ ${f##*/} =~ ^fifo-demo-[0-9]+-[0-9]+-[0-9a-f]{5}\.pid$ ]] || continue
        [ -f "$f" ] && [ ! -L "$f" ] && [ -s "$f" ] || continue
        pidfile_locked "$f" && continue
        for log in "${f%.pid}.log" "${f%.pid}.log.1"; do
            if [ -f "$log" ] && [ ! -L "$log" ] && [ -O "$log" ]; then
                remove "log of a dead fifo-demo run" "$log"
            fi
        done
    done < <(find "$dir" -mindepth 1 -maxdepth 1 -user "$uid" -name 'fifo-demo-*.pid' -print0)

    while IFS= read -r -d '' f; do
        if [ -f "$f" ] && [ ! -L "$f" ] && [[ $f == *.sysv ]]; then
            # ftok(path, 0x1d), as glibc computes it: the project id in the top byte, then the
            # low byte of the file's device and the low 16 bits of its inode.
            read -r devno ino < <(stat -c '%d %i' -- "$f") || continue
            key_files+=("$f")
            ftok_keys+=$(printf '0x%08x ' $(((0x1d << 24) | ((devno & 0xff) << 16) | (ino & 0xffff))))
            continue
        fi
        if [ -p "$f" ]; then
            if open_by_someone "$(file_id "$f")"; then keep fifo "$f" "open"; else remove fifo "$f"; fi
        elif [ -S "$f" ]; then
            if socket_bound "$f"; then keep socket "$f" "a server is bound to it"; else remove socket "$f"; fi
        elif [ -f "$f" ] && [[ $f == *.pid ]]; then
            if pidfile_locked "$f"; then keep "pid file" "$f" "its daemon runs"; else remove "pid file" "$f"; fi
        fi
    done < <(find "$dir" -mindepth 1 -maxdepth 1 -user "$uid" -print0)
fi

# POSIX message queues can be listed only where an mqueue filesystem is mounted at
# /dev/mqueue, which a fresh container or a minimal system may not have (`mq_open` works
# without it). Often an empty directory stands there instead, which would list no queue as if
# there were none; so the filesystem type is checked (statfs: 0x19800202 is MQUEUE_MAGIC), and
# without it the queues are skipped, and said so.
mqueues=(/dev/mqueue/"$posix_prefix"*)
if [[ $(stat -f -c %t /dev/mqueue 2>/dev/null) != 19800202 ]]; then
    echo "clean-ipc: SKIPPED POSIX message queues: /dev/mqueue is not mounted," \
        "so they cannot be listed (as root: mount -t mqueue none /dev/mqueue)" >&2
    mqueues=()
fi

# POSIX objects: the glob's quoted part is literal, so the prefix cannot act as a pattern.
for f in /dev/shm/"$posix_prefix"* /dev/shm/sem."$posix_prefix"* "${mqueues[@]}"; do
    [ -e "$f" ] && [ ! -L "$f" ] && [ -O "$f" ] || continue
    id=$(file_id "$f") || continue
    if mapped_by_someone "$id" || open_by_someone "$id"; then
        keep "posix object" "$f" "in use"
    else
        remove "posix object" "$f"
    fi
done

# SysV, from /proc/sysvipc (numeric keys, owners and pids, whatever the user names): ours have
# keys 0x1dc0xxxx and were created by us. In use: an attached segment; any object whose
# creator or last user (by pid) still runs; a semaphore set never operated on (its creator may
# be about to), which therefore cannot be told from a leftover and is kept.
ours_key() { # decimal key
    local hex
    hex=$(printf '0x%08x' "$(($1 & 0xffffffff))")
    [[ $hex == 0x1dc0* || $ftok_keys == *" $hex "* ]] || return 1
    [[ -z $sysv_keys ]] && return 0
    [[ " $sysv_keys " == *" $hex "* ]]
}
sysv_remove() { # kind id key why-kept (empty: remove)
    local hex
    hex=$(printf '0x%08x' "$(($3 & 0xffffffff))")
    if [[ -n $4 ]]; then
        echo "kept sysv-$1 $hex (id $2, $4)"; kept=$((kept + 1))
    elif ipcrm "-$1" "$2" 2>/dev/null; then
        echo "removed sysv-$1 $hex (id $2)"; removed=$((removed + 1))
    fi
}
if [[ $sysv_keys != none ]]; then
    # shm: key shmid perms size cpid lpid nattch uid gid cuid ...
    while read -r key id _ _ cpid lpid nattch owner _ cuid _; do
        [[ $key =~ ^-?[0-9]+$ && $owner == "$uid" && $cuid == "$uid" ]] && ours_key "$key" || continue
        why=
        if ((nattch > 0)); then why="attached $nattch times"
        elif alive "$cpid" || alive "$lpid"; then why="its creator or last user runs"; fi
        sysv_remove m "$id" "$key" "$why"
    done < <(tail -n +2 /proc/sysvipc/shm 2>/dev/null)
    # msg: key msqid perms cbytes qnum lspid lrpid uid gid cuid ...
    while read -r key id _ _ _ lspid lrpid owner _ cuid _; do
        [[ $key =~ ^-?[0-9]+$ && $owner == "$uid" && $cuid == "$uid" ]] && ours_key "$key" || continue
        why=
        if alive "$lspid" || alive "$lrpid"; then why="its last sender or receiver runs"
        elif [[ $lspid == 0 && $lrpid == 0 ]]; then why="never used: its creator may be about to"; fi
        sysv_remove q "$id" "$key" "$why"
    done < <(tail -n +2 /proc/sysvipc/msg 2>/dev/null)
    # sem: key semid perms nsems uid gid cuid ...; the pid of each semaphore's last operation
    # (semctl GETPID) comes from `ipcs -s -i`.
    while read -r key id _ _ owner _ cuid _; do
        [[ $key =~ ^-?[0-9]+$ && $owner == "$uid" && $cuid == "$uid" ]] && ours_key "$key" || continue
        why= used=0
        while read -r pid; do
            [[ $pid != 0 ]] && used=1
            if alive "$pid"; then why="its last user runs"; break; fi
        done < <(ipcs -s -i "$id" 2>/dev/null | awk 'n { if (NF == 5) print $5 } /^semnum/ { n = 1 }')
        [[ -z $why && $used == 0 ]] && why="never operated on: its creator may be about to"
        sysv_remove s "$id" "$key" "$why"
    done < <(tail -n +2 /proc/sysvipc/sem 2>/dev/null)
fi

# Key files (`<name>.sysv`): what a --sysv server or supervisor keeps beside its pid file to
# name its System V objects. A key file is a leftover once its owner's pid file is not locked
# (swept above) and no shared memory segment has its key any more.
for f in "${key_files[@]}"; do
    # The owner's pid file is <name>.pid (mqueue-demo) or <name>.sysv.pid (shm-demo).
    if { [ -f "$f.pid" ] && pidfile_locked "$f.pid"; } ||
        { [ -f "${f%.sysv}.pid" ] && pidfile_locked "${f%.sysv}.pid"; }; then
        keep "key file" "$f" "its daemon runs"; continue
    fi
    read -r devno ino < <(stat -c '%d %i' -- "$f") || continue
    key=$(((0x1d << 24) | ((devno & 0xff) << 16) | (ino & 0xffff)))
    if [[ $sysv_keys != none ]] && awk -v k="$key" 'NR > 1 && $1 == k { found = 1 } END { exit !found }' /proc/sysvipc/shm 2>/dev/null; then
        keep "key file" "$f" "its segment is still there"
    else
        remove "key file" "$f"
    fi
done

echo "clean-ipc: removed $removed, kept $kept in use"
