//! The floor every mechanism stands on, measured in the same run: a bare system call
//! (`getppid`, which glibc does not cache) and `memcpy` bandwidth. No IPC can hand over
//! faster than one system call each way, nor move data faster than a copy.

use std::fmt::Write;
use std::hint::black_box;
use std::time::Instant;

use crate::harness::{PageBuf, Spec, Test, nanos};
use crate::mech::MAX_MSG;

/// Calls per timed batch: one clock read per call would weigh as much as the call itself.
const BATCH: u64 = 100;

/// Run the floor test of `spec`, in this process; returns the result lines.
pub fn run(spec: &Spec) -> String {
    let mut out = String::new();
    match spec.test {
        Test::Syscall => {
            let stop = Instant::now() + spec.budget;
            for _ in 0..spec.max_samples {
                let t0 = Instant::now();
                for _ in 0..BATCH {
                    black_box(nix::unistd::getppid());
                }
                let t1 = Instant::now();
                let _ = writeln!(out, "lat {}", nanos(t1 - t0) / BATCH);
                if t1 >= stop {
                    break;
                }
            }
        }
        Test::Memcpy(size) => {
            let size = size.clamp(1, MAX_MSG);
            // One buffer, the destination 64 KiB after the source, as in the C twin: the
            // distance between the two modulo 4 KiB changes memcpy's speed (4K aliasing: a
            // load that looks like it depends on an earlier store to the same page offset
            // waits for it), so both sides must use the same one.
            let mut buf = PageBuf::new(2 * MAX_MSG, 0x5a);
            let buf = buf.as_mut_slice();
            let (src, rest) = buf.split_at_mut(MAX_MSG);
            let (src, dst) = (&src[..size], &mut rest[..size]);
            // About 1 MiB between two looks at the clock.
            let batch = (1 << 20) / size;
            let mut bytes: u64 = 0;
            let t0 = Instant::now();
            let stop = t0 + spec.budget;
            let elapsed = loop {
                for _ in 0..batch {
                    dst.copy_from_slice(src);
                    // The copy must happen every time: dst is "used" after each one.
                    black_box(&mut *dst);
                }
                bytes += (batch * size) as u64;
                let now = Instant::now();
                if now >= stop {
                    break now - t0;
                }
            };
            let _ = writeln!(out, "tput {bytes} {}", nanos(elapsed));
        }
        other => {
            let _ = writeln!(out, "err {} is not a floor test", other.name());
        }
    }
    out.push_str("done\n");
    out
}
