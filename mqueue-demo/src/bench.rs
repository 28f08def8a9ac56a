//! `bench-hop` (hidden): the floor for one hop, for `bench/throughput.sh`.
//!
//! Two processes and one POSIX queue, nothing else: the parent `mq_send`s COUNT messages of
//! SIZE bytes as fast as the queue takes them (blocking when it is full), a child (this binary
//! again, `bench-hop --receive`) `mq_receive`s them. The figure is messages per second from
//! the first send to the child's exit. A task in mqueue-demo makes four such hops (producer ->
//! `NAME` -> supervisor -> worker inbox -> worker -> `NAME-done` -> supervisor -> result
//! queue), so this bounds what the task queue can do.

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::child::{Options, Supervised};
use common::cleanup::{Object, Unlink};
use common::{Context, Error, Result, say};

use crate::mq::{Access, Created, Mq};

/// Run the sender (or, with `receive`, the receiver) side.
pub fn run(count: u64, size: usize, receive: Option<&str>) -> Result<ExitCode> {
    if let Some(name) = receive {
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
        return Ok(ExitCode::SUCCESS);
    }
    let name = common::names::posix_name(&common::names::unique("bench-hop"));
    let Created::New(q) = Mq::create(&name, 10, 1024, Access::Write)? else {
        return Err(Error::msg(format!("{name}: exists")));
    };
    let _guard = Unlink::new(Object::Mqueue(name.clone()));
    // Blocking sends: Mq::create opens non-blocking, so open a second, blocking descriptor.
    let q = {
        drop(q);
        Mq::open(&name, Access::Write, false)?
    };
    let exe = std::env::current_exe().ctx("current_exe", "")?;
    let mut cmd = Command::new(exe);
    cmd.args([
        "bench-hop",
        "--count",
        &count.to_string(),
        "--receive",
        &name,
    ])
    .stdin(Stdio::null());
    let opts = Options {
        deadline: Some(Duration::from_secs(600)),
        own_group: true,
    };
    let msg = vec![b'x'; size];
    let start = Instant::now();
    let child = Supervised::spawn("receiver", &mut cmd, opts)?;
    for _ in 0..count {
        q.send_wait_blocking(&msg)?;
    }
    let status = child.wait_timeout(Duration::from_secs(600))?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(Error::msg(format!("receiver: {status}")));
    }
    say!(
        "{count} messages of {size} bytes in {:.3} s: {:.0} msg/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    )?;
    Ok(ExitCode::SUCCESS)
}

impl Mq {
    /// `mq_send` on a blocking descriptor, retried after EINTR.
    fn send_wait_blocking(&self, msg: &[u8]) -> Result<()> {
        loop {
            match self.send(msg, 0) {
                Ok(()) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("mq_send", self.name(), e)),
            }
        }
    }
}
