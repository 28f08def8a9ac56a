//! `socket-demo pass-fd`: hand an open file descriptor to another process (SCM_RIGHTS).
//!
//! The sender creates a file in the runtime dir (O_EXCL, mode 0600), writes a line into it,
//! and *unlinks it*: from then on no path leads to that file, and the only way in is the
//! descriptor the sender holds. It makes a `socketpair(AF_UNIX, SOCK_STREAM)`, turns on
//! SO_PASSCRED on the receiver's end, and starts the receiver (`pass-fd --receive`, a real
//! process) with that end as its stdin. Then one `sendmsg` carries a byte of data plus two
//! control messages: SCM_RIGHTS with the file's descriptor, and SCM_CREDENTIALS with the
//! sender's pid/uid/gid (which the kernel checks: a process cannot claim another's pid).
//!
//! The receiver's `recvmsg` (with MSG_CMSG_CLOEXEC, so the new descriptor is close-on-exec
//! like every other) gets a *new descriptor number* in its own table that refers to the
//! *same open file description*: same file, same offset. It reads the line back and prints
//! it, along with the credentials and SO_PEERCRED. The sender checks the receiver's output.
//!
//! # System calls, in order
//!
//! Sender: `open(O_CREAT | O_EXCL | O_CLOEXEC, 0600)`, `write`, `unlink`,
//! `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`, `setsockopt(SO_PASSCRED)`, `fork` +
//! `execve` of the receiver (its end as stdin), `sendmsg` (1 byte + SCM_RIGHTS +
//! SCM_CREDENTIALS), `waitpid`. Receiver: `getsockopt(SO_PEERCRED)`,
//! `recvmsg(MSG_CMSG_CLOEXEC)`, `lseek` + `read` on the received descriptor.
//!
//! # Pitfalls
//!
//! - Control messages travel with data: on a stream socket `sendmsg` must carry at least one
//!   byte of real data, or there is nothing for them to ride on.
//! - A control buffer too small for what was sent truncates it (MSG_CTRUNC) and the kernel
//!   closes the descriptors that did not fit: the receiver checks the flag.
//! - Received descriptors are not close-on-exec unless `recvmsg` is given MSG_CMSG_CLOEXEC;
//!   without it, every program the receiver starts would inherit them.
//! - SCM_CREDENTIALS arrive only on a socket with SO_PASSCRED set before the message.
//!
//! See also: unix(7) (SCM_RIGHTS, SCM_CREDENTIALS), cmsg(3), socketpair(2).

use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use crate::cli::PassFdArgs;
use common::child::RoleCommand;
use common::{Context, Error, Result};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixCredentials, getsockopt, recvmsg, sendmsg, setsockopt, socketpair, sockopt,
};

/// Run the `pass-fd` role: the sender, or with `--receive` the receiver it starts.
pub fn run(args: &PassFdArgs) -> Result<ExitCode> {
    if args.receive {
        receive_role()
    } else {
        send_role()
    }
}

/// The sender: create a private file, pass its descriptor to a receiver process, check it.
fn send_role() -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    let path = common::names::runtime_path(&format!("{}.txt", common::names::unique("pass-fd")))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true) // O_EXCL: never open something planted at this name.
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .ctx("open", path.display())?;
    let secret = format!(
        "a line only pid {} could read: it opened this file, then unlinked it",
        std::process::id()
    );
    writeln!(file, "{secret}").ctx("write", path.display())?;
    // The offset belongs to the open file description, which the receiver will share: rewind
    // here and the receiver reads from the start without seeking.
    file.seek(SeekFrom::Start(0)).ctx("lseek", path.display())?;
    nix::unistd::unlink(&path).ctx("unlink", path.display())?;
    common::trace!(
        "open({}) -> fd {}; unlink: no path leads to it now",
        path.display(),
        file.as_raw_fd()
    );
    writeln!(
        out,
        "sender pid {}: opened {} as fd {}, wrote a line, unlinked the name",
        std::process::id(),
        path.display(),
        file.as_raw_fd()
    )
    .ctx("write", "stdout")?;

    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx("socketpair", "AF_UNIX")?;
    // Set before the receiver exists and before we send: the kernel attaches credentials to a
    // message only if the receiving socket has SO_PASSCRED when the message is sent.
    setsockopt(&theirs, sockopt::PassCred, &true).ctx("setsockopt SO_PASSCRED", "socketpair")?;
    // The receiver's stdin *is* its end of the socketpair: dup2'd onto fd 0, so it crosses
    // exec while every other descriptor of ours (O_CLOEXEC) does not. It stays in our process
    // group, and is not tied to our death: it ends by itself once it has read the file.
    let mut receiver = RoleCommand::new("receiver", Duration::from_secs(30))?;
    receiver
        .args(["pass-fd", "--receive"])
        .stdin(Stdio::from(theirs))
        .same_group()
        .on_supervisor_death(None);
    let child = receiver.spawn()?;
    drop(receiver); // Closes our copy of the receiver's end.

    let fds = [file.as_raw_fd()];
    let creds = UnixCredentials::new();
    let cmsgs = [
        ControlMessage::ScmRights(&fds),
        ControlMessage::ScmCredentials(&creds),
    ];
    // At least one byte of real data must travel with control messages on a stream socket.
    let iov = [IoSlice::new(b"F")];
    sendmsg::<()>(ours.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)
        .ctx("sendmsg", "socketpair (SCM_RIGHTS)")?;
    common::trace!("sendmsg(SCM_RIGHTS [fd {}], SCM_CREDENTIALS)", fds[0]);
    writeln!(
        out,
        "sender: sent fd {} with SCM_RIGHTS to receiver pid {}",
        fds[0],
        child.pid()
    )
    .ctx("write", "stdout")?;
    drop(file); // Our descriptor is closed; the file lives on through the receiver's.
    drop(ours);

    let mut lines = child
        .stdout_lines()
        .ok_or_else(|| Error::msg("receiver: no stdout"))?;
    let got = lines.rest(Duration::from_secs(30))?;
    let status = child.wait_timeout(Duration::from_secs(30))?;
    for l in &got {
        writeln!(out, "  {l}").ctx("write", "stdout")?;
    }
    let read_back = got.iter().any(|l| l.contains(&secret));
    if !status.success() || !read_back {
        return Err(Error::Check(format!(
            "FAILED: the receiver ({}) did not read the line through the passed fd",
            common::child::Ended::from(status)
        )));
    }
    writeln!(
        out,
        "ok: receiver pid {} read the unlinked file through the passed descriptor",
        child.pid()
    )
    .ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// The receiver: stdin is a Unix socket; receive one descriptor and read from it.
fn receive_role() -> Result<ExitCode> {
    let sock: RawFd = 0;
    let mut out = io::stdout().lock();
    let peer = getsockopt(&io::stdin(), sockopt::PeerCredentials).map_err(|e| {
        Error::msg(format!(
            "stdin is not a Unix socket ({}); run `socket-demo pass-fd`, which starts the receiver",
            e.desc()
        ))
    })?;
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 4], UnixCredentials);
    let msg = recvmsg::<()>(
        sock,
        &mut iov,
        Some(&mut space),
        // A received descriptor is a new fd in our table; make it close-on-exec at birth.
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx("recvmsg", "stdin")?;
    let mut received: Vec<OwnedFd> = Vec::new();
    let mut creds = None;
    for cmsg in msg.cmsgs().ctx("recvmsg", "control messages")? {
        match cmsg {
            ControlMessageOwned::ScmRights(fds) => {
                for fd in fds {
                    // SAFETY: the kernel just installed `fd` in our descriptor table for this
                    // message (SCM_RIGHTS); nothing else owns it, so taking ownership is sound.
                    received.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
            ControlMessageOwned::ScmCredentials(c) => creds = Some(c),
            _ => {}
        }
    }
    // Checked only now, so that the descriptors that did arrive are owned, and closed by the
    // return, rather than left open.
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(Error::msg(
            "recvmsg: control data truncated (descriptors lost)",
        ));
    }
    let Some(fd) = received.into_iter().next() else {
        return Err(Error::msg("recvmsg: the message carried no descriptor"));
    };
    let raw = fd.as_raw_fd();
    common::trace!("recvmsg(stdin) -> SCM_RIGHTS fd {raw}");
    writeln!(
        out,
        "receiver pid {}: got fd {raw} via SCM_RIGHTS",
        std::process::id()
    )
    .ctx("write", "stdout")?;
    if let Some(c) = creds {
        writeln!(
            out,
            "receiver: SCM_CREDENTIALS says pid={} uid={} gid={} (checked by the kernel)",
            c.pid(),
            c.uid(),
            c.gid()
        )
        .ctx("write", "stdout")?;
    }
    writeln!(
        out,
        "receiver: SO_PEERCRED says pid={} uid={} gid={}",
        peer.pid(),
        peer.uid(),
        peer.gid()
    )
    .ctx("write", "stdout")?;
    let link = std::fs::read_link(format!("/proc/self/fd/{raw}"))
        .map_or_else(|e| format!("? ({e})"), |p| p.display().to_string());
    writeln!(out, "receiver: /proc/self/fd/{raw} -> {link}").ctx("write", "stdout")?;
    let mut text = String::new();
    File::from(fd)
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ctx("read", format!("fd {raw}"))?;
    writeln!(out, "receiver: read {:?}", text.trim_end()).ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}
