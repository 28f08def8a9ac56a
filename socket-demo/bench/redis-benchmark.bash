# Shell functions shared by socket-demo's benchmarks against redis-server (redis.sh, hosts.sh),
# which source this file. (Not named *.sh: `make bench` runs every bench/*.sh.)

# Stop, naming the script $1, unless redis-server, redis-benchmark and redis-cli are installed
# and the socket-demo binary $2 has been built.
need_redis_and() {
    local tool
    for tool in redis-server redis-benchmark redis-cli; do
        if ! command -v "$tool" >/dev/null; then
            echo "$1: $tool not found; install Debian's redis-server and redis-tools" >&2
            exit 1
        fi
    done
    if [[ ! -x $2 ]]; then
        echo "$1: $2 not found; run cargo build --release -p socket-demo first" >&2
        exit 1
    fi
}

# redis-benchmark's --csv output on stdin ("PING_INLINE","118343.20",...) as "NAME RPS" lines;
# spaces in a name, as in "MSET (10 keys)", become underscores.
rps_lines() {
    awk -F'"' 'NR > 1 && $2 != "" { name = $2; gsub(/ /, "_", name); print name, $4 }'
}

# CPU time (user + system, in clock ticks) process $1 has used so far: a second measure that
# the load on the machine disturbs less than requests/s, since on 2 CPUs redis-benchmark
# itself is often the bottleneck. ($1 must not hold spaces in its command name: fields are
# counted from the start of /proc/PID/stat.)
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# The scripts' EXIT trap: stop the servers they started (pids in ours_pid and redis_pid, empty
# once stopped) and remove their directory $tmp.
cleanup() {
    [[ -n $ours_pid ]] && kill -TERM "$ours_pid" 2>/dev/null && wait "$ours_pid" 2>/dev/null
    [[ -n $redis_pid ]] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$tmp"
}

# On a 2-CPU machine where the scheduler puts each process decides the figures more than the
# servers do, so (where taskset exists, unless PIN=0) both servers run on the last CPU and
# redis-benchmark on the first: the same placement for both, and no migrations mid-run. Sets
# the command prefixes server_cpu and client_cpu (empty when not pinning).
pin_apart() {
    server_cpu=() client_cpu=()
    if [[ ${PIN:-1} == 1 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
        server_cpu=(taskset -c "$(($(nproc) - 1))")
        client_cpu=(taskset -c 0)
    fi
}
