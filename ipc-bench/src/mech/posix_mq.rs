//! mq_open(3): POSIX message queues, one each way. Messages keep their boundaries and the
//! queue holds at most `mq_maxmsg` of them (10, the unprivileged default of
//! `/proc/sys/fs/mqueue/msg_max`); a message may not exceed `mq_msgsize`, which an
//! unprivileged process may not set above `/proc/sys/fs/mqueue/msgsize_max` (8 KiB by
//! default): the 64 KiB test is refused with EINVAL there, and the table says so.
//!
//! The names are needed only until both descriptors exist (ping and pong inherit them across
//! fork), so each queue is unlinked at once.

use common::cleanup::{Object, Unlink};
use common::{Context, Result};
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_open, mq_receive, mq_send};
use nix::sys::stat::Mode;

use super::{Endpoint, Names, Pair, retry};

/// One end: the queue it sends on and the queue it receives from.
pub struct MqEnd {
    tx: Queue,
    rx: Queue,
    msgsize: usize,
}

/// A queue descriptor, closed when dropped (nix's `MqdT` has no `Drop`).
struct Queue {
    mqd: Option<MqdT>,
    name: String,
}

impl Queue {
    fn mqd(&self) -> &MqdT {
        self.mqd.as_ref().expect("a queue is open until dropped")
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if let Some(mqd) = self.mqd.take() {
            let _ = nix::mqueue::mq_close(mqd);
        }
    }
}

/// Two queues of messages up to `msg_size` bytes (1 for the round trip).
pub fn pair(names: &Names, msg_size: usize) -> Result<Pair<MqEnd, MqEnd>> {
    let msgsize = msg_size.max(1);
    let open = |name: &str| -> Result<(Queue, Queue)> {
        let attr = MqAttr::new(0, 10, msgsize as libc::c_long, 0);
        let flags = MQ_OFlag::O_RDWR | MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_CLOEXEC;
        let mqd = mq_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr))
            .ctx("mq_open", format_args!("{name} (mq_msgsize {msgsize})"))?;
        // Unlinked when this closure returns: both processes inherit the descriptor.
        let _name = Unlink::new(Object::Mqueue(name.to_owned()));
        // Ping's copy and pong's copy are separate descriptors of the one queue.
        let dup = mqd_dup(&mqd, name)?;
        let one = |mqd| Queue {
            mqd: Some(mqd),
            name: name.to_owned(),
        };
        Ok((one(mqd), one(dup)))
    };
    let (p2c_tx, p2c_rx) = open(&names.a)?;
    let (c2p_tx, c2p_rx) = open(&names.b)?;
    Ok(Pair::new(
        MqEnd {
            tx: p2c_tx,
            rx: c2p_rx,
            msgsize,
        },
        MqEnd {
            tx: c2p_tx,
            rx: p2c_rx,
            msgsize,
        },
    ))
}

/// On Linux a message queue descriptor is a file descriptor, so `dup` gives a second one.
fn mqd_dup(mqd: &MqdT, name: &str) -> Result<MqdT> {
    use std::os::fd::{AsFd, FromRawFd, IntoRawFd};
    let fd = mqd.as_fd().try_clone_to_owned().ctx("dup", name)?;
    // SAFETY: `fd` is a fresh descriptor of the queue, owned by nothing else once
    // into_raw_fd releases it; MqdT takes it over.
    Ok(unsafe { MqdT::from_raw_fd(fd.into_raw_fd()) })
}

impl Endpoint for MqEnd {
    fn post(&mut self) -> Result<()> {
        self.send(b"x")
    }

    fn wait(&mut self) -> Result<()> {
        // Room for the one-byte message: mq_receive wants at least mq_msgsize (1) bytes.
        let mut buf = [0u8; 16];
        let mut prio = 0;
        retry(|| mq_receive(self.rx.mqd(), &mut buf, &mut prio))
            .ctx("mq_receive", &self.rx.name)
            .map(drop)
    }

    fn send(&mut self, msg: &[u8]) -> Result<()> {
        retry(|| mq_send(self.tx.mqd(), msg, 0)).ctx("mq_send", &self.tx.name)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut prio = 0;
        // mq_receive insists on a buffer of at least mq_msgsize bytes.
        retry(|| mq_receive(self.rx.mqd(), &mut buf[..self.msgsize], &mut prio))
            .ctx("mq_receive", &self.rx.name)
    }

    fn end(&mut self) -> Result<()> {
        self.send(&[])
    }
}
