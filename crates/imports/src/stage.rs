//! An upload becomes a job: the bytes are written to the imports directory and fsynced, the
//! encoding is told from the first bytes, the header is read and mapped (refusing a file
//! without an address column or with unknown properties now, not half-way), and the job is
//! added, queued.

use std::io::Read;
use std::path::{Path, PathBuf};

use audience::import::{Mapping, MappingError, detect_encoding};
use rand::RngCore;
use store::{Existing, ImportJob, MemberStatus, NewImport, StoreError};

use crate::{ImportsConfig, Store};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the header cannot be read: {0}")]
    Header(String),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("no list named {0:?}")]
    NoList(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storing the file: {0}")]
    Io(#[from] std::io::Error),
}

/// What the tenant asks for besides the file.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub tenant_id: String,
    /// What the tenant called the file.
    pub name: String,
    /// Column name → target (`address`, `timezone`, `locale`, `country`, a property name,
    /// or "" to ignore the column); other columns are mapped from their header.
    pub mapping: Vec<(String, String)>,
    pub existing: Existing,
    /// A list (id or name) to put every imported contact on.
    pub list: Option<String>,
}

/// A fresh path in the imports directory.
pub fn new_path(config: &ImportsConfig) -> PathBuf {
    let mut raw = [0u8; 12];
    rand::rng().fill_bytes(&mut raw);
    let name: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    config.dir.join(format!("{name}.csv"))
}

/// The header of a stored file, decoded.
fn header(path: &Path, encoding: &str) -> Result<Vec<String>, StageError> {
    let file = std::fs::File::open(path)?;
    let (reader, _) = crate::decode::utf8_reader(file, encoding)?;
    let mut csv = crate::worker::reader_builder().from_reader(reader);
    let header = csv
        .headers()
        .map_err(|e| StageError::Header(e.to_string()))?;
    Ok(header.iter().map(|h| h.trim().to_string()).collect())
}

/// Makes a job of a file already written (and fsynced) at `path`.
pub async fn stage_file<S: Store>(
    store: &S,
    path: &Path,
    request: &ImportRequest,
) -> Result<ImportJob, StageError> {
    let total = std::fs::metadata(path)?.len();
    if total == 0 {
        return Err(StageError::Empty);
    }
    let mut head = vec![0u8; 64 * 1024];
    let mut file = std::fs::File::open(path)?;
    let n = file.read(&mut head)?;
    head.truncate(n);
    let encoding = if detect_encoding(&head) == encoding_rs::SHIFT_JIS {
        "shift_jis"
    } else {
        "utf-8"
    };
    let header = header(path, encoding)?;
    let declared = store.properties(&request.tenant_id).await?;
    let mapping = Mapping::new(&header, &declared, &request.mapping)?;
    let list = match &request.list {
        None => None,
        Some(name) => {
            let list = store
                .list(&request.tenant_id, name)
                .await?
                .ok_or_else(|| StageError::NoList(name.clone()))?;
            let status = if list.double_opt_in {
                MemberStatus::Unconfirmed
            } else {
                MemberStatus::Subscribed
            };
            Some((list.id, status))
        }
    };
    Ok(store
        .add_import(&NewImport {
            tenant_id: request.tenant_id.clone(),
            file: path.display().to_string(),
            name: request.name.clone(),
            encoding: encoding.into(),
            mapping: mapping.to_json(),
            existing: request.existing,
            list,
            total_bytes: total as i64,
        })
        .await?)
}

/// Copies a local file into the imports directory (fsynced) and makes a job of it.
pub async fn stage_copy<S: Store>(
    store: &S,
    config: &ImportsConfig,
    source: &Path,
    request: &ImportRequest,
) -> Result<ImportJob, StageError> {
    let size = std::fs::metadata(source)?.len();
    if size > config.max_bytes {
        return Err(StageError::TooLarge(config.max_bytes));
    }
    std::fs::create_dir_all(&config.dir)?;
    let path = new_path(config);
    let (from, to) = (source.to_path_buf(), path.clone());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::copy(&from, &to)?;
        std::fs::File::open(&to)?.sync_all()
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))??;
    match stage_file(store, &path, request).await {
        Ok(job) => Ok(job),
        Err(err) => {
            let _ = std::fs::remove_file(&path);
            Err(err)
        }
    }
}
