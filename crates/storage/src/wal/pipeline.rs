//! Background preparation of the next segment file (etcd's file pipeline): a thread creates
//! `<n>.tmp` in the WAL directory and preallocates it, then waits until the writer takes it,
//! so cutting a segment does not pay for the allocation.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use super::segment::preallocate;

type Prepared = io::Result<(PathBuf, File)>;

pub(crate) struct Pipeline {
    dir: PathBuf,
    size: u64,
    next_id: u64,
    rx: Option<Receiver<Prepared>>,
    handle: Option<JoinHandle<()>>,
}

impl Pipeline {
    /// A pipeline for `dir`; the thread starts on the first [`Pipeline::ensure_started`].
    pub(crate) fn new(dir: &Path, size: u64) -> Pipeline {
        Pipeline {
            dir: dir.to_owned(),
            size,
            next_id: 0,
            rx: None,
            handle: None,
        }
    }

    /// Starts the background thread if it is not running (called on the first write, so that
    /// opening a WAL only to read it does not create files).
    #[inline]
    pub(crate) fn ensure_started(&mut self) {
        if self.rx.is_none() {
            self.spawn();
        }
    }

    fn spawn(&mut self) {
        // Rendezvous channel: the thread prepares exactly one file ahead and blocks until it
        // is taken (or the receiver is dropped).
        let (tx, rx) = sync_channel::<Prepared>(0);
        let dir = self.dir.clone();
        let size = self.size;
        let mut id = self.next_id;
        // Each spawn gets a fresh range of names so a file left behind by a failed cut is
        // never reused.
        self.next_id += 1 << 32;
        let spawned = std::thread::Builder::new()
            .name("wal-pipeline".into())
            .spawn(move || loop {
                let res = alloc(&dir, id, size);
                id += 1;
                let failed = res.is_err();
                if let Err(std::sync::mpsc::SendError(Ok((path, _)))) = tx.send(res) {
                    // The WAL was dropped: nobody will use the file.
                    let _ = std::fs::remove_file(path);
                    return;
                }
                if failed {
                    return;
                }
            });
        match spawned {
            Ok(h) => {
                self.rx = Some(rx);
                self.handle = Some(h);
            }
            Err(e) => tracing::warn!(error = %e, "wal: cannot start file pipeline thread"),
        }
    }

    /// Takes the prepared file, or prepares one inline if the thread is gone or failed.
    pub(crate) fn take(&mut self) -> Prepared {
        if let Some(rx) = &self.rx {
            match rx.recv() {
                Ok(Ok(f)) => return Ok(f),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "wal: file pipeline failed to prepare a segment");
                    self.stop();
                }
                Err(_) => self.stop(),
            }
        }
        // Slow path: prepare synchronously, then restart the thread for the next cut.
        let id = self.next_id;
        self.next_id += 1;
        let res = alloc(&self.dir, id, self.size);
        self.spawn();
        res
    }

    fn stop(&mut self) {
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop();
    }
}

fn alloc(dir: &Path, id: u64, size: u64) -> Prepared {
    let path = dir.join(format!("{id}.tmp"));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    if let Err(e) = preallocate(&f, size) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok((path, f))
}
