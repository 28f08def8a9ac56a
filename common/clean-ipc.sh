#!/usr/bin/env bash
# Remove this project's leftover named objects and say what was removed.
#
# Leftovers are what a demo killed with -9 could not remove: FIFOs, socket files and pid files
# in the runtime dir ($XDG_RUNTIME_DIR/ipc-demo or /tmp/ipc-demo-$UID), POSIX objects named
# /ipc-demo-* (in /dev/shm and /dev/mqueue, named semaphores being /dev/shm/sem.ipc-demo-*),
# and our SysV objects (keys 0x1dc0xxxx, created by us). An object that a live process still
# uses is not a leftover: it is kept, and said so.
set -uo pipefail

removed=0 kept=0
uid=$(id -u)

remove() { # what path
    if rm -f -- "$2"; then echo "removed $1 $2"; removed=$((removed + 1)); fi
}
keep() { # what path why
    echo "kept $1 $2 ($3)"; kept=$((kept + 1))
}
# True if some process has PATH open (a FIFO's readers and writers, an mqueue descriptor).
open_by_someone() {
    [ -n "$(find /proc/[0-9]*/fd -lname "$1" -print -quit 2>/dev/null)" ]
}
# True if a socket is bound to PATH (a live server; a stale file has no entry).
socket_bound() {
    awk -v p="$1" '$NF == p { found = 1 } END { exit !found }' /proc/net/unix
}
# True if PATH is a pid file whose flock is still held by its daemon.
pidfile_locked() {
    ! flock -n -s "$1" true 2>/dev/null
}

dirs=()
[ -n "${XDG_RUNTIME_DIR:-}" ] && dirs+=("$XDG_RUNTIME_DIR/ipc-demo")
dirs+=("/tmp/ipc-demo-$uid")
for dir in "${dirs[@]}"; do
    [ -d "$dir" ] && [ ! -L "$dir" ] && [ -O "$dir" ] || continue
    while IFS= read -r -d '' f; do
        if [ -p "$f" ]; then
            if open_by_someone "$f"; then keep fifo "$f" "open"; else remove fifo "$f"; fi
        elif [ -S "$f" ]; then
            if socket_bound "$f"; then keep socket "$f" "a server is bound to it"; else remove socket "$f"; fi
        elif [ -f "$f" ] && [[ $f == *.pid ]]; then
            if pidfile_locked "$f"; then keep "pid file" "$f" "its daemon runs"; else remove "pid file" "$f"; fi
        fi
    done < <(find "$dir" -mindepth 1 -maxdepth 1 -user "$uid" -print0)
done

for f in /dev/shm/ipc-demo-* /dev/shm/sem.ipc-demo-* /dev/mqueue/ipc-demo-*; do
    [ -e "$f" ] && [ -O "$f" ] || continue
    name=/${f##*/}
    if grep -qsF -- "$f" /proc/[0-9]*/maps || open_by_someone "$f" || open_by_someone "$name"; then
        keep "posix object" "$f" "in use"
    else
        remove "posix object" "$f"
    fi
done

# SysV: ipcs lists key, id, owner; ours have keys 0x1dc0xxxx and belong to us.
for kind in m q s; do
    while read -r key id owner _; do
        [[ $key == 0x1dc0* && $owner == "$(id -un)" ]] || continue
        if ipcrm "-$kind" "$id" 2>/dev/null; then
            echo "removed sysv-$kind $key (id $id)"; removed=$((removed + 1))
        fi
    done < <(ipcs "-$kind" 2>/dev/null | awk '$1 ~ /^0x/')
done

echo "clean-ipc: removed $removed, kept $kept in use"
