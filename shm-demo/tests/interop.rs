//! Interop: Python's standard library reads the segment by the documented layout (the
//! module docs of `src/layout.rs`) and sees what `shm-demo put` wrote.

mod support;

use common::testkit::{self, Sandbox};
use support::{Name, Server, ok, run};

/// Python 3.8+ stdlib only. The seqlock read is done as the layout says: sequence even and
/// unchanged around the copy.
const READER: &str = r#"
import struct, sys
from multiprocessing import shared_memory, resource_tracker

name, key = sys.argv[1].lstrip("/"), sys.argv[2].encode()
shm = shared_memory.SharedMemory(name=name)
# Before Python 3.13 an attached (not created) segment is still registered with the
# resource tracker, which would unlink it when this script exits: unregister it.
resource_tracker.unregister(shm._name, "shared_memory")
buf = shm.buf
magic = bytes(buf[0:8])
version, header_size, total = struct.unpack_from("<IIQ", buf, 8)
slots, key_max, value_max, record_size = struct.unpack_from("<IIII", buf, 24)
used, = struct.unpack_from("<I", buf, 72)
assert magic == b"SHMKVDB\0", magic
assert total <= len(buf), (total, len(buf))

def fnv1a(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h

def key_hash(b):
    m, M = 0xFFFFFFFFFFFFFFFF, 0xff51afd7ed558ccd
    h = 0x9e3779b97f4a7c15 ^ len(b)
    for i in range(0, len(b), 8):
        w = int.from_bytes(b[i:i + 8].ljust(8, b"\0"), "little")
        h = ((h ^ w) * M) & m
        h ^= h >> 32
    h ^= h >> 33
    h = (h * M) & m
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & m
    return h ^ (h >> 33)

def probe(h):
    value_off = 32 + (key_max + 7) // 8 * 8
    home = (h * slots) >> 64
    for i in range(slots):
        rec = header_size + ((home + i) % slots) * record_size
        while True:
            s1, = struct.unpack_from("<Q", buf, rec)
            state, = struct.unpack_from("<I", buf, rec + 12)
            rhash, klen, vlen = struct.unpack_from("<QII", buf, rec + 16)
            k = bytes(buf[rec + 32 : rec + 32 + min(klen, key_max)])
            v = bytes(buf[rec + value_off : rec + value_off + min(vlen, value_max)])
            s2, = struct.unpack_from("<Q", buf, rec)
            if s1 == s2 and s1 % 2 == 0:
                break
        if state == 0:
            return None
        if state == 1 and rhash == h and k == key:
            return v
    return None

# A miss counts only if no delete moved a record meanwhile (the moves count at 56).
while True:
    m1, = struct.unpack_from("<Q", buf, 56)
    found = probe(key_hash(key))
    m2, = struct.unpack_from("<Q", buf, 56)
    if found is not None or m1 == m2:
        break
print(f"version={version} slots={slots} key_max={key_max} value_max={value_max} used={used}")
sys.stdout.buffer.write(b"value=" + (found if found is not None else b"<missing>") + b"\n")
del buf
shm.close()
"#;

#[test]
fn python_shared_memory_reads_what_shm_demo_put_wrote() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &["--slots", "50", "--value-max", "300"]);
    ok(
        &sb,
        &name,
        &["put", "lang", "written by shm-demo, read by Python"],
    );
    ok(&sb, &name, &["put", "other", "x"]);
    let out = testkit::run(
        std::process::Command::new("python3")
            .args(["-c", READER, &name.name, "lang"])
            .current_dir(sb.path()),
        b"",
    );
    let stdout = testkit::stdout(&out);
    assert!(out.status.success(), "{stdout}{}", testkit::stderr(&out));
    assert_eq!(
        stdout,
        "version=2 slots=50 key_max=64 value_max=300 used=2\n\
         value=written by shm-demo, read by Python\n"
    );
    // Python left the segment in place (no resource-tracker unlink) and intact.
    assert_eq!(
        ok(&sb, &name, &["get", "lang"]),
        "written by shm-demo, read by Python"
    );
    let out = run(&sb, &name, &["stats"], b"");
    assert!(out.status.success());
    server.stop();
}
