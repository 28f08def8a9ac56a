//! The floor for one hop, for `bench/throughput.sh`: COUNT messages of SIZE bytes through one
//! POSIX queue between two processes, through mqueue-demo's own `src/mq.rs` (included as it
//! is), so the figure is what the demo's roles pay per `mq_send` and `mq_receive`.
//!
//! ```text
//! cargo run --release -p mqueue-demo --example bench_hop -- 1000000 32
//! ```
//!
//! The parent `mq_send`s as fast as the queue takes them (blocking when it is full); a child
//! (this program again, `--receive NAME COUNT`) `mq_receive`s them. Prints `COUNT messages of
//! SIZE bytes in T s: R msg/s`, from the first send to the child's exit. A task in mqueue-demo
//! makes four such hops (producer -> `NAME` -> supervisor -> worker inbox -> worker ->
//! `NAME-done` -> supervisor -> result queue), so this bounds what the task queue can do. It
//! lives here, not in the demo's binary: a measuring loop is not a role.

#[allow(dead_code)]
#[path = "../src/mq.rs"]
mod mq;

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::child::{Options, Supervised};
use common::cleanup::{Object, Unlink};
use common::{Error, Result};

use mq::{Access, Created, Mq};

/// Every process is killed if it runs longer.
const DEADLINE: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args[..] {
        ["--receive", name, count] => count.parse().ok().map(|n| receive(name, n)),
        [count, size] => match (count.parse(), size.parse()) {
            (Ok(n), Ok(size @ 1..=1024)) => Some(send(n, size)),
            _ => None,
        },
        _ => None,
    };
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("bench_hop: {e}");
            ExitCode::FAILURE
        }
        None => {
            eprintln!("usage: bench_hop COUNT SIZE (SIZE from 1 to 1024 bytes)");
            ExitCode::from(2)
        }
    }
}

/// The sending side: make the queue, start the receiver, send COUNT messages, time it.
fn send(count: u64, size: usize) -> Result<()> {
    let name = common::names::posix_name(&common::names::unique("bench-hop"));
    let Created::New(q) = Mq::create(&name, 10, 1024, Access::Write)? else {
        return Err(Error::msg(format!("{name}: exists")));
    };
    let _guard = Unlink::new(Object::Mqueue(name.clone()));
    // Blocking sends: Mq::create opens non-blocking, so open a second, blocking descriptor.
    drop(q);
    let q = Mq::open(&name, Access::Write, false)?;
    let exe = std::env::current_exe().map_err(|e| Error::msg(format!("current_exe: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.args(["--receive", &name, &count.to_string()])
        .stdin(Stdio::null());
    let opts = Options {
        deadline: Some(DEADLINE),
        own_group: true,
    };
    let msg = vec![b'x'; size];
    let start = Instant::now();
    let child = Supervised::spawn("receiver", &mut cmd, opts)?;
    for _ in 0..count {
        loop {
            match q.send(&msg, 0) {
                Ok(()) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("mq_send", &name, e)),
            }
        }
    }
    let status = child.wait_timeout(DEADLINE)?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(Error::msg(format!("receiver: {status}")));
    }
    println!(
        "{count} messages of {size} bytes in {:.3} s: {:.0} msg/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// The receiving side: COUNT messages from queue `name`, waiting for each.
fn receive(name: &str, count: u64) -> Result<()> {
    let q = Mq::open(name, Access::Read, false)?;
    let mut buf = Vec::new();
    for _ in 0..count {
        loop {
            match q.receive(&mut buf) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("mq_receive", name, e)),
            }
        }
    }
    Ok(())
}
