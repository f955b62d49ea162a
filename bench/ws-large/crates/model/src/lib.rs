//! Records of a build: serialised as JSON, YAML, TOML, bincode and CSV.
use chrono::{DateTime, Utc};
use describe::Describe;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

include!(concat!(env!("OUT_DIR"), "/kinds.rs"));

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("yaml: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("toml: {0}")]
    Toml(#[from] toml::ser::Error),
    #[error("bincode: {0}")]
    Bincode(#[from] bincode::Error),
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Describe)]
pub struct Unit {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub millis: u64,
    pub at: DateTime<Utc>,
}

impl Unit {
    pub fn new(name: &str, kind: &str, millis: u64) -> Unit {
        Unit { id: Uuid::new_v4(), name: name.into(), kind: kind.into(), millis, at: Utc::now() }
    }

    /// The unit in every format, as (format, bytes) pairs.
    pub fn encodings(&self) -> Result<Vec<(&'static str, Vec<u8>)>, ModelError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(self)?;
        let csv = w
            .into_inner()
            .map_err(|e| ModelError::Csv(std::io::Error::new(e.error().kind(), e.error().to_string()).into()))?;
        Ok(vec![
            ("json", serde_json::to_vec(self)?),
            ("yaml", serde_yaml::to_string(self)?.into_bytes()),
            ("toml", toml::to_string(self)?.into_bytes()),
            ("bincode", bincode::serialize(self)?),
            ("csv", csv),
            ("base64", base64::encode(serde_json::to_vec(self)?).into_bytes()),
        ])
    }
}
