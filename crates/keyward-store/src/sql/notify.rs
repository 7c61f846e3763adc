//! Cross-node cache invalidation on PostgreSQL: license changes are announced with NOTIFY in
//! their transaction (delivered on commit) and heard here with LISTEN.

use super::{redact_url, SqlStore};
use crate::{Backend, Result, StoreError};
use futures::Stream;
use sqlx::postgres::PgListener;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The channel every change is announced on (see `Backend::announce_statement`).
pub const LICENSE_CHANNEL: &str = "keyward_license";

/// What another node's write means for this node's license cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheInvalidation {
    /// This license was created, changed or deleted.
    License { environment: String, key: String },
    /// Many licenses were created at once: forget the keys remembered as unknown.
    NewLicenses { environment: String },
    /// The listener lost its connection and may have missed changes: forget everything.
    Everything,
}

impl CacheInvalidation {
    fn from_payload(payload: &str) -> Self {
        match payload.split_once(':') {
            // Environment names have no `:`, so the first one ends the environment.
            Some((environment, key)) => {
                CacheInvalidation::License { environment: environment.to_owned(), key: key.to_owned() }
            }
            None => CacheInvalidation::NewLicenses { environment: payload.to_owned() },
        }
    }
}

/// License changes made by any node, as they commit. Ends listening when dropped.
pub struct LicenseChanges {
    receiver: mpsc::Receiver<CacheInvalidation>,
    task: JoinHandle<()>,
}

impl LicenseChanges {
    /// The next change; `None` only once the listener stopped for good (it never does by itself).
    pub async fn recv(&mut self) -> Option<CacheInvalidation> {
        self.receiver.recv().await
    }
}

impl Stream for LicenseChanges {
    type Item = CacheInvalidation;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

impl Drop for LicenseChanges {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(url: &str) -> Result<PgListener> {
    let connecting = async {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(LICENSE_CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match tokio::time::timeout(Duration::from_secs(5), connecting).await {
        Ok(listener) => Ok(listener?),
        Err(_) => Err(StoreError::Database(sqlx::Error::Configuration(
            format!("cannot listen at {}: no answer within 5 s", redact_url(url)).into(),
        ))),
    }
}

/// Relays notifications; after a lost connection it reconnects and then says `Everything`,
/// since what was announced in between is lost.
async fn relay(url: String, first: PgListener, sender: mpsc::Sender<CacheInvalidation>) {
    let mut listener = Some(first);
    loop {
        let Some(connected) = listener.as_mut() else {
            match listen(&url).await {
                Ok(fresh) => {
                    listener = Some(fresh);
                    if sender.send(CacheInvalidation::Everything).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "license change listener cannot reconnect; retrying");
                    tokio::select! {
                        _ = sender.closed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
            continue;
        };
        let heard = tokio::select! {
            _ = sender.closed() => return,
            heard = connected.try_recv() => heard,
        };
        match heard {
            Ok(Some(notification)) => {
                if sender.send(CacheInvalidation::from_payload(notification.payload())).await.is_err() {
                    return;
                }
            }
            Ok(None) | Err(_) => {
                tracing::warn!("license change listener lost its connection; reconnecting");
                listener = None;
            }
        }
    }
}

impl SqlStore {
    /// Every node's license changes as they commit, to invalidate caches; `None` on SQLite,
    /// where this process is the only writer. Listening has begun when this returns.
    pub async fn license_changes(&self) -> Result<Option<LicenseChanges>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let listener = listen(&self.url).await?;
        let (sender, receiver) = mpsc::channel(1024);
        let task = tokio::spawn(relay(self.url.to_string(), listener, sender));
        Ok(Some(LicenseChanges { receiver, task }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(
            CacheInvalidation::from_payload("production:AB:CD"),
            CacheInvalidation::License { environment: "production".into(), key: "AB:CD".into() }
        );
        assert_eq!(
            CacheInvalidation::from_payload("staging"),
            CacheInvalidation::NewLicenses { environment: "staging".into() }
        );
    }
}
