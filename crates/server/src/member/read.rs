//! Linearizable reads (etcd's linearizableReadLoop): a read waits until this member has
//! applied everything the leader had committed when the read began (raft ReadIndex).
//! Concurrent readers share one ReadIndex round: whoever arrives while a round is in
//! flight joins the next one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;

use tokio::sync::watch;

use chorus_api::etcdserverpb::{RangeRequest, RangeResponse, TxnRequest, TxnResponse};

use super::{Member, Who};
use crate::error::EtcdError;
use crate::kv::{self, PinnedRead};
use crate::raft::RaftInput;
use crate::range_body::{self, RangeAnswer, StreamedRange};
use crate::range_stream::RangeChunks;

impl Member {
    /// A Range as etcd serves it: ReadIndex first unless serializable (which is all a
    /// learner may do), then the caller's read permission, the read at one revision, and
    /// a check that the auth store did not change meanwhile (etcd's doSerialize).
    pub async fn range(&self, who: Who<'_>, r: &RangeRequest) -> Result<RangeResponse, EtcdError> {
        let started = Instant::now();
        let result = self.range_timed(who, r).await;
        if let Ok(resp) = &result {
            let summary = || {
                format!(
                    "range_response_count:{} size:{}",
                    resp.kvs.len(),
                    resp.encoded_len()
                )
            };
            self.warn_if_slow(started, "read-only range ", summary);
        }
        result
    }

    async fn range_timed(
        &self,
        who: Who<'_>,
        r: &RangeRequest,
    ) -> Result<RangeResponse, EtcdError> {
        self.range_barrier(r).await?;
        self.auth.check_range(who, r)?;
        let kv = self.kv();
        let mut resp = kv::range(&PinnedRead::new(&kv), r)?;
        self.auth.check_revision_unchanged(who)?;
        self.fill_header(&mut resp.header);
        Ok(resp)
    }

    /// A Range for the gRPC API: a big plain range is answered with its records as
    /// stored, written to the client as they are read ([`crate::range_body`]); any
    /// other the way [`Member::range`] answers it.
    pub async fn range_answer(
        &self,
        who: Who<'_>,
        r: &RangeRequest,
    ) -> Result<RangeAnswer, EtcdError> {
        if !range_body::streamable(r) {
            return self.range(who, r).await.map(RangeAnswer::Whole);
        }
        let started = Instant::now();
        self.range_barrier(r).await?;
        self.auth.check_range(who, r)?;
        let kv = self.kv();
        let (records, more) = PinnedRead::new(&kv).records(r)?;
        self.auth.check_revision_unchanged(who)?;
        let mut header = kv::header(records.rev);
        self.fill_header(&mut header);
        let (n, count) = (records.len(), records.count as i64);
        let answer = if n < range_body::STREAM_MIN_RECORDS {
            let kvs = records.decode()?;
            RangeAnswer::Whole(RangeResponse {
                header,
                kvs,
                more,
                count,
            })
        } else {
            let header = header.unwrap_or_default();
            RangeAnswer::Streamed(StreamedRange::new(&header, records, more, count)?)
        };
        let summary = || format!("range_response_count:{n}");
        self.warn_if_slow(started, "read-only range ", summary);
        Ok(answer)
    }

    /// A RangeStream (etcd 3.7): the same checks as a Range, then its chunks, read one
    /// at a time by the caller.
    pub async fn range_stream(
        &self,
        who: Who<'_>,
        r: RangeRequest,
    ) -> Result<RangeChunks, EtcdError> {
        self.range_barrier(&r).await?;
        self.auth.check_range(who, &r)?;
        let target = self.limits.max_request_bytes;
        Ok(RangeChunks::new(self.kv(), r, target))
    }

    /// What a range waits for: ReadIndex unless serializable (which is all a learner may
    /// do).
    async fn range_barrier(&self, r: &RangeRequest) -> Result<(), EtcdError> {
        if r.serializable {
            return Ok(());
        }
        if self.is_learner() {
            return Err(EtcdError::NotSupportedForLearner);
        }
        self.linearizable_read().await
    }

    /// A txn that only reads, served here (ReadIndex first unless every range in it is
    /// serializable); the caller must be allowed every compare and range in it.
    pub async fn read_txn(&self, who: Who<'_>, r: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        let started = Instant::now();
        let result = self.read_txn_timed(who, r).await;
        if let Ok(resp) = &result {
            let summary = || format!("size:{}", resp.encoded_len());
            self.warn_if_slow(started, "read-only txn ", summary);
        }
        result
    }

    async fn read_txn_timed(&self, who: Who<'_>, r: &TxnRequest) -> Result<TxnResponse, EtcdError> {
        if !kv::is_txn_serializable(r) {
            self.linearizable_read().await?;
        }
        self.auth.check_txn(who, r, &chorus_auth::NoLeases)?;
        let kv = self.kv();
        let mut resp = kv::read_only_txn(&PinnedRead::new(&kv), r)?;
        self.auth.check_revision_unchanged(who)?;
        self.fill_header(&mut resp.header);
        Ok(resp)
    }

    /// etcd's warnOfExpensiveReadOnlyRangeRequest: a read slower than
    /// `--warning-unary-request-duration` is logged with etcd's message.
    fn warn_if_slow(&self, started: Instant, prefix: &str, response: impl FnOnce() -> String) {
        let took = started.elapsed();
        let expected = self.limits.warning_unary_request_duration;
        if took > expected {
            tracing::warn!(
                took = %chorus_log::GoDuration(took),
                expected_duration = %chorus_log::GoDuration(expected),
                prefix,
                response = %response(),
                "apply request took too long"
            );
        }
    }

    /// Waits until this member has applied everything the leader had committed when the
    /// call began.
    pub async fn linearizable_read(&self) -> Result<(), EtcdError> {
        if self.is_stopping() {
            return Err(EtcdError::Stopped);
        }
        let mut rx = {
            let mut pending = self.reads.pending.lock();
            pending
                .get_or_insert_with(|| watch::channel(None).0)
                .subscribe()
        };
        self.reads.kick();
        let result = rx.wait_for(|r| r.is_some()).await.map(|r| r.clone());
        match result {
            Ok(r) => r.expect("checked by wait_for"),
            Err(_) => Err(EtcdError::Stopped),
        }
    }

    /// The batching loop behind `linearizable_read`.
    pub(super) async fn read_loop(self: Arc<Self>) {
        loop {
            self.reads.kick.notified().await;
            if self.is_stopping() {
                if let Some(round) = self.reads.pending.lock().take() {
                    let _ = round.send(Some(Err(EtcdError::Stopped)));
                }
                return;
            }
            let Some(round) = self.reads.pending.lock().take() else {
                continue;
            };
            let result = self.read_index_once().await;
            let _ = round.send(Some(result));
        }
    }

    async fn read_index_once(&self) -> Result<(), EtcdError> {
        let deadline = tokio::time::Instant::now() + self.limits.request_timeout;
        let index = self.read_index(deadline).await.inspect_err(|_| {
            chorus_metrics::READ_INDEXES_FAILED.inc();
        })?;
        let mut applied = self.applied.clone();
        let caught_up = async { applied.wait_for(|a| *a >= index).await.map(|_| ()) };
        match tokio::time::timeout_at(deadline, caught_up).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::TimeoutWaitAppliedIndex),
        }
    }

    /// The leader's commit index as of now, asked through raft.
    async fn read_index(&self, deadline: tokio::time::Instant) -> Result<u64, EtcdError> {
        let ctx = self.ids.next();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.status.reads.lock().insert(ctx, tx);
        loop {
            let asked = self
                .raft_tx
                .send_when_room(RaftInput::ReadIndex { ctx })
                .await;
            if asked.is_err() {
                return Err(EtcdError::Stopped);
            }
            // raft drops a ReadIndex while there is no leader; ask again, as etcd does.
            let retry = (tokio::time::Instant::now() + Duration::from_millis(500)).min(deadline);
            match tokio::time::timeout_at(retry, &mut rx).await {
                Ok(Ok(index)) => return Ok(index),
                Ok(Err(_)) => return Err(EtcdError::Stopped),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    chorus_metrics::SLOW_READ_INDEXES.inc();
                    self.status.reads.lock().remove(&ctx);
                    return Err(EtcdError::Timeout);
                }
                // No answer within the retry time: etcd counts a slow read index.
                Err(_) => chorus_metrics::SLOW_READ_INDEXES.inc(),
            }
        }
    }
}
