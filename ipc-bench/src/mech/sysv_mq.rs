//! msgget(2): one SysV message queue carries both directions, told apart by the message type
//! (`msgrcv` picks a type): 1 is ping → pong, 2 is pong → ping. A message may not exceed
//! `/proc/sys/kernel/msgmax` (8 KiB by default), so the 64 KiB test is refused with EINVAL,
//! and the whole queue holds `msgmnb` bytes (16 KiB).

use common::{Context, Result};
use nix::errno::Errno;

use super::sysv::{self, Kind};
use super::{Endpoint, MAX_MSG, Pair, retry};

const TO_PONG: libc::c_long = 1;
const TO_PING: libc::c_long = 2;

/// `struct msgbuf`: the type, then the bytes.
#[repr(C)]
struct Message {
    mtype: libc::c_long,
    mtext: [u8; MAX_MSG],
}

/// One end: the queue id, the type it sends and the type it receives.
pub struct SysvMqEnd {
    id: libc::c_int,
    send_type: libc::c_long,
    recv_type: libc::c_long,
    buf: Box<Message>,
}

/// One queue for both directions, removed (IPC_RMID) when the measurement ends.
pub fn pair() -> Result<Pair<SysvMqEnd, SysvMqEnd>> {
    let queue = sysv::create(Kind::Queue, 0)?;
    let end = |send_type, recv_type| SysvMqEnd {
        id: queue.id(),
        send_type,
        recv_type,
        buf: Box::new(Message {
            mtype: 0,
            mtext: [0; MAX_MSG],
        }),
    };
    let mut pair = Pair::new(end(TO_PONG, TO_PING), end(TO_PING, TO_PONG));
    pair.guards.push(Box::new(queue));
    Ok(pair)
}

impl Endpoint for SysvMqEnd {
    fn post(&mut self) -> Result<()> {
        self.send(b"x")
    }

    fn wait(&mut self) -> Result<()> {
        self.recv_at_most(1).map(drop)
    }

    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.buf.mtype = self.send_type;
        self.buf.mtext[..msg.len()].copy_from_slice(msg);
        let ptr: *const Message = &*self.buf;
        retry(|| {
            // SAFETY: `ptr` points to a live Message whose mtext holds msg.len() bytes; msgsnd
            // reads the type and that many bytes.
            let rc = unsafe { libc::msgsnd(self.id, ptr.cast(), msg.len(), 0) };
            Errno::result(rc)
        })
        .ctx(
            "msgsnd",
            format_args!("queue {} ({} bytes)", self.id, msg.len()),
        )
        .map(drop)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.recv_at_most(MAX_MSG)?;
        buf[..n].copy_from_slice(&self.buf.mtext[..n]);
        Ok(n)
    }

    fn end(&mut self) -> Result<()> {
        self.send(&[])
    }
}

impl SysvMqEnd {
    fn recv_at_most(&mut self, max: usize) -> Result<usize> {
        let ptr: *mut Message = &mut *self.buf;
        let n = retry(|| {
            // SAFETY: `ptr` points to a live Message with room for MAX_MSG >= max bytes of
            // mtext; msgrcv writes the type and at most `max` bytes.
            let rc = unsafe { libc::msgrcv(self.id, ptr.cast(), max, self.recv_type, 0) };
            Errno::result(rc)
        })
        .ctx("msgrcv", format_args!("queue {}", self.id))?;
        Ok(usize::try_from(n).expect("msgrcv returns a length when it succeeds"))
    }
}
