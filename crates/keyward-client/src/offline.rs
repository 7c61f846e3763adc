//! Offline license files, checked with the public key and no network, plus the clock-rollback
//! guard: a small state file remembers the latest time seen, so turning the clock back cannot
//! bring an expired file back to life.
//!
//! A missing state file is a first run. A corrupt one is `Error::State`, never silently reset
//! (deleting it is the user's only reset, and an app may choose to require going online then);
//! the app recovers by validating online once and calling `record_server_time` with the signed
//! answer's `ts`, which rewrites the file.

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use keyward_core::offline::{verify_file, OfflineClaims, OfflineError};
use keyward_core::signature::KeyRing;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How far the clock may step back (NTP corrections, a skewed server) before it counts as rolled back.
pub const ROLLBACK_TOLERANCE_SECS: i64 = 5 * 60;

/// A state file larger than this is not one the SDK wrote.
const MAX_STATE_BYTES: u64 = 4096;

/// Checks offline license files against a key ring (pin it at build time) and, with a state file,
/// refuses a clock turned back.
#[derive(Debug, Clone)]
pub struct OfflineVerifier {
    pub ring: KeyRing,
    /// Where the latest time seen is kept: `{"last_seen": <unix seconds>}`. `None` keeps no state
    /// and so cannot notice a rollback beyond the file's own issue time.
    pub state_path: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    last_seen: i64,
}

impl OfflineVerifier {
    pub fn new(ring: KeyRing) -> Self {
        OfflineVerifier { ring, state_path: None }
    }

    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_path = Some(path.into());
        self
    }

    /// Checks a file now: signature, kid, expiry, fingerprint when given, and the clock.
    pub fn verify(&self, file: &[u8], fingerprint: Option<&str>) -> Result<OfflineClaims> {
        self.verify_at(Utc::now(), file, fingerprint)
    }

    /// Checks a file as if the clock read `now`. Every check that gets past the clock records
    /// `now` (and a good file's `iat`) as seen, even when the file itself is refused, so an expired
    /// file followed by a rolled-back clock is still caught.
    pub fn verify_at(&self, now: DateTime<Utc>, file: &[u8], fingerprint: Option<&str>) -> Result<OfflineClaims> {
        let last_seen = match &self.state_path {
            Some(path) => read_state(path)?,
            None => None,
        };
        if let Some(seen) = last_seen {
            refuse_rollback(now, seen)?;
        }
        let verified = verify_file(file, &self.ring, now, fingerprint);
        let issued = verified.as_ref().ok().map(|claims| claims.iat);
        let latest = [last_seen, Some(now.timestamp()), issued].into_iter().flatten().max();
        if let (Some(path), Some(latest)) = (&self.state_path, latest) {
            if Some(latest) != last_seen {
                write_state(path, latest)?;
            }
        }
        let claims = verified?;
        // A file issued after "now" means the clock is behind the server's.
        refuse_rollback(now, claims.iat)?;
        Ok(claims)
    }

    /// The latest time seen, from the state file; `None` before the first check or without a state file.
    pub fn last_seen(&self) -> Result<Option<DateTime<Utc>>> {
        let Some(path) = &self.state_path else { return Ok(None) };
        Ok(read_state(path)?.and_then(|secs| DateTime::from_timestamp(secs, 0)))
    }

    /// Sets the latest time seen to a time the server signed (a verified online answer's `ts`).
    /// This is the way back from a corrupt state file or a clock that once ran far ahead.
    pub fn record_server_time(&self, server_time: DateTime<Utc>) -> Result<()> {
        match &self.state_path {
            Some(path) => write_state(path, server_time.timestamp()),
            None => Ok(()),
        }
    }
}

fn refuse_rollback(now: DateTime<Utc>, seen: i64) -> Result<()> {
    if now.timestamp() < seen.saturating_sub(ROLLBACK_TOLERANCE_SECS) {
        let seen = DateTime::from_timestamp(seen, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
        return Err(Error::Offline(OfflineError::ClockRolledBack(seen)));
    }
    Ok(())
}

/// The latest time seen, `None` on a first run (no file).
fn read_state(path: &Path) -> Result<Option<i64>> {
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::State(format!("cannot read {}: {err}", path.display()))),
    };
    let corrupt = |why: String| Error::State(format!("{} is corrupt ({why}); it was not reset", path.display()));
    if text.len() as u64 > MAX_STATE_BYTES {
        return Err(corrupt(format!("larger than {MAX_STATE_BYTES} bytes")));
    }
    let state: State = serde_json::from_slice(&text).map_err(|err| corrupt(err.to_string()))?;
    if DateTime::from_timestamp(state.last_seen, 0).is_none() {
        return Err(corrupt(format!("{} is not a time", state.last_seen)));
    }
    Ok(Some(state.last_seen))
}

/// Writes the state through a temporary file in the same folder and a rename, so a crash leaves
/// the old state or the new one, never half of one.
fn write_state(path: &Path, last_seen: i64) -> Result<()> {
    let fail = |err: std::io::Error| Error::State(format!("cannot write {}: {err}", path.display()));
    let name = path.file_name().ok_or_else(|| Error::State(format!("{} names no file", path.display())))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = folder.join(format!(".{}.{:016x}.tmp", name.to_string_lossy(), rand::random::<u64>()));
    let json = serde_json::to_vec(&State { last_seen }).map_err(|err| Error::State(err.to_string()))?;
    let written = (|| {
        let mut file = fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(fail(err));
    }
    // Makes the rename itself durable; not every platform can open a folder, so this is best effort.
    if let Ok(folder) = fs::File::open(folder) {
        let _ = folder.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use keyward_core::offline::OfflineFile;
    use keyward_core::signature::Signer;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    const T0: i64 = 1_750_000_000;

    fn signer_and_ring() -> (Signer, KeyRing) {
        let signer = Signer::generate();
        let mut ring = KeyRing::default();
        ring.insert(signer.kid.clone(), signer.key.verifying_key());
        (signer, ring)
    }

    fn file(signer: &Signer, iat: i64, exp: i64, fingerprint: Option<&str>) -> Vec<u8> {
        let claims = OfflineClaims {
            license_id: "lic_01".into(),
            key: "ACME-AAAAA-BBBBB".into(),
            product_id: "prod_01".into(),
            customer_email: Some("ada@example.com".into()),
            status: "active".into(),
            feature_flags: serde_json::json!({ "pro": true }),
            license_expires_at: None,
            fingerprint: fingerprint.map(str::to_owned),
            iat,
            exp,
        };
        serde_json::to_vec(&OfflineFile::sign(&claims, signer)).unwrap()
    }

    fn state_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("license-state.json")
    }

    fn stored(path: &Path) -> i64 {
        let state: State = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        state.last_seen
    }

    fn is_rollback(result: Result<OfflineClaims>) -> bool {
        matches!(result, Err(Error::Offline(OfflineError::ClockRolledBack(_))))
    }

    #[test]
    fn a_first_run_verifies_and_records_the_time() {
        let (signer, ring) = signer_and_ring();
        let dir = tempfile::tempdir().unwrap();
        let verifier = OfflineVerifier::new(ring).with_state_file(state_in(&dir));
        assert_eq!(verifier.last_seen().unwrap(), None);
        let claims =
            verifier.verify_at(at(T0 + 60), &file(&signer, T0, T0 + 86_400, Some("dev-1")), Some("dev-1")).unwrap();
        assert_eq!(claims.license_id, "lic_01");
        assert_eq!(stored(&state_in(&dir)), T0 + 60);
        assert_eq!(verifier.last_seen().unwrap(), Some(at(T0 + 60)));
    }

    #[test]
    fn a_clock_turned_back_past_the_tolerance_is_refused() {
        let (signer, ring) = signer_and_ring();
        let dir = tempfile::tempdir().unwrap();
        let verifier = OfflineVerifier::new(ring).with_state_file(state_in(&dir));
        let good = file(&signer, T0, T0 + 86_400, None);
        verifier.verify_at(at(T0 + 7200), &good, None).unwrap();
        // Within five minutes: an NTP correction, accepted, and the state keeps the later time.
        verifier.verify_at(at(T0 + 7200 - ROLLBACK_TOLERANCE_SECS), &good, None).unwrap();
        assert_eq!(stored(&state_in(&dir)), T0 + 7200);
        assert!(is_rollback(verifier.verify_at(at(T0 + 7200 - ROLLBACK_TOLERANCE_SECS - 1), &good, None)));
        assert_eq!(stored(&state_in(&dir)), T0 + 7200, "a refused check must not lower the time seen");
    }

    #[test]
    fn an_expired_file_is_still_remembered_so_rolling_back_does_not_revive_it() {
        let (signer, ring) = signer_and_ring();
        let dir = tempfile::tempdir().unwrap();
        let verifier = OfflineVerifier::new(ring).with_state_file(state_in(&dir));
        let short = file(&signer, T0, T0 + 3600, None);
        let expired = verifier.verify_at(at(T0 + 7200), &short, None);
        assert!(matches!(expired, Err(Error::Offline(OfflineError::Expired(_)))), "{expired:?}");
        assert_eq!(stored(&state_in(&dir)), T0 + 7200);
        assert!(is_rollback(verifier.verify_at(at(T0 + 1800), &short, None)));
    }

    #[test]
    fn a_file_issued_in_the_future_means_the_clock_is_behind() {
        let (signer, ring) = signer_and_ring();
        let dir = tempfile::tempdir().unwrap();
        let verifier = OfflineVerifier::new(ring).with_state_file(state_in(&dir));
        let from_the_future = file(&signer, T0 + 86_400, T0 + 2 * 86_400, None);
        assert!(matches!(
            verifier.verify_at(at(T0), &from_the_future, None),
            Err(Error::Offline(OfflineError::ClockRolledBack(_)))
        ));
        let refused_anyway = OfflineVerifier::new(verifier.ring.clone());
        assert!(refused_anyway.verify_at(at(T0), &from_the_future, None).is_err());
    }

    #[test]
    fn a_file_issued_later_than_the_clock_moves_the_time_seen_forward() {
        let (signer, ring) = signer_and_ring();
        let dir = tempfile::tempdir().unwrap();
        let verifier = OfflineVerifier::new(ring).with_state_file(state_in(&dir));
        // The server's clock is two minutes ahead: within tolerance, and its iat becomes the time seen.
        verifier.verify_at(at(T0), &file(&signer, T0 + 120, T0 + 86_400, None), None).unwrap();
        assert_eq!(stored(&state_in(&dir)), T0 + 120);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_and_is_left_alone() {
        let (signer, ring) = signer_and_ring();
        let dir = tempfile::tempdir().unwrap();
        let path = state_in(&dir);
        let verifier = OfflineVerifier::new(ring).with_state_file(&path);
        let good = file(&signer, T0, T0 + 86_400, None);
        for corrupt in [&b"{\"last_seen\": \"yesterday\"}"[..], b"", b"not json", b"{\"last_seen\": 99999999999999999}"]
        {
            fs::write(&path, corrupt).unwrap();
            let err = verifier.verify_at(at(T0 + 60), &good, None).unwrap_err();
            assert!(matches!(&err, Error::State(message) if message.contains("corrupt")), "{err:?}");
            assert_eq!(fs::read(&path).unwrap(), corrupt, "a corrupt state file must not be reset");
        }
        // Going online once repairs it.
        verifier.record_server_time(at(T0 + 30)).unwrap();
        verifier.verify_at(at(T0 + 60), &good, None).unwrap();
        assert_eq!(stored(&path), T0 + 60);
    }

    #[test]
    fn the_server_time_can_undo_a_clock_that_once_ran_far_ahead() {
        let (signer, ring) = signer_and_ring();
        let dir = tempfile::tempdir().unwrap();
        let verifier = OfflineVerifier::new(ring).with_state_file(state_in(&dir));
        let good = file(&signer, T0, T0 + 86_400, None);
        let _ = verifier.verify_at(at(T0 + 10 * 86_400), &good, None);
        assert!(is_rollback(verifier.verify_at(at(T0 + 60), &good, None)));
        verifier.record_server_time(at(T0 + 50)).unwrap();
        verifier.verify_at(at(T0 + 60), &good, None).unwrap();
    }

    #[test]
    fn the_state_is_written_whole_through_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_in(&dir);
        write_state(&path, T0).unwrap();
        write_state(&path, T0 + 1).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{{\"last_seen\":{}}}", T0 + 1));
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("license-state.json")], "no temporary file is left");
    }

    #[test]
    fn a_state_that_cannot_be_written_is_an_error_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the state file should be: the rename fails.
        let path = state_in(&dir);
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"x").unwrap();
        assert!(matches!(write_state(&path, T0), Err(Error::State(_))));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(matches!(read_state(&path), Err(Error::State(_))));
    }

    #[test]
    fn without_a_state_file_nothing_is_written() {
        let (signer, ring) = signer_and_ring();
        let verifier = OfflineVerifier::new(ring);
        let good = file(&signer, T0, T0 + 86_400, None);
        verifier.verify_at(at(T0 + 60), &good, None).unwrap();
        verifier.verify_at(at(T0 + 30), &good, None).unwrap();
        assert_eq!(verifier.last_seen().unwrap(), None);
        verifier.record_server_time(at(T0)).unwrap();
    }

    #[test]
    fn the_core_checks_still_apply() {
        let (signer, ring) = signer_and_ring();
        let dir = tempfile::tempdir().unwrap();
        let verifier = OfflineVerifier::new(ring).with_state_file(state_in(&dir));
        let bound = file(&signer, T0, T0 + 86_400, Some("dev-1"));
        assert!(matches!(
            verifier.verify_at(at(T0 + 60), &bound, Some("dev-2")),
            Err(Error::Offline(OfflineError::FingerprintMismatch))
        ));
        let (stranger, _) = signer_and_ring();
        let mut stranger = stranger;
        stranger.kid = format!("{}-other", signer.kid);
        assert!(matches!(
            verifier.verify_at(at(T0 + 60), &file(&stranger, T0, T0 + 86_400, None), None),
            Err(Error::Offline(OfflineError::UnknownKey(_)))
        ));
        let mut tampered: serde_json::Value = serde_json::from_slice(&bound).unwrap();
        let other = file(&signer, T0, T0 + 2 * 86_400, Some("dev-1"));
        let other: serde_json::Value = serde_json::from_slice(&other).unwrap();
        tampered["payload"] = other["payload"].clone();
        let tampered = serde_json::to_vec(&tampered).unwrap();
        assert!(matches!(
            verifier.verify_at(at(T0 + 60), &tampered, None),
            Err(Error::Offline(OfflineError::BadSignature))
        ));
    }
}
