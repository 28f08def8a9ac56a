//! Snapshot files for `server --load/--save`.
//!
//! Format (little-endian): magic `b"SHMKVSN1"`, record count (u32), then per record key
//! length (u32), value length (u32), key, value; then the FNV-1a 64 hash of everything
//! before it. A file is input like the segment: every length is checked against the
//! database's limits before it is used, and a short or damaged file is refused as a whole,
//! before anything is stored.
//!
//! Saving writes `<file>.tmp.<pid>` (O_EXCL, 0600), fsyncs it and renames it over the file,
//! so a crash mid-save leaves the old snapshot whole, never half a new one.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use common::sysv_key::fnv1a64;
use common::{Context, Error, Result, trace};

use crate::layout::Geometry;

const MAGIC: &[u8; 8] = b"SHMKVSN1";

/// Key-value pairs, as stored and loaded.
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Serialise `records` and write them to `path` atomically.
pub fn save(path: &Path, records: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
    let mut buf = Vec::with_capacity(
        16 + records
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>(),
    );
    buf.extend_from_slice(MAGIC);
    let count = u32::try_from(records.len()).map_err(|_| Error::msg("too many records"))?;
    buf.extend_from_slice(&count.to_le_bytes());
    for (k, v) in records {
        // Both were read from a validated segment, so they fit u32.
        buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
        buf.extend_from_slice(k);
        buf.extend_from_slice(v);
    }
    let sum = fnv1a64(&buf);
    buf.extend_from_slice(&sum.to_le_bytes());

    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&tmp)
        .ctx("open", tmp.display())?;
    let written = file
        .write_all(&buf)
        .and_then(|()| file.sync_all())
        .ctx("write", tmp.display())
        .and_then(|()| std::fs::rename(&tmp, path).ctx("rename", path.display()));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    trace!(
        "write({}) + fsync + rename -> {}",
        tmp.display(),
        path.display()
    );
    Ok(())
}

/// Read and check a snapshot against the limits of `geo`.
pub fn load(path: &Path, geo: &Geometry) -> Result<Records> {
    let file = File::open(path).ctx("open", path.display())?;
    // No bigger than a full table can be: a larger file is refused without reading it all.
    let most = 20 + u64::from(geo.slots) * (8 + u64::from(geo.key_max) + u64::from(geo.value_max));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, most + 1), &mut bytes)
        .ctx("read", path.display())?;
    if bytes.len() as u64 > most {
        return Err(Error::msg(format!(
            "{}: larger than a snapshot of this database can be ({most} bytes)",
            path.display()
        )));
    }
    parse(&bytes, geo).map_err(|why| Error::msg(format!("{}: {why}", path.display())))
}

fn parse(bytes: &[u8], geo: &Geometry) -> std::result::Result<Records, String> {
    if bytes.len() < 20 || &bytes[..8] != MAGIC {
        return Err("not a shm-demo snapshot".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if fnv1a64(body).to_le_bytes() != sum {
        return Err("checksum mismatch (damaged or truncated)".into());
    }
    let mut at = 8;
    let u32_at = |at: &mut usize| -> std::result::Result<u32, String> {
        let b = body.get(*at..*at + 4).ok_or("truncated")?;
        *at += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let count = u32_at(&mut at)?;
    if count > geo.slots {
        return Err(format!(
            "{count} records, more than the {} slots",
            geo.slots
        ));
    }
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let (k, v) = (u32_at(&mut at)?, u32_at(&mut at)?);
        if k == 0 || k > geo.key_max || v > geo.value_max {
            return Err(format!(
                "record {i}: key {k} bytes, value {v} bytes (limits {} and {})",
                geo.key_max, geo.value_max
            ));
        }
        let (k, v) = (k as usize, v as usize);
        let key = body.get(at..at + k).ok_or("truncated")?.to_vec();
        let value = body.get(at + k..at + k + v).ok_or("truncated")?.to_vec();
        at += k + v;
        out.push((key, value));
    }
    if at != body.len() {
        return Err(format!("{} stray bytes after the records", body.len() - at));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot as saved before the checksum moved to `common::sysv_key::fnv1a64`, byte for
    /// byte (its sum computed by an independent FNV-1a): files saved then still load.
    #[test]
    fn a_snapshot_saved_before_still_loads() {
        let saved = "53484d4b56534e310200000001000000020000006100ff02000000000000006b32\
                     36067e36c7f22da2";
        let bytes: Vec<u8> = (0..saved.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&saved[i..i + 2], 16).unwrap())
            .collect();
        let geo = Geometry::new(8, 64, 100).unwrap();
        let want = vec![
            (b"a".to_vec(), b"\x00\xff".to_vec()),
            (b"k2".to_vec(), vec![]),
        ];
        assert_eq!(parse(&bytes, &geo).unwrap(), want);
    }

    #[test]
    fn round_trip_and_damage() {
        let geo = Geometry::new(8, 64, 100).unwrap();
        let dir = std::env::temp_dir().join(format!("shm-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.snap");
        let recs = vec![
            (b"a".to_vec(), b"\x00\xff".to_vec()),
            (b"k2".to_vec(), vec![]),
        ];
        save(&path, &recs).unwrap();
        assert_eq!(load(&path, &geo).unwrap(), recs);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[14] ^= 1;
        assert!(parse(&bytes, &geo).unwrap_err().contains("checksum"));
        let small = Geometry::new(1, 64, 100).unwrap();
        assert!(
            load(&path, &small)
                .unwrap_err()
                .to_string()
                .contains("more than the 1 slots")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
