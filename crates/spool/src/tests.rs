//! Spool behaviour tests: durability contract, recovery, tails, reclamation, faults.

use std::path::Path;

use proptest::prelude::*;

use crate::record::{self, Framed, Record};
use crate::*;

fn config(dir: &Path, segment_bytes_max: u64) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        segment_bytes_max,
        batch_bytes_max: 4 << 20,
    }
}

fn envelope(rcpts: usize) -> Envelope {
    Envelope {
        sender: "s@example.com".into(),
        recipients: (0..rcpts)
            .map(|i| Recipient {
                address: format!("r{i}@example.net"),
                notify: 2,
                orcpt: None,
            })
            .collect(),
        dsn_ret: 1,
        dsn_envid: Some("env".into()),
        flags: Envelope::FLAG_8BITMIME,
        received_ms: 1,
        client_ip: "127.0.0.1".into(),
        helo: "client".into(),
        auth_user: None,
        not_before_ms: 0,
        attributes: None,
    }
}

fn body(n: usize) -> Vec<u8> {
    format!("Subject: {n}\r\n\r\n{}\r\n", "x".repeat(n % 500)).into_bytes()
}

/// Inserts one message and waits for it to be durable.
fn insert_now(
    rt: &tokio::runtime::Runtime,
    spool: &Spool,
    id: MessageId,
    envelope: Envelope,
    content: Vec<u8>,
) {
    rt.block_on(spool.insert(id, envelope, content))
        .expect("insert");
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn insert_read_remove_and_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (spool, report) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    assert_eq!(report.messages, 0);
    let ids: Vec<MessageId> = (0..50).map(|_| spool.next_id()).collect();
    rt.block_on(async {
        for (n, id) in ids.iter().enumerate() {
            spool
                .insert(*id, envelope(3), body(n))
                .await
                .expect("insert");
        }
        spool
            .recipients_done(ids[1], vec![0, 2])
            .await
            .expect("done");
        spool.remove(ids[0]).await.expect("remove");
    });
    let (env, content, done) = spool.read(ids[1]).expect("read");
    assert_eq!(env, envelope(3));
    assert_eq!(content, body(1));
    assert_eq!(done, vec![true, false, true]);
    spool.shutdown();

    let (spool, report) = Spool::open(&config(dir.path(), 1 << 20)).expect("reopen");
    assert_eq!(report.messages, 49);
    assert!(matches!(spool.read(ids[0]), Err(SpoolError::NotFound)));
    assert_eq!(spool.read(ids[1]).expect("read").2, vec![true, false, true]);
    for (n, id) in ids.iter().enumerate().skip(1) {
        assert_eq!(spool.read(*id).expect("read").1, body(n));
    }
    assert_eq!(spool.totals().recipients_pending, 49 * 3 - 2);
    assert!(
        spool.next_id() > ids[49],
        "ids stay ordered across restarts"
    );
    let listed = spool.list(None, 10);
    assert_eq!(listed.len(), 10);
    assert_eq!(listed[0].id, ids[1]);
    assert_eq!(spool.list(Some(ids[10]), 100).len(), 39);
}

#[test]
fn arrivals_are_announced_after_they_are_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    let before = spool.next_id();
    insert_now(&rt, &spool, before, envelope(1), body(0));
    // A budget for two of these records in memory at once.
    let record_bytes = |n: usize| {
        let mut bytes = Vec::new();
        let (id, envelope, content) = (before, envelope(1), body(n));
        record::encode(
            &Record::Message {
                id,
                envelope,
                content,
            },
            &mut bytes,
        );
        bytes.len()
    };
    let mut arrivals = spool.subscribe_arrivals(record_bytes(0) + record_bytes(1));
    let ids: Vec<MessageId> = (0..5).map(|_| spool.next_id()).collect();
    let mut kept = Vec::new();
    rt.block_on(async {
        for (n, id) in ids.iter().enumerate() {
            spool
                .insert(*id, envelope(1), body(n))
                .await
                .expect("insert");
        }
        for (n, id) in ids.iter().enumerate() {
            let arrival = arrivals.recv().await.expect("arrival");
            assert_eq!(arrival.id, *id, "announced once, in commit order");
            if n < 2 {
                let stored = arrival.stored.expect("within the budget");
                assert_eq!(stored.content(), &body(n)[..]);
                assert_eq!(stored.envelope().expect("envelope"), envelope(1));
                kept.push(stored);
            } else {
                assert!(arrival.stored.is_none(), "beyond the budget: id only");
            }
        }
        // Dropping a record gives its bytes back to the budget.
        kept.clear();
        let late = spool.next_id();
        spool
            .insert(late, envelope(1), body(0))
            .await
            .expect("insert");
        let arrival = arrivals.recv().await.expect("arrival");
        assert_eq!(arrival.id, late);
        assert!(arrival.stored.is_some());
    });
    assert!(
        arrivals.try_recv().is_err(),
        "messages from before the subscription are not announced"
    );
    // At start-up a consumer lists what is already queued, then follows arrivals.
    assert_eq!(spool.list(None, usize::MAX).len(), 7);
}

fn segment_files(dir: &Path) -> Vec<u64> {
    segment::list(dir).expect("list")
}

#[test]
fn torn_and_corrupt_tails_are_dropped_without_losing_earlier_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 30)).expect("open");
    let ids: Vec<MessageId> = (0..10).map(|_| spool.next_id()).collect();
    rt.block_on(async {
        for (n, id) in ids.iter().enumerate() {
            spool
                .insert(*id, envelope(1), body(n))
                .await
                .expect("insert");
        }
    });
    spool.shutdown();
    let last = *segment_files(dir.path()).last().expect("segment");
    let path = segment::path(dir.path(), last);
    let full = std::fs::read(&path).expect("read");
    // Tear the last record in half, as a crash mid-write would.
    let torn_len = full.len() - 40;
    std::fs::write(&path, &full[..torn_len]).expect("write");
    let (spool, report) = Spool::open(&config(dir.path(), 1 << 30)).expect("reopen");
    assert_eq!(report.messages, 9);
    assert!(report.dropped_bytes > 0);
    for (n, id) in ids.iter().enumerate().take(9) {
        assert_eq!(spool.read(*id).expect("kept").1, body(n));
    }
    spool.shutdown();

    // Flip a byte inside the (now last-but-one) segment's final record: checksum catches it.
    let path = segment::path(dir.path(), last);
    let mut data = std::fs::read(&path).expect("read");
    let n = data.len();
    data[n - 5] ^= 0xff;
    std::fs::write(&path, &data).expect("write");
    let (spool, report) = Spool::open(&config(dir.path(), 1 << 30)).expect("reopen");
    assert_eq!(report.messages, 8);
    assert!(spool.read(ids[7]).is_ok());
    spool.shutdown();
}

#[test]
fn finished_segments_are_deleted_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    // Tiny segments so that every batch rotates.
    let (spool, _) = Spool::open(&config(dir.path(), 64)).expect("open");
    let ids: Vec<MessageId> = (0..6).map(|_| spool.next_id()).collect();
    rt.block_on(async {
        for (n, id) in ids.iter().enumerate() {
            spool
                .insert(*id, envelope(1), body(n))
                .await
                .expect("insert");
        }
        // Remove all but the first: its segment pins every later tombstone segment.
        for id in &ids[1..] {
            spool.remove(*id).await.expect("remove");
        }
    });
    let before = segment_files(dir.path()).len();
    rt.block_on(async { spool.remove(ids[0]).await.expect("remove") });
    // Force one more rotation so that the segment holding the last tombstone is sealed.
    insert_now(&rt, &spool, spool.next_id(), envelope(1), body(1));
    let after = segment_files(dir.path()).len();
    assert!(
        after < before && after <= 2,
        "segments before {before}, after {after}"
    );
    spool.shutdown();
    let (_, report) = Spool::open(&config(dir.path(), 64)).expect("reopen");
    assert_eq!(report.messages, 1, "removed messages must not come back");
}

#[test]
fn fsync_failure_poisons_and_never_acknowledges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    let ok = spool.next_id();
    insert_now(&rt, &spool, ok, envelope(1), body(1));
    spool.inject(Some(DurabilityFault::FsyncFails));
    let failed = spool.next_id();
    let result = rt.block_on(spool.insert(failed, envelope(1), body(2)));
    assert!(matches!(result, Err(SpoolError::Poisoned)), "{result:?}");
    spool.inject(None);
    // Even with the disk healthy again, nothing is acknowledged until a restart.
    let later = rt.block_on(spool.insert(spool.next_id(), envelope(1), body(3)));
    assert!(matches!(later, Err(SpoolError::Poisoned)));
    assert!(spool.is_poisoned());
    spool.shutdown();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("reopen");
    assert!(spool.read(ok).is_ok());
    assert!(!spool.is_poisoned());
}

#[test]
fn concurrent_inserts_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let (spool, _) = Spool::open(&config(dir.path(), 64 << 20)).expect("open");
    let count = 2000;
    rt.block_on(async {
        let tasks: Vec<_> = (0..count)
            .map(|n| {
                let spool = spool.clone();
                tokio::spawn(
                    async move { spool.insert(spool.next_id(), envelope(1), body(n)).await },
                )
            })
            .collect();
        for task in tasks {
            task.await.expect("join").expect("insert");
        }
    });
    let fsyncs = spool.fsync_count();
    assert!(
        fsyncs < count as u64 / 2,
        "{fsyncs} fsyncs for {count} concurrent inserts"
    );
    assert_eq!(spool.totals().messages, count as u64);
}

/// ENOSPC from a real, size-limited tmpfs. Needs mount rights (root); CI runs as root.
#[test]
fn disk_full_rejects_then_recovers_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(mount)
        .status()
        .expect("run mount");
    assert!(
        status.success(),
        "mounting a tmpfs needs root: run the suite as CI does"
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mount);
    let ballast = mount.join("ballast");
    std::fs::write(&ballast, vec![0u8; 400 << 10]).expect("ballast");
    let spool_dir = mount.join("spool");
    let rt = rt();
    let (spool, _) = Spool::open(&config(&spool_dir, 256 << 10)).expect("open");
    let mut acked = Vec::new();
    let mut full = false;
    for n in 0..1000 {
        let id = spool.next_id();
        match rt.block_on(spool.insert(id, envelope(1), vec![b'x'; 8 << 10])) {
            Ok(()) => acked.push(id),
            Err(SpoolError::NoSpace) => {
                full = true;
                break;
            }
            Err(other) => panic!("unexpected error after {n} inserts: {other}"),
        }
    }
    assert!(full, "the tmpfs never filled up");
    assert!(!spool.is_poisoned(), "ENOSPC must not poison the spool");
    std::fs::remove_file(&ballast).expect("free space");
    let id = spool.next_id();
    rt.block_on(spool.insert(id, envelope(1), vec![b'y'; 8 << 10]))
        .expect("accepts again once space is free");
    acked.push(id);
    spool.shutdown();
    let (spool, report) = Spool::open(&config(&spool_dir, 256 << 10)).expect("reopen");
    assert_eq!(report.messages as usize, acked.len());
    for id in acked {
        assert!(spool.read(id).is_ok());
    }
    spool.shutdown();
}

fn any_envelope() -> impl Strategy<Value = Envelope> {
    let rcpt = (
        "[a-z@.]{1,20}",
        any::<u8>(),
        proptest::option::of("[ -~]{0,20}"),
    )
        .prop_map(|(address, notify, orcpt)| Recipient {
            address,
            notify,
            orcpt,
        });
    (
        "[ -~]{0,30}",
        proptest::collection::vec(rcpt, 0..5),
        any::<u8>(),
        proptest::option::of("[ -~]{0,10}"),
        any::<u8>(),
        any::<u64>(),
        proptest::option::of("\\PC{0,10}"),
        // Mostly without the optional tail, as SMTP mail is stored.
        prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
        proptest::option::of("\\PC{0,30}"),
    )
        .prop_map(
            |(
                sender,
                recipients,
                dsn_ret,
                dsn_envid,
                flags,
                received_ms,
                auth_user,
                not_before_ms,
                attributes,
            )| Envelope {
                sender,
                recipients,
                dsn_ret,
                dsn_envid,
                flags,
                received_ms,
                client_ip: "::1".into(),
                helo: "h".into(),
                auth_user,
                not_before_ms,
                attributes,
            },
        )
}

proptest! {
    #[test]
    fn record_codec_roundtrips(envelope in any_envelope(), content in proptest::collection::vec(any::<u8>(), 0..300),
                               id in any::<u128>(), indices in proptest::collection::vec(any::<u32>(), 0..10)) {
        for rec in [
            Record::Message { id: MessageId(id), envelope: envelope.clone(), content: content.clone() },
            Record::RecipientsDone { id: MessageId(id), indices: indices.clone() },
            Record::Removed { id: MessageId(id) },
        ] {
            let mut bytes = Vec::new();
            record::encode(&rec, &mut bytes);
            let Framed::Ok { kind, payload, len } = record::frame(&bytes) else { panic!("frame") };
            prop_assert_eq!(len, bytes.len());
            prop_assert_eq!(record::decode(kind, payload, true).expect("decode"), rec);
        }
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Framed::Ok { kind, payload, .. } = record::frame(&bytes) {
            let _ = record::decode(kind, payload, true);
        }
        let _ = Envelope::decode(&bytes);
    }
}

#[test]
fn envelope_only_reads_match_full_reads_for_small_and_huge_envelopes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    let rt = rt();
    // 3 recipients fit in the head read; 500 do not and take the full read.
    for rcpts in [3, 500] {
        let id = spool.next_id();
        insert_now(&rt, &spool, id, envelope(rcpts), body(700));
        rt.block_on(spool.recipients_done(id, vec![1]))
            .expect("done");
        let (full, content, done) = spool.read(id).expect("read");
        let (head, head_done) = spool.envelope(id).expect("envelope");
        assert_eq!(head, full);
        assert_eq!(head_done, done);
        assert!(head_done[1] && !head_done[0]);
        assert_eq!(content, body(700));
    }
    assert!(matches!(
        spool.envelope(MessageId(42)),
        Err(SpoolError::NotFound)
    ));
    spool.shutdown();
}

#[test]
fn deferral_state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let id = {
        let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
        let id = spool.next_id();
        insert_now(&rt, &spool, id, envelope(2), body(3));
        rt.block_on(spool.deferred(id, 3, 1_795_000_000_000))
            .expect("deferred");
        let listed = spool.list(None, 10);
        assert_eq!(
            (listed[0].attempts, listed[0].next_attempt_ms),
            (3, 1_795_000_000_000)
        );
        spool.shutdown();
        id
    };
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("reopen");
    let listed = spool.list(None, 10);
    assert_eq!(listed[0].id, id);
    assert_eq!(
        (listed[0].attempts, listed[0].next_attempt_ms),
        (3, 1_795_000_000_000)
    );
    let mut bytes = Vec::new();
    let record = Record::Deferred {
        id,
        attempts: 7,
        next_attempt_ms: 42,
    };
    record::encode(&record, &mut bytes);
    let Framed::Ok { kind, payload, .. } = record::frame(&bytes) else {
        panic!("frame")
    };
    assert_eq!(record::decode(kind, payload, true).expect("decode"), record);
    spool.shutdown();
}

#[test]
fn bookkeeping_records_are_lazy_but_synced_soon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    let rt = rt();
    let (a, b) = (spool.next_id(), spool.next_id());
    insert_now(&rt, &spool, a, envelope(2), body(1));
    insert_now(&rt, &spool, b, envelope(1), body(2));
    let after_inserts = spool.fsync_count();
    rt.block_on(spool.recipients_done(a, vec![0]))
        .expect("done");
    rt.block_on(spool.remove(b)).expect("remove");
    assert_eq!(
        spool.fsync_count(),
        after_inserts,
        "answered without an fsync of their own"
    );
    assert!(
        spool.list(None, 10).iter().all(|m| m.id != b),
        "applied to the index at once"
    );
    // Synced soon after the lazy window, in one fsync for both records. (Polled with a
    // generous deadline: on a loaded machine the writer thread may wake late.)
    let deadline =
        std::time::Instant::now() + writer::LAZY_SYNC_MAX * 3 + std::time::Duration::from_secs(5);
    while spool.fsync_count() == after_inserts && std::time::Instant::now() < deadline {
        std::thread::sleep(writer::LAZY_SYNC_MAX / 4);
    }
    std::thread::sleep(writer::LAZY_SYNC_MAX * 2);
    assert_eq!(
        spool.fsync_count(),
        after_inserts + 1,
        "synced once after the lazy window"
    );
    // A durable insert also carries pending lazy records.
    rt.block_on(spool.remove(a)).expect("remove");
    let c = spool.next_id();
    insert_now(&rt, &spool, c, envelope(1), body(3));
    assert_eq!(spool.fsync_count(), after_inserts + 2);
    spool.shutdown();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("reopen");
    let ids: Vec<MessageId> = spool.list(None, 10).iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![c]);
    spool.shutdown();
}

#[test]
fn detached_records_ride_the_next_batch_or_land_within_the_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    let rt = rt();
    let ids: Vec<MessageId> = (0..4).map(|_| spool.next_id()).collect();
    for (n, id) in ids.iter().enumerate() {
        insert_now(&rt, &spool, *id, envelope(2), body(n));
    }
    let after_inserts = spool.fsync_count();
    // Alone: written and synced by the writer's own timer.
    spool.remove_detached(ids[0]).expect("remove");
    spool
        .recipients_done_detached(ids[1], vec![1])
        .expect("done");
    std::thread::sleep(writer::DETACHED_WAIT * 5);
    assert_eq!(spool.fsync_count(), after_inserts + 1, "one sync for both");
    let listed = spool.list(None, 10);
    assert!(listed.iter().all(|m| m.id != ids[0]), "removal applied");
    let second = listed.iter().find(|m| m.id == ids[1]).expect("listed");
    assert_eq!(second.recipients_pending, 1);
    // With traffic: carried by the next durable insert, no sync of their own.
    spool.remove_detached(ids[2]).expect("remove");
    let extra = spool.next_id();
    insert_now(&rt, &spool, extra, envelope(1), body(9));
    assert_eq!(spool.fsync_count(), after_inserts + 2);
    assert!(spool.list(None, 10).iter().all(|m| m.id != ids[2]));
    // Queued just before shutdown: still written.
    spool.remove_detached(ids[3]).expect("remove");
    spool.shutdown();
    assert!(matches!(
        spool.remove_detached(ids[1]),
        Err(SpoolError::ShutDown)
    ));
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("reopen");
    let left: Vec<(MessageId, u32)> = spool
        .list(None, 10)
        .iter()
        .map(|m| (m.id, m.recipients_pending))
        .collect();
    assert_eq!(left, vec![(ids[1], 1), (extra, 1)]);
    spool.shutdown();
}

/// A subscriber hears of exactly the inserts that returned after it subscribed, however the
/// writer thread's hand-off interleaves with the subscription (the notice follows the
/// answer, so without care one acknowledged before subscribing could still be announced).
#[test]
fn a_new_subscriber_never_hears_of_inserts_that_returned_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    spool.inject(Some(DurabilityFault::SlowAnnounce));
    for round in 0..10 {
        let before = spool.next_id();
        insert_now(&rt, &spool, before, envelope(1), body(round));
        let mut arrivals = spool.subscribe_arrivals(1 << 20);
        let after = spool.next_id();
        insert_now(&rt, &spool, after, envelope(1), body(round));
        let first = rt.block_on(arrivals.recv()).expect("arrival");
        assert_eq!(
            first.id, after,
            "round {round}: an earlier insert was announced"
        );
    }
}

/// Messages inserted while a subscriber listens are marked announced (it hears of them by
/// notice); those inserted before, or recovered at start-up, are not, so a subscriber
/// that lists the backlog after subscribing admits each message exactly once.
#[test]
fn listing_marks_what_notices_announce() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    let before = spool.next_id();
    insert_now(&rt, &spool, before, envelope(1), body(1));
    let mut arrivals = spool.subscribe_arrivals(1 << 20);
    let after = spool.next_id();
    insert_now(&rt, &spool, after, envelope(1), body(2));
    let listed: Vec<(MessageId, bool)> = spool
        .list(None, 10)
        .iter()
        .map(|m| (m.id, m.announced))
        .collect();
    assert_eq!(listed, [(before, false), (after, true)]);
    let heard = rt.block_on(arrivals.recv()).expect("notice");
    assert_eq!(heard.id, after);
    assert!(
        arrivals.try_recv().is_err(),
        "one notice, for the announced message only"
    );
    spool.shutdown();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("reopen");
    assert!(spool.list(None, 10).iter().all(|m| !m.announced));
    spool.shutdown();
}

/// A held message is durable but unseen by delivery (no notice, out of listings) until it is
/// released; a restart forgets the hold, so whoever holds must settle before delivery lists.
#[test]
fn held_messages_reach_delivery_only_when_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    let mut arrivals = spool.subscribe_arrivals(1 << 20);
    let held: Vec<MessageId> = (0..3).map(|_| spool.next_id()).collect();
    let plain = spool.next_id();
    rt.block_on(async {
        for (n, id) in held.iter().enumerate() {
            spool
                .insert_held(*id, envelope(1), &[], body(n))
                .await
                .expect("insert held");
        }
        spool
            .insert(plain, envelope(1), body(9))
            .await
            .expect("insert");
        let first = arrivals.recv().await.expect("arrival");
        assert_eq!(first.id, plain, "held messages are not announced");
    });
    assert!(arrivals.try_recv().is_err());
    assert!(
        spool.list(None, 10).iter().all(|m| m.announced),
        "a listing leaves held messages alone"
    );
    let gone = spool.next_id();
    spool.release(&[held[0], held[2], gone]);
    let released: Vec<MessageId> = std::iter::from_fn(|| arrivals.try_recv().ok())
        .map(|a| a.id)
        .collect();
    assert_eq!(released, vec![held[0], held[2]], "unknown ids are skipped");
    let (_, content, _) = spool.read(held[2]).expect("released message reads back");
    assert_eq!(content, body(2));
    spool.shutdown();
    drop(spool);
    // After a restart every message is an ordinary queued one again.
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("reopen");
    let listed: Vec<MessageId> = spool
        .list(None, 10)
        .iter()
        .filter(|m| !m.announced)
        .map(|m| m.id)
        .collect();
    assert_eq!(listed.len(), 4);
    assert!(held.iter().all(|id| listed.contains(id)));
}

/// An in-memory replica for the spool's side of the contract; it can refuse copies.
#[derive(Default)]
struct MemoryReplica {
    refuse: std::sync::atomic::AtomicBool,
    copies: std::sync::Mutex<std::collections::HashMap<MessageId, (Vec<u8>, bool)>>,
    done: std::sync::Mutex<Vec<(MessageId, Vec<u32>)>>,
    released: std::sync::Mutex<Vec<MessageId>>,
}

impl crate::Replica for MemoryReplica {
    fn store(&self, id: MessageId, record: Vec<u8>, held: bool) -> crate::ReplicaFuture {
        let refused = self.refuse.load(std::sync::atomic::Ordering::SeqCst);
        if !refused {
            self.copies.lock().unwrap().insert(id, (record, held));
        }
        Box::pin(async move {
            // The copy answers after the local fsync has long been done.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if refused {
                Err("no quorum".to_string())
            } else {
                Ok(())
            }
        })
    }
    fn recipients_done(&self, id: MessageId, indices: &[u32]) {
        self.done.lock().unwrap().push((id, indices.to_vec()));
    }
    fn release(&self, ids: &[MessageId]) {
        self.released.lock().unwrap().extend_from_slice(ids);
    }
    fn remove(&self, id: MessageId) {
        self.copies.lock().unwrap().remove(&id);
    }
}

#[test]
fn a_replicated_insert_is_delivered_only_when_the_replica_holds_it_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let (spool, _) = Spool::open(&config(dir.path(), 1 << 20)).expect("open");
    let replica = std::sync::Arc::new(MemoryReplica::default());
    assert!(spool.attach_replica(replica.clone()));
    assert!(!spool.attach_replica(replica.clone()), "once per spool");
    let mut arrivals = spool.subscribe_arrivals(1 << 20);

    // Both copies: acknowledged, then announced; the replica holds the very record bytes.
    let good = spool.next_id();
    rt.block_on(spool.insert(good, envelope(2), body(7)))
        .expect("insert");
    let arrival = rt.block_on(arrivals.recv()).expect("announced");
    assert_eq!(arrival.id, good);
    let (record, held) = replica.copies.lock().unwrap()[&good].clone();
    assert!(!held);
    let (id, env, content) = crate::decode_message(&record).expect("a whole record");
    assert_eq!((id, env, content), (good, envelope(2), body(7)));

    // The replica refuses: the sender hears an error, delivery never hears of the message.
    replica
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let bad = spool.next_id();
    let err = rt
        .block_on(spool.insert(bad, envelope(1), body(8)))
        .unwrap_err();
    assert!(matches!(err, SpoolError::Replica(_)), "{err}");
    rt.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(50)).await });
    assert!(
        arrivals.try_recv().is_err(),
        "a refused message is not delivered"
    );
    assert!(!spool.contains(bad), "the local copy is taken back");
    replica
        .refuse
        .store(false, std::sync::atomic::Ordering::SeqCst);

    // Bookkeeping follows: final recipients, release of held messages, removal.
    rt.block_on(spool.recipients_done(good, vec![1]))
        .expect("done");
    assert_eq!(replica.done.lock().unwrap()[0], (good, vec![1]));
    let campaign = spool.next_id();
    rt.block_on(spool.insert_held(campaign, envelope(1), &[], body(3)))
        .expect("held");
    assert!(replica.copies.lock().unwrap()[&campaign].1, "held travels");
    assert!(arrivals.try_recv().is_err());
    spool.release(&[campaign]);
    assert_eq!(*replica.released.lock().unwrap(), vec![campaign]);
    assert_eq!(rt.block_on(arrivals.recv()).expect("released").id, campaign);
    rt.block_on(spool.remove(good)).expect("remove");
    spool.remove_detached(campaign).expect("remove");
    assert!(replica.copies.lock().unwrap().is_empty());

    // A record read back from a replica goes in under its own id, once.
    let (other_dir, other) = (tempfile::tempdir().expect("tempdir"), record);
    let (second, _) = Spool::open(&config(other_dir.path(), 1 << 20)).expect("open");
    assert_eq!(
        rt.block_on(second.import(&other, false)).expect("import"),
        good
    );
    assert_eq!(
        rt.block_on(second.import(&other, false)).expect("again"),
        good
    );
    assert_eq!(second.list(None, 10).len(), 1);
    assert!(crate::decode_message(&other[..other.len() - 1]).is_err());
}
