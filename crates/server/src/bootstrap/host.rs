//! Start-up steps about the host rather than the cluster: locking the process's memory
//! (`--memory-mlock`) and defragmenting a backend with much free space before serving
//! (`--bootstrap-defrag-threshold-megabytes`), both as etcd 3.6 does them.

use chorus_config::Config;
use chorus_storage::backend::Backend;

use super::error::StartError;

/// `--memory-mlock`: keeps every page of the process in RAM, now and as it grows, so the
/// backend's cache and the raft log are never swapped out (etcd mlocks bbolt's mapping;
/// chorus's backend is read through its own cache, so the whole process is locked).
pub fn lock_memory(cfg: &Config) -> Result<(), StartError> {
    if !cfg.memory_mlock {
        return Ok(());
    }
    // SAFETY: mlockall takes flags only and touches no memory of ours.
    let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    if rc != 0 {
        return Err(StartError::Mlock(std::io::Error::last_os_error()));
    }
    tracing::info!("locked the process's memory (--memory-mlock)");
    Ok(())
}

/// `--bootstrap-defrag-threshold-megabytes`: defragments the backend before the member
/// serves when at least that much of the file is free pages (0: never).
pub fn defrag_if_fragmented(cfg: &Config, backend: &mut Backend) -> Result<(), StartError> {
    let threshold = cfg.bootstrap_defrag_threshold_megabytes * 1024 * 1024;
    if threshold == 0 {
        return Ok(());
    }
    let (size, in_use) = (backend.size(), backend.size_in_use()?);
    let freeable = size.saturating_sub(in_use);
    if freeable < threshold {
        tracing::info!(
            current_db_size_bytes = size,
            current_db_size_in_use_bytes = in_use,
            bootstrap_defrag_threshold_bytes = threshold,
            "Skipping defragmentation"
        );
        return Ok(());
    }
    backend.defragment()?;
    tracing::info!(
        before = size,
        after = backend.refresh_size(),
        "defragmented the backend at start-up (--bootstrap-defrag-threshold-megabytes)"
    );
    Ok(())
}
