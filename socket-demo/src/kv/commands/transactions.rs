//! Transactions: MULTI, EXEC, DISCARD.

use crate::kv::protocol;

use super::{After, Call, run};

pub(super) fn multi(c: &mut Call<'_>, _: &[&[u8]]) {
    if c.session.queued.is_some() {
        // Redis refuses it and leaves the transaction open (not aborted).
        return c.error("ERR MULTI calls can not be nested");
    }
    c.session.queued = Some(Vec::new());
    c.session.aborted = false;
    c.ok();
}

pub(super) fn discard(c: &mut Call<'_>, _: &[&[u8]]) {
    if c.session.queued.take().is_none() {
        return c.error("ERR DISCARD without MULTI");
    }
    c.session.aborted = false;
    c.ok();
}

/// EXEC: run the queued commands, one reply each, in one array. Nothing else can run in
/// between: the server has one thread, and this loop does not return to it until done.
pub(super) fn exec(c: &mut Call<'_>, _: &[&[u8]]) {
    let Some(queued) = c.session.queued.take() else {
        return c.error("ERR EXEC without MULTI");
    };
    if std::mem::take(&mut c.session.aborted) {
        return c.error("EXECABORT Transaction discarded because of previous errors.");
    }
    protocol::array_len(c.out, queued.len());
    for q in &queued {
        let args: Vec<&[u8]> = q.args.iter().map(Vec::as_slice).collect();
        c.state.stats.total_commands_processed += 1;
        if run(c.state, c.session, q.command, &args[1..], c.out) == After::Close {
            c.after = After::Close;
        }
    }
}
