//! `<data-dir>/proxy/cluster`: the peer URLs the proxy last learned, as etcd writes them
//! (`{"PeerURLs":[...]}`), so a restarted proxy finds a cluster that has moved on from
//! its `--initial-cluster`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(serde::Serialize, serde::Deserialize)]
struct ClusterFile {
    #[serde(rename = "PeerURLs")]
    peer_urls: Vec<String>,
}

/// Why the cluster file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ClusterFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
}

pub fn path(proxy_dir: &Path) -> PathBuf {
    proxy_dir.join("cluster")
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterFileError + '_ {
    move |source| ClusterFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The saved peer URLs; `None` when there is no file yet.
pub fn load(file: &Path) -> Result<Option<Vec<String>>, ClusterFileError> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(file)(e)),
    };
    let parsed: ClusterFile =
        serde_json::from_slice(&bytes).map_err(|source| ClusterFileError::Json {
            path: file.display().to_string(),
            source,
        })?;
    Ok(Some(parsed.peer_urls))
}

/// Writes `<file>.bak` (0600, fsynced) and renames it over `file`, as etcd does.
pub fn save(file: &Path, peer_urls: &[String]) -> Result<(), ClusterFileError> {
    let body = serde_json::to_vec(&ClusterFile {
        peer_urls: peer_urls.to_vec(),
    })
    .map_err(|source| ClusterFileError::Json {
        path: file.display().to_string(),
        source,
    })?;
    let bak = file.with_extension("bak");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&bak).map_err(io_error(&bak))?;
    f.write_all(&body).map_err(io_error(&bak))?;
    f.sync_all().map_err(io_error(&bak))?;
    std::fs::rename(&bak, file).map_err(io_error(file))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_in_etcds_layout() {
        let dir = tempfile::tempdir().unwrap();
        let file = super::path(dir.path());
        assert!(super::load(&file).unwrap().is_none());
        super::save(&file, &["http://127.0.0.1:2380".into()]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            r#"{"PeerURLs":["http://127.0.0.1:2380"]}"#
        );
        assert_eq!(
            super::load(&file).unwrap().unwrap(),
            ["http://127.0.0.1:2380"]
        );
    }
}
