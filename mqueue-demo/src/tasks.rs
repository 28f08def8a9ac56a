//! What a worker does with each kind of task (`echo`, `sleep`, `fib`, `sha256`, `fail`): what
//! the task queue serves, not what the demo teaches, which is how the task travels. The
//! argument comes from another process, so it is checked again here: a bad one makes the task
//! fail, it never panics the worker.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::protocol::{self, Kind, Task};

/// Run `task`; `Ok(output)` or `Err(why it failed)`.
pub fn execute(task: &Task) -> Result<Vec<u8>, String> {
    match task.kind {
        Kind::Echo => Ok(task.arg.clone()),
        Kind::Sleep => {
            let ms = protocol::sleep_ms(&task.arg)?;
            // std's sleep resumes after a signal handler runs, so a SIGTERM does not cut the
            // task short: the worker finishes what it holds, then stops.
            std::thread::sleep(Duration::from_millis(ms));
            Ok(format!("slept {ms} ms").into_bytes())
        }
        Kind::Fib => {
            let n = protocol::fib_arg(&task.arg)?;
            Ok(fib(n).to_string().into_bytes())
        }
        Kind::Sha256 => {
            let digest = Sha256::digest(&task.arg);
            Ok(digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes())
        }
        Kind::Fail => Err(format!(
            "fail: this task always fails ({})",
            common::out::escape(&task.arg)
        )),
    }
}

/// The nth Fibonacci number; n <= 93 fits a u64.
fn fib(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(kind: Kind, arg: &str) -> Task {
        Task {
            id: 1,
            kind,
            attempt: 1,
            reply: String::new(),
            arg: arg.as_bytes().to_vec(),
        }
    }

    #[test]
    fn each_kind_runs() {
        assert_eq!(execute(&task(Kind::Echo, "hi")).unwrap(), b"hi");
        assert_eq!(
            execute(&task(Kind::Fib, "93")).unwrap(),
            b"12200160415121876738"
        );
        assert_eq!(
            execute(&task(Kind::Sha256, "abc")).unwrap(),
            b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(execute(&task(Kind::Sleep, "1")).unwrap(), b"slept 1 ms");
        assert!(execute(&task(Kind::Fail, "x")).is_err());
        assert!(
            execute(&task(Kind::Fib, "x"))
                .unwrap_err()
                .contains("fib needs")
        );
    }
}
