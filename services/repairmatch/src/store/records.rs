//! Domain records as stored bytes: `repairmatch.v1` messages, so the wire
//! schema's compatibility rules also govern what is on disk (and in Redis).
//!
//! Decoding checks only that a record is a well-formed domain value (known
//! enum values, a closed polygon, a real time zone), never the API's size
//! limits: a limit tightened in a later release must not stop a store that
//! holds older data from loading.

use std::sync::Arc;

use prost::Message;
use rayon::prelude::*;
use repairmatch_core::model::{Bank, Brand, RepairCenter};
use repairmatch_proto::v1 as pb;

use crate::convert::{self, Limits};

/// A center as stored bytes.
pub fn encode_center(center: &RepairCenter) -> Vec<u8> {
    convert::center_to_proto(center).encode_to_vec()
}

/// A center from stored bytes.
pub fn decode_center(bytes: &[u8]) -> Result<RepairCenter, String> {
    let message = pb::RepairCenter::decode(bytes).map_err(|e| e.to_string())?;
    convert::center_from_proto(message, "", Limits::Stored).map_err(|v| convert::describe(&v))
}

/// What a write checks of a stored center: who owns it and which version it
/// is. Read from the stored bytes alone, skipping every other field: a full
/// decode and conversion costs as much as the write's own work on the center.
/// So a record that is well-formed protobuf but no valid center (an enum
/// value this release does not know, say) can be replaced or deleted, as on
/// the Redis store, which never decoded it; only loading it fails.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CenterStamp {
    /// `RepairCenter.owner`.
    #[prost(string, tag = "4")]
    pub owner: String,
    /// `RepairCenter.etag`.
    #[prost(string, tag = "21")]
    pub etag: String,
}

impl CenterStamp {
    /// The stamp of a center in hand.
    pub fn of(center: &RepairCenter) -> Self {
        Self { owner: center.owner.clone(), etag: center.etag.clone() }
    }

    /// The stamp as [`super::Precondition::check`] reads it.
    pub(crate) fn borrowed(&self) -> super::StoredStamp<'_> {
        super::StoredStamp { etag: &self.etag, owner: &self.owner }
    }
}

/// The stamp of a center from its stored bytes.
pub fn decode_center_stamp(bytes: &[u8]) -> Result<CenterStamp, String> {
    CenterStamp::decode(bytes).map_err(|e| e.to_string())
}

/// A center from stored bytes, ready to share with the snapshot built from it.
pub fn decode_shared_center(bytes: &[u8]) -> Result<Arc<RepairCenter>, String> {
    decode_center(bytes).map(Arc::new)
}

/// Stored records keyed by `K`, decoded on every core (decoding is most of a
/// start), in their order; a bad record is refused with its key.
pub fn decode_all<K, V, T>(
    records: &[(K, V)],
    decode: impl Fn(&[u8]) -> Result<T, String> + Sync,
) -> Result<Vec<T>, (&K, String)>
where
    K: Sync,
    V: AsRef<[u8]> + Sync,
    T: Send,
{
    let decoded: Vec<_> =
        records.par_iter().map(|(key, bytes)| decode(bytes.as_ref()).map_err(|why| (key, why))).collect();
    // In order first, so that of several bad records the first is named.
    decoded.into_iter().collect()
}

/// A brand as stored bytes.
pub fn encode_brand(brand: &Brand) -> Vec<u8> {
    convert::brand_to_proto(brand).encode_to_vec()
}

/// A brand from stored bytes.
pub fn decode_brand(bytes: &[u8]) -> Result<Brand, String> {
    let message = pb::Brand::decode(bytes).map_err(|e| e.to_string())?;
    convert::brand_from_proto(&message, "", Limits::Stored).map_err(|v| convert::describe(&v))
}

/// A bank as stored bytes.
pub fn encode_bank(bank: &Bank) -> Vec<u8> {
    convert::bank_to_proto(bank).encode_to_vec()
}

/// A bank from stored bytes.
pub fn decode_bank(bytes: &[u8]) -> Result<Bank, String> {
    let message = pb::Bank::decode(bytes).map_err(|e| e.to_string())?;
    convert::bank_from_proto(&message, "", Limits::Stored).map_err(|v| convert::describe(&v))
}

#[cfg(test)]
mod tests {
    use repairmatch_core::model::Texts;
    use repairmatch_datagen as datagen;

    use super::*;

    #[test]
    fn a_stored_record_beyond_todays_api_limits_still_loads() {
        let mut center = datagen::generate(1, 3).centers.remove(0);
        // Longer than the API accepts today, as an older release may have allowed.
        center.name = "N".repeat(5_000);
        center.texts = Texts { address: &"A".repeat(5_000), ..center.texts.parts() }.into();
        let bytes = encode_center(&center);
        let message = pb::RepairCenter::decode(bytes.as_slice()).unwrap();
        assert!(convert::center_from_proto(message, "", Limits::Api).is_err(), "the API refuses it");
        assert_eq!(decode_center(&bytes).unwrap(), center, "the store still loads it");
    }

    #[test]
    fn a_stamp_reads_the_owner_and_etag_a_full_decode_reads() {
        for mut center in datagen::generate(20, 4).centers {
            center.etag = format!("{:x}", center.name.len());
            let stamp = decode_center_stamp(&encode_center(&center)).unwrap();
            assert!(!stamp.owner.is_empty());
            assert_eq!(stamp, CenterStamp::of(&center));
            assert_eq!(stamp, CenterStamp::of(&decode_center(&encode_center(&center)).unwrap()));
        }
        assert!(decode_center_stamp(&[0xff, 0xff]).is_err(), "bytes that are no message");
    }

    #[test]
    fn a_record_that_is_not_a_domain_value_is_refused() {
        let mut message = convert::center_to_proto(&datagen::generate(1, 3).centers[0]);
        message.kind = 42;
        let error = decode_center(&message.encode_to_vec()).unwrap_err();
        assert!(error.contains("kind"), "{error}");
    }
}
