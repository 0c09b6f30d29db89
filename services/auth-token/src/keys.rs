//! Key rotation: re-seals every stored secret under the active key (`ponte keys rotate`).
//! Values sealed under an older key stay readable until then, as long as that key is still
//! listed in `PONTE_SEALING_KEYS`.

use ponte_core::{crypto::Sealer, db::Database, error::ServiceError};

use crate::connections::{self, Field, aad};

/// What a rotation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Values re-sealed under the active key.
    pub resealed: usize,
    /// Values already under the active key.
    pub current: usize,
    /// Rows that changed while being re-sealed; run again to finish them.
    pub skipped: usize,
}

/// Re-seals every secret not sealed under the active key.
pub async fn reseal_all(db: &Database, sealer: &Sealer) -> Result<ResealReport, ServiceError> {
    let mut report = ResealReport::default();
    for row in connections::all(db).await? {
        for field in Field::ALL {
            let sealed = row.sealed(field);
            if sealed.is_empty() {
                continue;
            }
            if Sealer::key_id_of(sealed) == Some(sealer.active_key_id()) {
                report.current += 1;
                continue;
            }
            let plain = row.open(sealer, field)?.unwrap_or_default();
            let resealed = sealer.seal(plain.as_bytes(), &aad(&row.tenant_id, row.provider, field));
            if connections::reseal_column(db, &row, field, &resealed).await? {
                report.resealed += 1;
            } else {
                report.skipped += 1;
            }
        }
    }
    Ok(report)
}
