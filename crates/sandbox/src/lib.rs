//! Faithful fakes of the outside systems ponte talks to (Bling v3, Bitrix24, 360Envios, CPLUG),
//! served over real HTTP so ponte's connectors are tested against the same paths, payloads,
//! errors, pagination, token rotation and rate limits as the contracts in `shared/contracts/`.

pub mod bitrix24;
pub mod bling;
pub mod common;
pub mod cplug;
pub mod envios360;
