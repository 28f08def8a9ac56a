//! A new database: the header's fields, the writers' mutex made robust and process-shared
//! (see [`super`], "Writers"), and the magic last.

use std::sync::atomic::Ordering;

use common::{Error, Result, trace};

use super::Db;
use super::mutex::init_mutex;
use crate::layout::{self, Geometry};
use crate::segment::Region;

impl Db {
    /// Lay out a fresh, zero-filled segment: header fields, the robust mutex, and the magic
    /// last, so a process that attaches early sees "not initialised" rather than half a header.
    pub fn init(region: Region, geo: Geometry) -> Result<Db> {
        let r = &region;
        let set32 = |off, v: u32| r.u32(off).store(v, Ordering::Relaxed);
        let set64 = |off, v: u64| r.u64(off).store(v, Ordering::Relaxed);
        set32(layout::H_VERSION, layout::VERSION);
        set32(layout::H_HEADER_SIZE, geo.header_size as u32);
        set64(layout::H_TOTAL, geo.total_size as u64);
        set32(layout::H_SLOTS, geo.slots);
        set32(layout::H_KEY_MAX, geo.key_max);
        set32(layout::H_VALUE_MAX, geo.value_max);
        set32(layout::H_RECORD_SIZE, geo.record_size as u32);
        set32(
            layout::H_MUTEX_SIZE,
            std::mem::size_of::<libc::pthread_mutex_t>() as u32,
        );
        init_mutex(r.mutex()).map_err(|e| Error::sys("pthread_mutex_init", &r.label, e))?;
        trace!(
            "pthread_mutex_init(PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST) in {}",
            r.label
        );
        let db = Db::new(region, geo);
        db.claim();
        db.region
            .u64(layout::H_MAGIC)
            .store(u64::from_ne_bytes(layout::MAGIC), Ordering::Release);
        Ok(db)
    }
}
