//! semget(2): a SysV set of two semaphores, 0 for "ping has posted", 1 for "pong has". A post
//! is `semop(+1)`, a wait `semop(-1)`, which blocks while the value is 0.

use common::{Context, Result};
use nix::errno::Errno;

use super::sysv::{self, Kind};
use super::{Endpoint, Pair, retry};

/// One end: the set, the semaphore it posts and the one it waits on.
pub struct SysvSemEnd {
    id: libc::c_int,
    post_num: u16,
    wait_num: u16,
}

/// A set of two semaphores, removed (IPC_RMID) when the measurement ends.
pub fn pair() -> Result<Pair<SysvSemEnd, SysvSemEnd>> {
    let set = sysv::create(Kind::Semaphores, 2)?;
    let id = set.id();
    let mut pair = Pair::new(
        SysvSemEnd {
            id,
            post_num: 0,
            wait_num: 1,
        },
        SysvSemEnd {
            id,
            post_num: 1,
            wait_num: 0,
        },
    );
    pair.guards.push(Box::new(set));
    Ok(pair)
}

impl SysvSemEnd {
    fn op(&self, num: u16, op: i16) -> Result<()> {
        let mut buf = libc::sembuf {
            sem_num: num,
            sem_op: op,
            sem_flg: 0,
        };
        retry(|| {
            // SAFETY: `buf` is one valid sembuf, and we pass nsops = 1.
            Errno::result(unsafe { libc::semop(self.id, &mut buf, 1) })
        })
        .ctx("semop", format_args!("set {} #{num} {op:+}", self.id))
        .map(drop)
    }
}

impl Endpoint for SysvSemEnd {
    fn post(&mut self) -> Result<()> {
        self.op(self.post_num, 1)
    }

    fn wait(&mut self) -> Result<()> {
        self.op(self.wait_num, -1)
    }
}
