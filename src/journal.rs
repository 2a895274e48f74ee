//! The refresh journal: the moment a provider answers a refresh, the new tokens are written
//! here (0600 file in a 0700 dir, fsync) before Doppler is written, and blanked once Doppler
//! holds them. A journal left behind (Doppler down, process killed) is pushed to Doppler by
//! the next command, so a rotated refresh token is never lost.
//!
//! The file is a slot of [`SLOT`] bytes, reserved (written and fsynced) before a refresh token
//! is spent and kept afterwards, blank (spaces) when nothing is pending: the answer is written
//! into blocks the disk already gave, so a disk that filled up meanwhile cannot refuse it.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, FileOp, Result};
use crate::state;
use crate::token::{ExpirySource, TokenSet};

/// One pending write.
pub(crate) struct Pending {
    pub tokens: TokenSet,
    /// The refresh token that was spent to get `tokens`.
    pub spent: SecretString,
    /// The lease value this machine held, to release it.
    pub lease: Option<String>,
    /// A sign-in's tokens (not a refresh's): `spent` is then the refresh token Doppler held
    /// before it ("" for none), and they land only while Doppler still holds that one.
    pub new_grant: bool,
}

#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    provider: String,
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<i64>,
    spent_refresh_token: String,
    lease: Option<String>,
    #[serde(default)]
    new_grant: bool,
    #[serde(default)]
    refresh_expires_at: Option<i64>,
}

/// The size of a journal slot: room for the largest token set seen (JWTs of a few kB each).
const SLOT: usize = 32 * 1024;

/// The journal file of one (Doppler target, provider).
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    pub path: PathBuf,
}

impl Journal {
    /// The journal of `key` in `state`.
    pub(crate) fn new(state: &state::StateDir, key: &state::Key) -> Journal {
        Journal {
            path: state.journal_path(key),
        }
    }

    /// Writes the pending tokens durably.
    pub(crate) fn save(&self, provider: &str, pending: &Pending) -> Result<()> {
        let record = Record {
            version: 1,
            provider: provider.to_string(),
            access_token: pending.tokens.access_token.expose_secret().to_string(),
            refresh_token: pending
                .tokens
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_string()),
            expires_at: pending.tokens.expires_at,
            spent_refresh_token: pending.spent.expose_secret().to_string(),
            lease: pending.lease.clone(),
            new_grant: pending.new_grant,
            refresh_expires_at: pending.tokens.refresh_expires_at,
        };
        let json = SecretString::from(
            serde_json::to_string(&record).expect("a journal record serializes"),
        );
        let dir = self.path.parent().expect("journal has a directory");
        state::private_dir(dir)?;
        let bytes = json.expose_secret().as_bytes();
        let written = if crate::refresh::injected_fault("journal-write") {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (OAUTH_PKCE_TEST_FAULT)",
            ))
        } else if bytes.len() <= SLOT && self.slot_len() == Some(SLOT as u64) {
            self.fill_slot(bytes)
        } else {
            state::write_private(&self.path, bytes)
        };
        written.map_err(|source| Error::StateFile {
            op: FileOp::Write,
            path: self.path.clone(),
            source,
        })
    }

    /// Makes sure the slot exists, so that [`Journal::save`] writes into blocks already
    /// given (call it before spending a refresh token). A pending journal is left alone.
    pub(crate) fn reserve(&self) -> Result<()> {
        let io = |source| Error::StateFile {
            op: FileOp::Write,
            path: self.path.clone(),
            source,
        };
        if self.slot_len().is_some() {
            return Ok(());
        }
        let dir = self.path.parent().expect("journal has a directory");
        state::private_dir(dir)?;
        if crate::refresh::injected_fault("journal-reserve") {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (OAUTH_PKCE_TEST_FAULT)",
            )));
        }
        state::write_private(&self.path, &[b' '; SLOT]).map_err(io)
    }

    /// The journal file's length, when it is a regular file.
    fn slot_len(&self) -> Option<u64> {
        std::fs::symlink_metadata(&self.path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Overwrites the slot in place with `bytes`, padded with spaces to its size, and syncs.
    fn fill_slot(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut file = state::open_private(&self.path)?;
        let mut slot = vec![b' '; SLOT];
        slot[..bytes.len()].copy_from_slice(bytes);
        file.rewind()?;
        file.write_all(&slot)?;
        file.sync_all()
    }

    /// Whether a journal is pending (a local check of its first byte; a blank slot is none).
    pub(crate) fn exists(&self) -> bool {
        let mut first = [0u8; 1];
        std::fs::File::open(&self.path)
            .and_then(|mut f| f.read(&mut first))
            .is_ok_and(|n| n == 1 && first[0] != b' ')
    }

    /// The pending tokens, if a journal is there.
    pub(crate) fn load(&self) -> Result<Option<Pending>> {
        let Some(bytes) = state::read_private(&self.path).map_err(|source| Error::StateFile {
            op: FileOp::Read,
            path: self.path.clone(),
            source,
        })?
        else {
            return Ok(None);
        };
        if bytes.iter().all(|b| *b == b' ') {
            return Ok(None);
        }
        let record: Record = serde_json::from_slice(&bytes).map_err(|_| {
            Error::Config(format!(
                "{} is not a journal oauth-pkce can read; move it away",
                self.path.display()
            ))
        })?;
        let secrets = [Some(&record.access_token), record.refresh_token.as_ref()];
        for secret in secrets.into_iter().flatten() {
            crate::text::conceal(secret);
        }
        crate::text::conceal(&record.spent_refresh_token);
        let expiry_source = if record.expires_at.is_some() {
            ExpirySource::ExpiresIn
        } else {
            ExpirySource::Unknown
        };
        Ok(Some(Pending {
            tokens: TokenSet {
                access_token: SecretString::from(record.access_token),
                refresh_token: record.refresh_token.map(SecretString::from),
                expires_at: record.expires_at,
                expiry_source,
                refresh_expires_at: record.refresh_expires_at,
                warning: None,
            },
            spent: SecretString::from(record.spent_refresh_token),
            lease: record.lease,
            new_grant: record.new_grant,
        }))
    }

    /// Blanks the slot (the tokens overwritten, the blocks kept for the next refresh); a
    /// journal of another size is removed.
    pub(crate) fn remove(&self) {
        if self.slot_len() == Some(SLOT as u64) {
            match self.fill_slot(&[]) {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!("could not blank the journal {}: {e}", self.path.display())
                }
            }
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("could not remove the journal {}: {e}", self.path.display());
            }
        }
    }
}
